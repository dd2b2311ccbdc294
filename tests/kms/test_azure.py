"""azure-kv:// through azure-keyvault-keys over HTTPS against the Key Vault stand-in."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from heliosdb_flink_crypto import (CheckpointCrypto, KmsAccessDeniedError, KmsInvalidCiphertextError,
                                   KmsUnavailableError)
from heliosdb_flink_crypto.errors import ConfigError, KmsError
from heliosdb_flink_crypto.kms.azure import AzureKeyVaultProvider, _credential, parse_uri
from heliosdb_flink_crypto.testing.azure import StaticTokenCredential

pytestmark = pytest.mark.kms


def provider(azure, name, fast_retry=None, version=None, credential=None, **extra):
    s = dict(fast_retry("azure")) if fast_retry else {}
    s.update(azure.settings(**extra))
    uri = f"azure-kv://{azure.host}/keys/{name}" + (f"/{version}" if version else "")
    return AzureKeyVaultProvider(uri, s, credential=credential or StaticTokenCredential())


@pytest.fixture(params=["RSA", "oct-HSM"])
def key(request, azure):
    name = f"k-{uuid.uuid4().hex[:8]}"
    azure.create_key(name, request.param)
    return name


def test_parse_uri():
    assert parse_uri("azure-kv://v.vault.azure.net/keys/ck") == ("https://v.vault.azure.net", "ck", None)
    assert parse_uri("azure-kv://h.managedhsm.azure.net/keys/ck/abc") == ("https://h.managedhsm.azure.net", "ck", "abc")
    for bad in ("azure-kv://v.vault.azure.net/secrets/x", "azure-kv:///keys/x", "aws-kms://x",
                "azure-kv://v/keys/a/b/c"):
        with pytest.raises(ValueError):
            parse_uri(bad)


def test_connect_wrap_unwrap_remote_only(azure, key, ctx):
    p = provider(azure, key)
    p.test_connection()
    kid = p.current_key_version()
    assert kid.startswith(f"{azure.vault_url}/keys/{key}/")
    dek = os.urandom(32)
    wrapped, version = p.wrap(dek, ctx)
    assert version == kid and dek not in wrapped
    assert p.unwrap(wrapped, version, ctx) == dek
    # both directions went to the vault (no local wrapping with a made-up key)
    assert azure.faults.calls["wrapkey"] == 1 and azure.faults.calls["unwrapkey"] == 1
    # and a fresh provider (a restarted task manager) opens it too
    assert provider(azure, key).unwrap(wrapped, version, ctx) == dek
    p.close()


def test_context_binding(azure, key, ctx):
    p = provider(azure, key)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    for other in (dict(ctx, **{"heliosdb:tenant": "tenant-b"}), dict(ctx, **{"heliosdb:dek-id": "ff" * 16})):
        with pytest.raises(KmsInvalidCiphertextError, match="another context"):
            p.unwrap(wrapped, v, other)
    with pytest.raises(KmsInvalidCiphertextError, match="BadParameter"):
        p.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), v, ctx)


def test_wrong_key_and_missing_key(azure, key, ctx, fast_retry):
    wrapped, v = provider(azure, key).wrap(os.urandom(32), ctx)
    other = f"o-{uuid.uuid4().hex[:6]}"
    azure.create_key(other)
    with pytest.raises(KmsAccessDeniedError, match="does not belong"):
        provider(azure, other).unwrap(wrapped, v, ctx)
    azure.faults.clear()
    with pytest.raises(KmsAccessDeniedError, match="KeyNotFound"):
        provider(azure, "nope", fast_retry).wrap(os.urandom(32), ctx)
    assert azure.faults.calls["GET"] == 1  # not retried


def test_rotation_keeps_old_versions(azure, key):
    uri = f"azure-kv://{azure.host}/keys/{key}"
    p = provider(azure, key)
    cc = CheckpointCrypto([uri], providers={uri: p})
    old = cc.encrypt_bytes(b"before")
    v1 = p.current_key_version()
    v2 = p.rotate()
    assert v2 != v1 and p.current_key_version() == v2
    cc.cache.invalidate()
    new = cc.encrypt_bytes(b"after")
    fresh = CheckpointCrypto([uri], providers={uri: provider(azure, key)})
    assert fresh.decrypt_bytes(old) == b"before" and fresh.decrypt_bytes(new) == b"after"
    # a URI pinned to the old version keeps wrapping with it and refuses to rotate
    pinned = provider(azure, key, version=v1.rsplit("/", 1)[-1])
    assert pinned.current_key_version() == v1
    with pytest.raises(KmsError, match="pins"):
        pinned.rotate()


def test_disabled_key(azure, key, ctx):
    p = provider(azure, key, version_cache="0 s")
    wrapped, v = p.wrap(os.urandom(32), ctx)
    azure.set_enabled(key, None, False)
    with pytest.raises(KmsAccessDeniedError, match="disabled"):
        p.test_connection()
    with pytest.raises(KmsAccessDeniedError, match="disabled"):
        p.wrap(os.urandom(32), ctx)
    with pytest.raises(KmsAccessDeniedError, match="403"):
        p.unwrap(wrapped, v, ctx)
    azure.set_enabled(key, None, True)
    assert len(p.unwrap(wrapped, v, ctx)) == 32


def test_denied_token_is_not_retried(azure, key, ctx, fast_retry):
    p = provider(azure, key, fast_retry)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    azure.tokens = {"someone-else"}
    azure.faults.clear()
    with pytest.raises(KmsAccessDeniedError, match="Forbidden"):
        p.unwrap(wrapped, v, ctx)
    assert azure.faults.calls["unwrapkey"] == 1


@pytest.mark.parametrize("status,code", [(429, "Throttled"), (503, "ServiceUnavailable"), (500, "InternalError")])
def test_transient_retried(azure, key, ctx, fast_retry, status, code):
    p = provider(azure, key, fast_retry)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    azure.faults.fail("unwrapkey", code, status=status, times=2)
    assert len(p.unwrap(wrapped, v, ctx)) == 32
    assert azure.faults.calls["unwrapkey"] == 3
    azure.faults.fail("unwrapkey", code, status=status, times=None)
    with pytest.raises(KmsUnavailableError, match=str(status)):
        p.unwrap(wrapped, v, ctx)


def test_timeout_and_server_down(azure, key, ctx, fast_retry):
    p = provider(azure, key, fast_retry, timeout="300 ms", max_attempts="2")
    wrapped, v = p.wrap(os.urandom(32), ctx)
    azure.faults.delay(1.0, "unwrapkey")
    t = time.monotonic()
    with pytest.raises(KmsUnavailableError):
        p.unwrap(wrapped, v, ctx)
    assert time.monotonic() - t < 2.0
    azure.faults.clear()
    azure.stop()
    with pytest.raises(KmsUnavailableError, match="ServiceRequestError"):
        p.unwrap(wrapped, v, ctx)
    azure.start()
    assert len(p.unwrap(wrapped, v, ctx)) == 32


def test_credential_settings():
    from azure import identity
    p = "heliosdb.crypto.kms.azure."
    c = _credential({p + "tenant-id": "t", p + "client-id": "c", p + "client-secret": "s3cr3t"})
    assert isinstance(c, identity.ClientSecretCredential)
    with pytest.raises(ConfigError, match="client-secret"):
        _credential({p + "tenant-id": "t", p + "client-id": "c"})
    assert isinstance(_credential({p + "managed-identity-client-id": "system"}), identity.ManagedIdentityCredential)
    assert isinstance(_credential({}), identity.DefaultAzureCredential)
    assert isinstance(_credential({p + "authority-host": "https://login.chinacloudapi.cn"}),
                      identity.DefaultAzureCredential)


def test_failing_credential_is_denied(azure, key, ctx, fast_retry):
    from azure.core.exceptions import ClientAuthenticationError

    class NoToken:
        def get_token(self, *a, **k):
            raise ClientAuthenticationError("no identity here")
    p = provider(azure, key, fast_retry, credential=NoToken())
    with pytest.raises(KmsAccessDeniedError, match="credential"):
        p.wrap(os.urandom(32), ctx)


def test_bad_settings(azure):
    with pytest.raises(ConfigError, match="version-cache"):
        provider(azure, "k", version_cache="x")
    with pytest.raises(ConfigError, match="verify-challenge-resource"):
        provider(azure, "k", verify_challenge_resource="x")


def test_untrusted_certificate_fails_closed(azure, key, ctx, fast_retry):
    s = dict(fast_retry("azure"))
    s["heliosdb.crypto.kms.azure.verify-challenge-resource"] = "false"
    p = AzureKeyVaultProvider(f"azure-kv://{azure.host}/keys/{key}", s, credential=StaticTokenCredential())
    with pytest.raises(KmsUnavailableError):  # TLS verification against the system CAs fails
        p.wrap(os.urandom(32), ctx)


def test_client_secret_credential_end_to_end(azure, ctx, fast_retry):
    """azure-identity's real ClientSecretCredential, token from the stand-in's Entra ID endpoints."""
    name = f"cs-{uuid.uuid4().hex[:6]}"
    azure.create_key(name)
    azure.clients = {(azure.tenant_id, "app-1"): "right-secret"}
    p = "heliosdb.crypto.kms.azure."
    s = {**fast_retry("azure"), **azure.settings(), p + "tenant-id": azure.tenant_id, p + "client-id": "app-1",
         p + "client-secret": "right-secret", p + "authority-host": azure.vault_url,
         p + "disable-instance-discovery": "true"}
    uri = f"azure-kv://{azure.host}/keys/{name}"
    try:
        prov = AzureKeyVaultProvider(uri, s)
        wrapped, v = prov.wrap(b"c" * 32, ctx)
        assert prov.unwrap(wrapped, v, ctx) == b"c" * 32
        azure.tokens = azure.issued  # from now on only tokens the authority issued are accepted
        assert AzureKeyVaultProvider(uri, s).unwrap(wrapped, v, ctx) == b"c" * 32
        bad = AzureKeyVaultProvider(uri, {**s, p + "client-secret": "wrong-secret"})
        with pytest.raises(KmsAccessDeniedError, match="credential") as e:
            bad.unwrap(wrapped, v, ctx)
        assert "wrong-secret" not in str(e.value) and "right-secret" not in repr(bad)
    finally:
        azure.clients = None
    with pytest.raises(ConfigError, match="disable-instance-discovery"):
        AzureKeyVaultProvider(uri, {**s, p + "disable-instance-discovery": "perhaps"})

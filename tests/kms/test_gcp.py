"""gcp-kms:// through google-cloud-kms over gRPC against the Cloud KMS stand-in."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from heliosdb_flink_crypto import (CheckpointCrypto, KmsAccessDeniedError, KmsInvalidCiphertextError,
                                   KmsUnavailableError, open_provider)
from heliosdb_flink_crypto.errors import ConfigError, KmsError
from heliosdb_flink_crypto.kms.gcp import GcpKmsProvider, crc32c, key_name
from heliosdb_flink_crypto.testing.gcp import State

pytestmark = pytest.mark.kms


@pytest.fixture
def key(gcp):
    return gcp.create_key(key=f"k{uuid.uuid4().hex[:8]}")


def provider(gcp, key, fast_retry=None, **extra):
    s = dict(fast_retry("gcp")) if fast_retry else {}
    s.update(gcp.settings(**extra))
    return open_provider("gcp-kms://" + key, s)


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_uri_form():
    assert key_name("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k") == \
        "projects/p/locations/l/keyRings/r/cryptoKeys/k"
    for bad in ("gcp-kms://projects/p/locations/l/keyRings/r", "gcp-kms://projects/p/locations/l/rings/r/cryptoKeys/k",
                "aws-kms://x", "gcp-kms://projects//locations/l/keyRings/r/cryptoKeys/k"):
        with pytest.raises(ValueError):
            key_name(bad)


def test_connect_wrap_unwrap(gcp, key, ctx):
    p = provider(gcp, key)
    p.test_connection()
    assert p.current_key_version() == key + "/cryptoKeyVersions/1"
    dek = os.urandom(32)
    wrapped, version = p.wrap(dek, ctx)
    assert version == key + "/cryptoKeyVersions/1" and dek not in wrapped
    assert p.unwrap(wrapped, version, ctx) == dek
    dek2, w2, v2 = p.generate_data_key(ctx)
    assert p.unwrap(w2, v2, ctx) == dek2 and len(dek2) == 32
    p.close()


def test_wrong_context_tampered_and_wrong_key(gcp, key, ctx):
    p = provider(gcp, key)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    with pytest.raises(KmsInvalidCiphertextError) as e:
        p.unwrap(wrapped, v, dict(ctx, **{"heliosdb:dek-id": "00" * 16}))
    assert e.value.operation == "unwrap" and key in str(e.value)
    with pytest.raises(KmsInvalidCiphertextError):
        p.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), v, ctx)
    other = gcp.create_key(key="other-" + uuid.uuid4().hex[:6])
    with pytest.raises(KmsAccessDeniedError, match="does not belong"):
        provider(gcp, other).unwrap(wrapped, v, ctx)
    with pytest.raises(KmsInvalidCiphertextError):  # the other key cannot open it either way
        provider(gcp, other).unwrap(wrapped, "", ctx)


def test_rotation_and_destroy(gcp, key, ctx):
    uri = "gcp-kms://" + key
    cc = CheckpointCrypto([uri], settings=gcp.settings())
    old = cc.encrypt_bytes(b"v1 data")
    p = cc.provider(uri)
    new_version = p.rotate()
    assert new_version == key + "/cryptoKeyVersions/2" == p.current_key_version()
    cc.cache.invalidate()
    new = cc.encrypt_bytes(b"v2 data")
    fresh = CheckpointCrypto([uri], settings=gcp.settings())
    assert fresh.decrypt_bytes(old) == b"v1 data" and fresh.decrypt_bytes(new) == b"v2 data"
    assert p.destroy("1") == [key + "/cryptoKeyVersions/1"]
    with pytest.raises(KmsAccessDeniedError, match="DESTROYED"):
        p.unwrap(*_slot(old), dict())
    assert CheckpointCrypto([uri], settings=gcp.settings()).decrypt_bytes(new) == b"v2 data"
    with pytest.raises(ValueError):
        p.destroy()
    with pytest.raises(ValueError):
        p.destroy("projects/x/locations/l/keyRings/r/cryptoKeys/y/cryptoKeyVersions/1")


def _slot(blob):
    from heliosdb_flink_crypto.format import parse
    h = parse(blob)
    return h.slots[0].wrapped, h.slots[0].key_version


def test_disabled_primary(gcp, key, ctx):
    p = provider(gcp, key)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    gcp.set_state(v, State.DISABLED)
    with pytest.raises(KmsAccessDeniedError, match="DISABLED"):
        p.test_connection()
    with pytest.raises(KmsAccessDeniedError, match="not enabled"):
        p.wrap(os.urandom(32), ctx)
    with pytest.raises(KmsAccessDeniedError):
        p.unwrap(wrapped, v, ctx)
    gcp.set_state(v, State.ENABLED)
    assert len(p.unwrap(wrapped, v, ctx)) == 32


def test_missing_key_and_denied(gcp, ctx, key, fast_retry):
    with pytest.raises(KmsAccessDeniedError, match="NotFound"):
        provider(gcp, key + "-gone", fast_retry).wrap(os.urandom(32), ctx)
    assert gcp.faults.calls["Encrypt"] == 1  # NOT_FOUND is not retried
    gcp.faults.clear()
    p = provider(gcp, key, fast_retry)
    for code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        gcp.faults.fail("Encrypt", code)
        with pytest.raises(KmsAccessDeniedError, match="injected"):
            p.wrap(os.urandom(32), ctx)
    assert gcp.faults.calls["Encrypt"] == 2  # never retried


@pytest.mark.parametrize("code", ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL"])
def test_transient_retried(gcp, key, ctx, fast_retry, code):
    p = provider(gcp, key, fast_retry)
    gcp.faults.fail("Encrypt", code, times=2)
    p.wrap(os.urandom(32), ctx)
    assert gcp.faults.calls["Encrypt"] == 3
    gcp.faults.fail("Encrypt", code, times=None)
    with pytest.raises(KmsUnavailableError, match="injected"):
        p.wrap(os.urandom(32), ctx)


def test_timeout_and_server_down(gcp, key, ctx, fast_retry):
    p = provider(gcp, key, fast_retry, timeout="200 ms", max_attempts="2")
    wrapped, v = p.wrap(os.urandom(32), ctx)
    gcp.faults.delay(1.0, "Decrypt")
    t = time.monotonic()
    with pytest.raises(KmsUnavailableError, match="DeadlineExceeded"):
        p.unwrap(wrapped, v, ctx)
    assert time.monotonic() - t < 1.5
    gcp.faults.clear()
    gcp.stop()
    with pytest.raises(KmsUnavailableError, match="ServiceUnavailable"):
        p.unwrap(wrapped, v, ctx)
    gcp.start()
    deadline = time.monotonic() + 10
    while True:  # gRPC reconnects within its backoff (at most 2 s here)
        try:
            assert len(p.unwrap(wrapped, v, ctx)) == 32
            break
        except KmsUnavailableError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


class _Corrupting:
    """A client whose responses are damaged in transit: the provider must notice via CRC32C."""

    def __init__(self, inner):
        self.inner = inner

    def encrypt(self, **kw):
        r = self.inner.encrypt(**kw)
        r.ciphertext = r.ciphertext[:-1] + bytes([r.ciphertext[-1] ^ 1])
        return r

    def decrypt(self, **kw):
        r = self.inner.decrypt(**kw)
        r.plaintext = bytes(32)
        return r


def test_crc32c_mismatch_is_detected_and_retried(gcp, key, ctx, fast_retry):
    p = provider(gcp, key, fast_retry)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    bad = GcpKmsProvider("gcp-kms://" + key, fast_retry("gcp"), client=_Corrupting(p._client))
    with pytest.raises(KmsUnavailableError, match="CRC32C"):
        bad.wrap(os.urandom(32), ctx)
    with pytest.raises(KmsUnavailableError, match="CRC32C"):
        bad.unwrap(wrapped, v, ctx)
    assert gcp.faults.calls["Decrypt"] == 3


def test_settings_errors(gcp, key):
    with pytest.raises(ConfigError, match="gcp.endpoint"):
        GcpKmsProvider("gcp-kms://" + key, {"heliosdb.crypto.kms.gcp.insecure-plaintext": "true"})
    with pytest.raises(ConfigError, match="insecure-plaintext"):
        provider(gcp, key, insecure_plaintext="maybe")
    with pytest.raises(ConfigError, match="version-cache"):
        provider(gcp, key, version_cache="later")
    with pytest.raises(ConfigError, match="credentials-file"):
        GcpKmsProvider("gcp-kms://" + key, {"heliosdb.crypto.kms.gcp.credentials-file": "/nonexistent.json"})


def test_credentials_file_with_tls_endpoint_is_unavailable_not_hanging(gcp, key, ctx, tmp_path, fast_retry):
    """A service-account client against an endpoint that does not speak TLS fails fast and retryably."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    sa = tmp_path / "sa.json"
    sa.write_text(__import__("json").dumps({
        "type": "service_account", "project_id": "p", "private_key_id": "1", "private_key": pem,
        "client_email": "ckpt@p.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"http://{gcp.endpoint}/token"}))
    s = dict(fast_retry("gcp", timeout="500 ms", attempts="1"))
    s.update({"heliosdb.crypto.kms.gcp.credentials-file": str(sa), "heliosdb.crypto.kms.gcp.endpoint": gcp.endpoint})
    p = GcpKmsProvider("gcp-kms://" + key, s)
    with pytest.raises(KmsError):
        p.wrap(os.urandom(32), ctx)
    p.close()

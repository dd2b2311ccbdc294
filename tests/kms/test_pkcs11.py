"""pkcs11:// through python-pkcs11 against a real SoftHSMv2 token."""
from __future__ import annotations

import os
import uuid

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, KmsAccessDeniedError, KmsInvalidCiphertextError, open_provider
from heliosdb_flink_crypto.errors import ConfigError, KeyAccessError, KmsUnavailableError
from heliosdb_flink_crypto.kms.pkcs11 import Pkcs11Provider, parse_uri

pytestmark = pytest.mark.kms


@pytest.fixture
def kek(hsm_token):
    label = f"kek-{uuid.uuid4().hex[:8]}"
    p = open_provider(hsm_token.uri(label), hsm_token.settings())
    assert p.create_key() == "1"
    yield hsm_token.uri(label), p
    p.close()


def test_parse_uri():
    assert parse_uri("pkcs11://tok/kek?module=/m.so") == ("tok", "kek", {"module": "/m.so"})
    for bad in ("pkcs11://tok", "pkcs11:///kek", "pkcs11://tok/a/b", "local:///x"):
        with pytest.raises(ValueError):
            parse_uri(bad)


def test_wrap_unwrap_versions_rotation_destroy(kek, hsm_token, ctx):
    uri, p = kek
    p.test_connection()
    assert p.create_key() == "1"  # idempotent
    dek = os.urandom(32)
    wrapped, v = p.wrap(dek, ctx)
    assert v == "1" and dek not in wrapped and len(wrapped) == 12 + 32 + 16
    assert p.unwrap(wrapped, v, ctx) == dek
    cc = CheckpointCrypto([uri], settings=hsm_token.settings())
    old = cc.encrypt_bytes(b"v1")
    assert p.rotate() == "2" == p.current_key_version()
    cc.cache.invalidate()
    new = cc.encrypt_bytes(b"v2")
    fresh = CheckpointCrypto([uri], settings=hsm_token.settings())
    assert fresh.decrypt_bytes(old) == b"v1" and fresh.decrypt_bytes(new) == b"v2"
    assert p.destroy("1") == ["1"]
    with pytest.raises(KmsAccessDeniedError, match="no key version '1'"):
        p.unwrap(wrapped, "1", ctx)
    with pytest.raises(KeyAccessError):
        CheckpointCrypto([uri], settings=hsm_token.settings()).decrypt_bytes(old)
    assert CheckpointCrypto([uri], settings=hsm_token.settings()).decrypt_bytes(new) == b"v2"
    with pytest.raises(ValueError):
        p.destroy("7")
    assert p.destroy() == ["2"]
    with pytest.raises(KmsAccessDeniedError, match="no key with this label"):
        p.wrap(dek, ctx)


def test_wrong_context_tampered_wrong_key(kek, hsm_token, ctx):
    uri, p = kek
    wrapped, v = p.wrap(os.urandom(32), ctx)
    with pytest.raises(KmsInvalidCiphertextError):
        p.unwrap(wrapped, v, dict(ctx, **{"heliosdb:tenant": "other"}))
    with pytest.raises(KmsInvalidCiphertextError):
        p.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), v, ctx)
    with pytest.raises(KmsInvalidCiphertextError, match="too short"):
        p.unwrap(b"short", v, ctx)
    other = open_provider(hsm_token.uri("other-" + uuid.uuid4().hex[:6]), hsm_token.settings())
    other.create_key()
    with pytest.raises(KmsInvalidCiphertextError):
        other.unwrap(wrapped, v, ctx)


def test_missing_key_token_and_bad_pin(softhsm, hsm_token, ctx):
    with pytest.raises(KmsAccessDeniedError, match="no key with this label"):
        open_provider(hsm_token.uri("never-made"), hsm_token.settings()).wrap(os.urandom(32), ctx)
    with pytest.raises(KmsAccessDeniedError, match="NoSuchToken"):
        Pkcs11Provider(f"pkcs11://no-such-token/k?module={hsm_token.module}", hsm_token.settings()).test_connection()
    t = softhsm.create_token()  # a token nobody in this process logged into yet
    with pytest.raises(KmsAccessDeniedError, match="PinIncorrect"):
        Pkcs11Provider(t.uri("k"), {"heliosdb.crypto.kms.pkcs11.pin-password": "wrong"}).test_connection()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # python-pkcs11 finalizer
def test_session_lost_is_reopened(softhsm, kek, ctx):
    uri, p = kek
    wrapped, v = p.wrap(os.urandom(32), ctx)
    softhsm.create_token()  # re-initialises the module: every open session handle becomes invalid
    assert len(p.unwrap(wrapped, v, ctx)) == 32


def test_settings(hsm_token, monkeypatch):
    monkeypatch.delenv("HELIOSDB_PKCS11_PIN", raising=False)
    monkeypatch.delenv("PKCS11_MODULE", raising=False)
    with pytest.raises(ConfigError, match="pin-password"):
        Pkcs11Provider(hsm_token.uri("k"), {})
    with pytest.raises(ConfigError, match="pkcs11.module"):
        Pkcs11Provider("pkcs11://t/k", hsm_token.settings())
    with pytest.raises(ConfigError, match="pkcs11.module"):
        Pkcs11Provider("pkcs11://t/k?module=/nonexistent/lib.so", hsm_token.settings())
    monkeypatch.setenv("HELIOSDB_PKCS11_PIN", hsm_token.pin)
    monkeypatch.setenv("PKCS11_MODULE", hsm_token.module)
    p = Pkcs11Provider(f"pkcs11://{hsm_token.label}/env-{uuid.uuid4().hex[:6]}", {})
    assert p.create_key() == "1"
    assert hsm_token.pin not in repr(p) and hsm_token.pin not in repr(hsm_token)


def test_transient_classification(kek):
    import pkcs11.exceptions as px
    _, p = kek
    c = p._classify("wrap")
    assert isinstance(c(px.DeviceRemoved()), KmsUnavailableError)
    assert isinstance(p._classify("unwrap")(px.GeneralError()), KmsInvalidCiphertextError)
    assert type(c(px.MechanismInvalid())).__name__ == "KmsError"
    assert c(RuntimeError("not ours")) is None


def test_rotation_and_destroy_by_another_process_are_seen(kek, hsm_token, ctx, tmp_path):
    """The operator rotates / destroys with the CLI (another process) while a job holds a session."""
    import subprocess
    import sys
    uri, p = kek
    wrapped, v = p.wrap(os.urandom(32), ctx)
    d = [x for k, val in hsm_token.settings().items() for x in ("-D", f"{k}={val}")]
    cli = [sys.executable, "-m", "heliosdb_flink_crypto"]
    r = subprocess.run([*cli, "keys", "rotate", uri, "--state-file", str(tmp_path / "s.json"), *d],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert p.current_key_version() == "2"
    assert len(p.unwrap(wrapped, v, ctx)) == 32
    r = subprocess.run([*cli, "keys", "destroy", uri, "--version", "1", "--yes", *d],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with pytest.raises(KmsAccessDeniedError, match="destroyed"):
        p.unwrap(wrapped, v, ctx)
    assert hsm_token.pin not in r.stdout + r.stderr

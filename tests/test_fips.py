"""FIPS mode: refuses to start on this (non-FIPS) OpenSSL, names the failed check, allow-lists algorithms."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.backends.openssl import backend

from heliosdb_flink_crypto import HeliosCryptoError, fips
from heliosdb_flink_crypto.config import load


def test_fips_mode_off_is_a_no_op():
    assert fips.check({}) is False
    assert fips.check({"heliosdb.crypto.fips-mode": "false"}) is False
    assert fips.check(enabled=False) is False


def test_refuses_to_start_on_an_openssl_without_its_fips_provider():
    assert fips.openssl_fips_enabled() is False and backend._fips_enabled is False  # the same flag
    with pytest.raises(fips.FipsModeError) as e:
        fips.check({"heliosdb.crypto.fips-mode": "true", "heliosdb.crypto.kms.uri": "local:///k"})
    err = e.value
    assert isinstance(err, HeliosCryptoError) and err.check == "openssl-fips-provider"
    assert "heliosdb.crypto.fips-mode" in str(err) and fips.openssl_version() in str(err)
    with pytest.raises(fips.FipsModeError, match="openssl-fips-provider"):
        fips.check(load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.fips-mode": "true"}))


def test_refusal_in_a_fresh_process_as_at_startup():
    code = ("import sys\nfrom heliosdb_flink_crypto import fips\n"
            "try:\n    fips.check({'heliosdb.crypto.fips-mode': 'yes'})\n"
            "except fips.FipsModeError as e:\n    print(e.check)\n    sys.exit(3)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and p.stdout.strip() == "openssl-fips-provider"


def test_fips_properties_without_a_fips_provider_fail_the_self_test(tmp_path):
    """OpenSSL told to use only FIPS implementations (default_properties fips=yes) but with no FIPS
    provider loaded: check 1 passes, and the known-answer self-test refuses to start."""
    conf = tmp_path / "openssl.cnf"
    conf.write_text("openssl_conf = openssl_init\n[openssl_init]\nalg_section = evp_properties\n"
                    "[evp_properties]\ndefault_properties = fips=yes\n")
    code = ("from heliosdb_flink_crypto import fips\n"
            "print(fips.openssl_fips_enabled())\n"
            "try:\n    fips.check(enabled=True)\n"
            "except fips.FipsModeError as e:\n    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "OPENSSL_CONF": str(conf)})
    enabled, message = p.stdout.strip().splitlines()
    assert enabled == "True"
    assert "check self-test failed: OpenSSL refused AES-256-GCM" in message and "unsupported" in message


def test_algorithm_allow_list():
    for suite in ("aes-256-gcm", "aes-256-cbc-hmac-sha256"):
        fips.check_algorithms(fips.algorithms_for(suite, ["local:///k", "aws-kms://arn"]))
    assert "HKDF-SHA256" in fips.algorithms_for("aes-256-gcm")
    assert fips.algorithms_for("aes-256-cbc-hmac-sha256").count("HMAC-SHA256") == 1
    for bad in (["ChaCha20-Poly1305"], ["AES-256-GCM", "SHA-1"], fips.algorithms_for("xchacha")):
        with pytest.raises(fips.FipsModeError, match="approved-algorithms") as e:
            fips.check_algorithms(bad)
        assert e.value.check == "approved-algorithms" and "not approved" in str(e.value)


def test_with_a_fips_provider_the_later_checks_run():
    """The provider probe is a seam: on a FIPS OpenSSL it is True and the next two checks decide."""
    assert fips.check({"heliosdb.crypto.fips-mode": "true", "heliosdb.crypto.algorithm": "aes-256-cbc-hmac-sha256",
                       "heliosdb.crypto.kms.uri": "local:///a;aws-kms://b"}, fips_probe=lambda: True) is True
    assert fips.check(enabled=True, algorithm="aes-256-gcm", kms_uris=["local:///k"], fips_probe=lambda: True)
    with pytest.raises(fips.FipsModeError, match="approved-algorithms.*CHACHA20"):
        fips.check(enabled=True, algorithm="chacha20", fips_probe=lambda: True)


def test_known_answer_self_test_passes_and_detects_a_wrong_result():
    fips.self_test()
    with pytest.raises(fips.FipsModeError, match="self-test.*AES-256-GCM"):
        fips._expect("AES-256-GCM", b"\x00" * 16, "530f8afbc74536b9a963b4f1c4cb738b")


def test_fips_mode_option_is_declared():
    assert load({"heliosdb.crypto.kms.uri": "local:///k"})["heliosdb.crypto.fips-mode"] is False
    assert load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.fips-mode": "true"})[
        "heliosdb.crypto.fips-mode"] is True


@pytest.mark.parametrize("algorithm", ["aes-256-gcm", "aes-256-cbc-hmac-sha256"])
def test_every_file_primitive_runs_through_the_openssl_the_checks_examine(tmp_path, monkeypatch, algorithm):
    """FIPS mode checks the OpenSSL behind ``cryptography``: per-file keys, header MACs and segment
    MACs must all run there, never through Python's hmac module (its hashlib may link another OpenSSL)."""
    import hmac

    from heliosdb_flink_crypto import CheckpointCrypto
    from heliosdb_flink_crypto.format import SUITE_IDS
    from heliosdb_flink_crypto.kms.local import LocalKeyring

    uri = f"local://{tmp_path}/k.json"
    LocalKeyring.create(uri)
    crypto = CheckpointCrypto([uri], suite=SUITE_IDS[algorithm], segment_size=64)
    crypto.encrypt_bytes(b"warm the data key cache up")

    def refused(*_a, **_k):
        raise AssertionError("Python's hmac module used for a file")

    for name in ("new", "digest", "HMAC"):
        monkeypatch.setattr(hmac, name, refused)
    data = os.urandom(1000)
    assert crypto.decrypt_bytes(crypto.encrypt_bytes(data)) == data

"""FIPS mode (docs/fips.md): refuse to start unless the cryptography is FIPS-operated.

``heliosdb.crypto.fips-mode: true`` makes :func:`check` run three checks and raise
:class:`FipsModeError` naming the first that fails:

1. ``openssl-fips-provider``: the OpenSSL that ``cryptography`` uses has FIPS mode on, i.e. its
   default properties require ``fips=yes`` so only the FIPS provider serves algorithms
   (cryptography's ``rust openssl.is_fips_enabled()``, the same flag ``backend._fips_enabled``
   caches). The wheels on PyPI bundle an OpenSSL without the FIPS provider; see docs/fips.md.
2. ``approved-algorithms``: every algorithm the configuration would use is on the allow-list:
   AES-256-GCM; AES-256-CBC with HMAC-SHA256 (its IV is one AES block encryption, SP 800-38A
   appendix C); HKDF-SHA256 (SP 800-56C) for per-file keys; HMAC-SHA256 for header MACs.
3. ``self-test``: known-answer tests of AES-256-GCM, AES-256-CBC, HMAC-SHA256 and HKDF-SHA256
   run through that OpenSSL, so a provider that refuses or miscomputes one fails at start.

Key providers do their own wrapping inside their KMS/HSM (AWS KMS, Azure Key Vault HSM, Cloud KMS
and PKCS#11 HSMs have their own FIPS validations); ``local://`` wraps with AES-256-GCM here.
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import FipsModeError  # noqa: F401 (users import it here)

#: Algorithms permitted in FIPS mode.
APPROVED = frozenset({"AES-256-GCM", "AES-256-CBC", "AES-256-ECB-1BLOCK", "HMAC-SHA256", "HKDF-SHA256"})

#: What each heliosdb.crypto.algorithm value uses.
SUITE_ALGORITHMS = {
    "aes-256-gcm": ("AES-256-GCM", "HKDF-SHA256", "HMAC-SHA256"),
    "aes-256-cbc-hmac-sha256": ("AES-256-CBC", "AES-256-ECB-1BLOCK", "HMAC-SHA256", "HKDF-SHA256"),
}
LOCAL_KEYRING_ALGORITHMS = ("AES-256-GCM",)


def openssl_fips_enabled() -> bool:
    from cryptography.hazmat.bindings._rust import openssl as rust_openssl
    return bool(rust_openssl.is_fips_enabled())


def openssl_version() -> str:
    from cryptography.hazmat.bindings._rust import openssl as rust_openssl
    return rust_openssl.openssl_version_text()


def algorithms_for(algorithm: str = "aes-256-gcm", kms_uris=()) -> tuple[str, ...]:
    if algorithm not in SUITE_ALGORITHMS:
        return (str(algorithm).upper(),)
    used = list(SUITE_ALGORITHMS[algorithm])
    if any(str(u).startswith("local:") for u in kms_uris):
        used += LOCAL_KEYRING_ALGORITHMS
    return tuple(dict.fromkeys(used))


def check_algorithms(names) -> None:
    """Raise FipsModeError naming every algorithm of ``names`` that is not approved."""
    bad = [n for n in names if n not in APPROVED]
    if bad:
        raise FipsModeError("approved-algorithms", f"{', '.join(bad)} not approved; allowed: "
                            f"{', '.join(sorted(APPROVED))}")


def _kat_aes_gcm() -> bytes:
    # NIST GCM test vector gcmEncryptExtIV256 count 0: zero key, zero IV, empty input -> tag.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM(bytes(32)).encrypt(bytes(12), b"", None)


def _kat_aes_cbc() -> bytes:
    # SP 800-38A F.2.5 (CBC-AES256.Encrypt), first block.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    e = Cipher(algorithms.AES(key), modes.CBC(bytes.fromhex("000102030405060708090a0b0c0d0e0f"))).encryptor()
    return e.update(bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")) + e.finalize()


def _kat_hmac() -> bytes:
    # RFC 4231 test case 2.
    from .engine.suites import hmac_sha256  # the function every file's MACs go through
    return hmac_sha256(b"Jefe", b"what do ya want for nothing?")


def _kat_hkdf() -> bytes:
    # RFC 5869 test case 1.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return HKDF(hashes.SHA256(), 42, bytes.fromhex("000102030405060708090a0b0c"),
                bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")).derive(bytes.fromhex("0b" * 22))


KNOWN_ANSWERS = (
    ("AES-256-GCM", _kat_aes_gcm, "530f8afbc74536b9a963b4f1c4cb738b"),
    ("AES-256-CBC", _kat_aes_cbc, "f58c4c04d6e5f1ba779eabfb5f7bfbd6"),
    ("HMAC-SHA256", _kat_hmac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("HKDF-SHA256", _kat_hkdf, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
)


def self_test() -> None:
    """Known-answer tests through the OpenSSL behind cryptography."""
    for name, run, want in KNOWN_ANSWERS:
        try:
            got = run()
        except Exception as e:  # the provider refused the algorithm
            hint = " (unsupported: no loaded provider offers it)" if "unsupported" in str(e) else ""
            raise FipsModeError("self-test", f"OpenSSL refused {name}: {type(e).__name__}{hint}") from None
        _expect(name, got, want)


def _expect(name: str, got: bytes, want_hex: str) -> None:
    if got.hex() != want_hex:
        raise FipsModeError("self-test", f"{name} known-answer test gave a wrong result")


def check(conf: Mapping[str, Any] | None = None, *, enabled: bool | None = None,
          algorithm: str | None = None, kms_uris=None, fips_probe=openssl_fips_enabled) -> bool:
    """Run the FIPS-mode checks if FIPS mode is on (from ``conf`` or ``enabled``); returns whether
    it is on. ``fips_probe`` is the provider check (a seam for testing the later checks)."""
    from .config import parse_bool, parse_list
    conf = conf or {}
    if enabled is None:
        raw = conf.get("heliosdb.crypto.fips-mode", False)
        enabled = raw if isinstance(raw, bool) else parse_bool(raw or "false")
    if not enabled:
        return False
    if algorithm is None:
        algorithm = str(conf.get("heliosdb.crypto.algorithm") or "aes-256-gcm").strip().lower()
    if kms_uris is None:
        raw = conf.get("heliosdb.crypto.kms.uri") or []
        kms_uris = parse_list(raw) if isinstance(raw, str) else list(raw)
    if not fips_probe():
        raise FipsModeError("openssl-fips-provider", f"the OpenSSL behind cryptography ({openssl_version()}) "
                            "is not running its FIPS provider; run on a FIPS-enabled OpenSSL (docs/fips.md) "
                            "or set heliosdb.crypto.fips-mode: false")
    check_algorithms(algorithms_for(algorithm, kms_uris))
    self_test()
    return True

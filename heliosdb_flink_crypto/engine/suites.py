"""Per-file keys and the two segment ciphers (docs/format.md F-12, F-13, F-18..F-22).

Keys: HKDF-SHA256(ikm=DEK, salt=file salt, info=LABEL[version] || suite || S || nonce prefix ||
DEK id || tenant) yields 128 bytes: segment key, segment MAC key (CBC suite), header MAC key, key
commitment. Everything the body depends on is in ``info``, so changing any of those header fields
changes every key; the wrapped-DEK slots and the binding name are covered by the header MAC only,
so a rewrap or a re-bind (rename) rewrites the header alone. The label differs per format version,
so a file's keys differ across versions.
"""
from __future__ import annotations

import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import SegmentAuthError
from ..format import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, VERSION, VERSION_1, Header, nonce
from ..format.layout import CBC_OVERHEAD, MAX_SEGMENTS, NONCE_TAIL, OVERHEAD, out_of_range

LABELS = {VERSION_1: b"heliosdb-flink-crypto/v1", VERSION: b"heliosdb-flink-crypto/v2"}


SHA256 = hashes.SHA256()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 through cryptography's OpenSSL, as HKDF and the ciphers: the library fips.py
    checks (not Python's hashlib, which may link another OpenSSL), and code a file's open has just
    run (HKDF), so a cold open pays for one HMAC implementation, not two."""
    m = HMAC(key, SHA256)
    m.update(data)
    return m.finalize()


def derive(dek: bytes, h: Header) -> tuple[bytes, bytes, bytes, bytes]:
    info = (LABELS[h.version] + struct.pack(">BI", h.suite, h.segment_size) + h.nonce_prefix + h.dek_id
            + h.tenant.encode())
    okm = HKDF(algorithm=SHA256, length=128, salt=h.salt, info=info).derive(dek)
    return okm[:32], okm[32:64], okm[64:96], okm[96:]


class FileKeys:
    """The keys of one file. Holds key bytes: never logged; repr shows none."""

    __slots__ = ("suite", "prefix", "overhead", "_hdr_mac", "commitment", "_seal", "_open")

    def __init__(self, dek: bytes, header: Header):
        if len(dek) != 32:
            raise ValueError("a data key is 32 bytes")
        enc, seg_mac, hdr_mac, commitment = derive(dek, header)
        self.suite, self.prefix, self.overhead = header.suite, header.nonce_prefix, OVERHEAD[header.suite]
        self._hdr_mac, self.commitment = hdr_mac, commitment
        if header.suite == SUITE_AES_GCM:
            self._seal, self._open = _gcm(enc)
        elif header.suite == SUITE_AES_CBC_HMAC:
            self._seal, self._open = _cbc(enc, seg_mac)
        else:
            raise ValueError(f"unknown suite {header.suite}")

    def __repr__(self) -> str:
        return f"FileKeys(suite={self.suite})"

    def header_mac(self, unsigned_and_commitment: bytes) -> bytes:
        return hmac_sha256(self._hdr_mac, unsigned_and_commitment)

    def seal_into(self, index: int, last: bool, src, dst) -> int:
        """Seal plaintext ``src`` as segment ``index`` into ``dst``; returns bytes written."""
        out = len(src) + self.overhead
        self._seal(nonce(self.prefix, index, last), src, None, memoryview(dst)[:out])
        return out

    def seal_segments(self, index: int, last: bool, src: memoryview, seg: int, dst: memoryview) -> int:
        """Seal ``src`` as segments ``index, index + 1, ...`` of ``seg`` bytes (the final one may be
        shorter, and is flagged last if ``last``; an empty ``src`` is one empty segment) into ``dst``
        back to back; returns the bytes written. A batch's per-segment work stays in this loop, the
        cipher called straight from it and each nonce built in place (nonce()'s value; the run's
        range checked once): one Python frame per batch, which counts when the batch's own memory
        traffic has flushed the interpreter from the caches."""
        seal, o, n, p, pack = self._seal, self.overhead, len(src), self.prefix, NONCE_TAIL.pack
        end = index + (-(-n // seg) or 1)
        if index < 0 or end > MAX_SEGMENTS:
            raise out_of_range(index, end)
        pos = out = 0
        for i in range(index, end - 1):
            seal(p + pack(i, 0), src[pos:pos + seg], None, dst[out:out + seg + o])
            pos += seg
            out += seg + o
        seal(p + pack(end - 1, 1 if last else 0), src[pos:], None, dst[out:out + n - pos + o])
        return out + n - pos + o

    def open_into(self, index: int, last: bool, src, dst) -> int:
        """Authenticate and decrypt sealed segment ``src`` into ``dst``; returns plaintext bytes."""
        out = len(src) - self.overhead
        if out < 0:
            raise SegmentAuthError()
        dst = memoryview(dst)[:out]
        try:
            self._open(nonce(self.prefix, index, last), src, None, dst)
        except InvalidTag:
            _wipe(dst)
        return out

    def open_segments(self, index: int, last: bool, src: memoryview, seg: int, dst: memoryview) -> int:
        """Authenticate and decrypt ``src``, sealed segments ``index, index + 1, ...`` back to back (all
        of ``seg`` plaintext bytes but the final one, flagged last if ``last``), into ``dst`` back to
        back; returns the plaintext bytes. ``dst`` may share memory with ``src`` if it starts at
        least ``seg`` bytes before it: each segment's plaintext then lands below its own sealed bytes,
        over sealed segments already opened only (no call's output overlaps its input, which
        cryptography 51 refuses). SegmentAuthError at the first segment that fails (open_into's
        rules: that segment's output is wiped). One frame per batch, as seal_segments."""
        open_, o, n, p, pack = self._open, self.overhead, len(src), self.prefix, NONCE_TAIL.pack
        full = seg + o
        end = index + (-(-n // full) or 1)
        if index < 0 or end > MAX_SEGMENTS:
            raise out_of_range(index, end)
        pos = out = 0
        try:
            for i in range(index, end - 1):
                open_(p + pack(i, 0), src[pos:pos + full], None, dst[out:out + seg])
                pos += full
                out += seg
            take = n - pos - o
            if take < 0:
                raise SegmentAuthError()
            open_(p + pack(end - 1, 1 if last else 0), src[pos:], None, dst[out:out + take])
        except InvalidTag:
            _wipe(dst[out:out + min(seg, n - pos - o)])
        return out + take


def _wipe(dst) -> None:
    """AES-GCM's decrypt_into has written the unauthenticated plaintext already: wipe it (F-22), and
    fail as every suite fails (the opaque SegmentAuthError)."""
    dst[:] = bytes(len(dst))
    raise SegmentAuthError() from None


def _gcm(key: bytes):
    """AES-256-GCM's seal and open, ``(nonce, src, aad, dst)`` with ``dst`` exactly the output's
    size: cryptography's own methods, no Python frame between a segment loop and the cipher. The
    open writes its output before the tag is checked: InvalidTag means wipe it (``_wipe``)."""
    aead = AESGCM(key)
    return aead.encrypt_into, aead.decrypt_into


def _cbc(enc: bytes, mac_key: bytes):
    """AES-256-CBC + HMAC-SHA256, encrypt-then-MAC. Sealed segment: C || zero filler || tag,
    with C = CBC(PKCS#7(P)) under IV = AES_enc(nonce || 0^4) (SP 800-38A, appendix C), filler
    n mod 16 zero bytes (so every segment grows by exactly 48 bytes), tag = HMAC(nonce || C || filler).
    Seal and open as AES-GCM's (``_gcm``); the open writes nothing before the tag checked out.
    """
    ecb = Cipher(algorithms.AES(enc), modes.ECB())

    def iv_for(n: bytes) -> bytes:
        e = ecb.encryptor()
        return e.update(n + b"\0\0\0\0") + e.finalize()

    def seal(n: bytes, src, _aad, dst) -> int:
        size = len(src)
        pad = 16 - size % 16
        e = Cipher(algorithms.AES(enc), modes.CBC(iv_for(n))).encryptor()
        c = e.update(bytes(src) + bytes([pad]) * pad) + e.finalize()
        body = c + bytes(size % 16)
        tag = hmac_sha256(mac_key, n + body)
        dst[:] = body + tag
        return size + CBC_OVERHEAD

    def open_(n: bytes, src, _aad, dst) -> int:
        size = len(src) - CBC_OVERHEAD
        src = bytes(src)
        body, tag = src[:-32], src[-32:]
        if not hmac.compare_digest(hmac_sha256(mac_key, n + body), tag):
            raise SegmentAuthError()
        clen = 16 * (size // 16 + 1)
        c, filler = body[:clen], body[clen:]
        d = Cipher(algorithms.AES(enc), modes.CBC(iv_for(n))).decryptor()
        p = d.update(c) + d.finalize()
        pad = p[-1]
        # Authenticated already; these checks only guard against a writer bug.
        if filler.count(0) != len(filler) or pad != 16 - size % 16 or len(p) - pad != size:
            raise SegmentAuthError()
        dst[:] = p[:size]
        return size

    return seal, open_

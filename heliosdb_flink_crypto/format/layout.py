"""Segment arithmetic: where segment i lives, and plaintext <-> ciphertext lengths (F-14..F-17).

A file of n plaintext bytes has max(1, ceil(n / S)) segments; every segment but the last holds
exactly S bytes, the last holds 0..S bytes (0 only when n == 0) and carries the last flag.
Each sealed segment is its plaintext length plus a fixed per-suite overhead O, so the plaintext
length follows from the ciphertext length and the header prefix alone.
"""
from __future__ import annotations

import struct

from ..errors import FormatError
from .header import SUITE_AES_CBC_HMAC, SUITE_AES_GCM

GCM_TAG = 16
CBC_OVERHEAD = 48  # one PKCS#7 block (<=16) + filler to a fixed 16 + 32-byte HMAC tag
OVERHEAD = {SUITE_AES_GCM: GCM_TAG, SUITE_AES_CBC_HMAC: CBC_OVERHEAD}
#: the most segments a file may have (F-14): indexes 0 .. MAX_SEGMENTS - 1. Writers refuse to seal
#: index MAX_SEGMENTS (nonce() below) and readers refuse a length implying more segments, so a
#: writer never produces a file its readers reject. The Java shim's SegmentLayout has the same value.
MAX_SEGMENTS = 2**32 - 1


def overhead(suite: int) -> int:
    return OVERHEAD[suite]


def segment_count(plain_len: int, seg: int) -> int:
    return max(1, -(-plain_len // seg))


def ciphertext_length(plain_len: int, header_len: int, seg: int, suite: int) -> int:
    return header_len + plain_len + segment_count(plain_len, seg) * OVERHEAD[suite]


def plaintext_length(ct_len: int, header_len: int, seg: int, suite: int, path: str | None = None) -> int:
    """Plaintext length of a complete file of ``ct_len`` bytes; FormatError if no file has that length."""
    o = OVERHEAD[suite]
    body = ct_len - header_len
    if body < o:
        raise FormatError("truncated: no final segment", path)
    count = -(-body // (seg + o))
    last = body - (count - 1) * (seg + o)
    if last < o or (last == o and count > 1) or count > MAX_SEGMENTS:
        raise FormatError("truncated or extended: length fits no segment layout", path)
    return body - count * o


def segment_offset(index: int, header_len: int, seg: int, suite: int) -> int:
    return header_len + index * (seg + OVERHEAD[suite])


#: a nonce's last five bytes (segment index, last flag): ``prefix + NONCE_TAIL.pack(index, last)``
#: is nonce()'s value, built per segment by the batch loops, which check the run's range first
#: (``index < 0 or end > MAX_SEGMENTS``: raise :func:`out_of_range`) instead of calling nonce().
NONCE_TAIL = struct.Struct(">IB")


def out_of_range(index: int, end: int | None = None) -> FormatError:
    """The error for segment ``index`` (or, ``end`` given, the run ``index .. end - 1``) outside the
    format's range."""
    bad = index if end is None or index < 0 else end - 1
    return FormatError(f"segment index {bad} out of range (a file holds at most {MAX_SEGMENTS} segments)")


def nonce(prefix: bytes, index: int, last: bool) -> bytes:
    """STREAM nonce: 7-byte file prefix || segment index (u32) || last flag (F-18)."""
    if not 0 <= index < MAX_SEGMENTS:
        raise out_of_range(index)
    return prefix + NONCE_TAIL.pack(index, 1 if last else 0)

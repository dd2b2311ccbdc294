"""Java's DataInputStream over bytes, for reading what Flink serialized (stdlib only).

Big-endian numbers, ``readUTF``'s modified UTF-8, counts; every read is checked against the bytes
left: a short or malformed read raises ``error(message, path, offset)`` (the caller's error class,
naming the file and byte offset) instead of running past the end.
"""
from __future__ import annotations

import struct


def java_utf(raw: bytes) -> str:
    """Java's modified UTF-8 (DataInput.readUTF): NUL as C0 80, supplementary characters as two
    3-byte surrogates."""
    s = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


class JavaInput:
    def __init__(self, data: bytes, path: str | None, error):
        self.b, self.pos, self.path, self.error = bytes(data), 0, path, error

    def fail(self, message: str, at: int | None = None):
        raise self.error(message, self.path, self.pos if at is None else at)

    def take(self, n: int, what: str) -> bytes:
        left = len(self.b) - self.pos
        if n < 0 or n > left:
            self.fail(f"{what}: {n} bytes wanted, {left} left")
        self.pos += n
        return self.b[self.pos - n:self.pos]

    def num(self, fmt: str, what: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def i32(self, what: str) -> int:
        return self.num(">i", what)

    def i64(self, what: str) -> int:
        return self.num(">q", what)

    def count(self, what: str, item_size: int = 1, n: int | None = None) -> int:
        """A count read here (or ``n``, just read): refused when negative or when that many items of
        at least ``item_size`` bytes cannot fit in the bytes left."""
        at = self.pos if n is None else self.pos - 4
        n = self.i32(what) if n is None else n
        if n < 0 or n * item_size > len(self.b) - self.pos:
            self.fail(f"{what}: {n} does not fit in the {len(self.b) - self.pos} bytes left", at)
        return n

    def utf(self, what: str) -> str:
        at = self.pos
        raw = self.take(self.num(">H", what), what)
        try:
            return java_utf(raw)
        except UnicodeError:
            self.fail(f"{what}: not valid modified UTF-8", at)

    def blob(self, what: str) -> int:
        return len(self.take(self.count(what), what))

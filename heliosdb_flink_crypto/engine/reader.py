"""Seekable reader over the segment format: decrypts only the segments it needs, into reused buffers."""
from __future__ import annotations

import io
import os
from time import perf_counter

from ..errors import AuthenticationError, FormatError
from ..format import overhead, plaintext_length, segment_count, segment_offset
from . import buffers
from .buffers import BATCH, MEMORY_TYPES
from .suites import FileKeys, SegmentAuthError


class DecryptingReader(io.RawIOBase):
    """Seekable read-only file object over an encrypted file; decrypts only the segments it needs.

    Every byte returned has been authenticated. ``pread(offset, n)`` is a positional read that
    does not move the position. The end of the file authenticates (F-18, F-25): ``size``, a seek
    relative to the end, and every read that returns fewer bytes than asked (end of file) first
    authenticate the final (last-flagged) segment, lazily (a sequential read has read it anyway).
    Reads below a cut still return the bytes of the segments that authenticate.
    """

    __slots__ = ("_src", "_keys", "_seg", "_hlen", "path", "_mem", "_size", "_count", "_end_ok", "_o", "_ct",
                 "_pt", "_cur", "_cur_len", "_pos", "_close_source", "_on_close", "_on_auth_failure",
                 "crypto_seconds", "crypto_bytes", "failed")

    def __init__(self, source, header_len: int, keys: FileKeys, segment_size: int,
                 ciphertext_len: int | None = None, path: str | None = None, close_source=False,
                 on_close=None, on_auth_failure=None):
        super().__init__()
        self._src, self._keys, self._seg, self._hlen, self.path = source, keys, segment_size, header_len, path
        # bytes, bytearray, memoryview or mmap: segments are decrypted in place, no copy
        self._mem = memoryview(source).cast("B") if isinstance(source, MEMORY_TYPES) else None
        if ciphertext_len is None:
            ciphertext_len = len(self._mem) if self._mem is not None else source.seek(0, os.SEEK_END)
        # from the length alone, not yet authenticated: internal until the final segment is (F-25)
        try:
            self._size = plaintext_length(ciphertext_len, header_len, segment_size, keys.suite, path)
        except FormatError:
            if self._mem is not None:
                self._mem.release()  # else the caller cannot close its mmap
            raise
        self._count = segment_count(self._size, segment_size)
        self._end_ok = False
        self._o = overhead(keys.suite)
        self._ct = self._pt = None  # sealed and plaintext segment buffers (buffers.py), taken when needed
        self._cur, self._cur_len, self._pos = -1, 0, 0
        self._close_source, self._on_close, self._on_auth_failure = close_source, on_close, on_auth_failure
        self.crypto_seconds, self.crypto_bytes = 0.0, 0  # segments authenticated and decrypted
        self.failed = False

    @property
    def size(self) -> int:
        """The plaintext length, once the final segment authenticated."""
        self._authenticate_end()
        return self._size

    def _authenticate_end(self) -> None:
        if not self._end_ok:
            self._load(self._count - 1)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            base = self.size  # a position relative to the end: the end authenticates first
        else:
            base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _plain_len(self, index: int) -> int:
        return self._size - index * self._seg if index == self._count - 1 else self._seg

    def _load(self, index: int, dst=None, plain: int = 0) -> None:
        """Authenticate and decrypt segment ``index`` into the segment cache, or into ``dst`` (a
        caller's buffer that takes whole segments: one copy fewer): the consecutive segments from
        ``index`` that hold ``plain`` bytes (one call for the batch)."""
        if index == self._cur and dst is None:
            return
        if dst is None:
            plain = self._plain_len(index)
            if self._pt is None:
                self._pt = buffers.take(self._seg)
        count = -(-plain // self._seg) if plain else 1
        last = index + count == self._count
        want = plain + count * self._o
        off = segment_offset(index, self._hlen, self._seg, self._keys.suite)
        if self._mem is not None:
            view = self._mem[off:off + want]
            got = len(view)
        else:
            self._src.seek(off)
            if self._ct is None or len(self._ct) < want:
                buffers.give(self._ct)
                self._ct = buffers.take(max(want, self._seg + self._o))
            view = memoryview(self._ct)[:want]
            got = 0
            while got < want:
                r = self._src.readinto(view[got:])
                if not r:
                    break
                got += r
        if got < want:
            if self._mem is not None:
                view.release()
            self._auth_failed()
            raise AuthenticationError(self.path)  # shorter than its length said: truncated
        if dst is None:
            self._cur = -1
        t = perf_counter()
        try:
            n = self._keys.open_segments(index, last, view, self._seg, memoryview(self._pt) if dst is None else dst)
        except SegmentAuthError:
            self._auth_failed()
            raise AuthenticationError(self.path) from None
        finally:
            if self._mem is not None:
                view.release()  # an mmap cannot close while a view of it lives
        self.crypto_seconds += perf_counter() - t
        self.crypto_bytes += n
        self._end_ok |= last
        if dst is None:
            self._cur, self._cur_len = index, n

    def pread(self, offset: int, n: int) -> bytes:
        out = bytearray()
        end = min(self._size, offset + n)
        while offset < end:
            index = offset // self._seg
            self._load(index)
            start = offset - index * self._seg
            take = min(self._cur_len - start, end - offset)
            out += memoryview(self._pt)[start:start + take]
            offset += take
        if len(out) < n:  # a short read reports the end of the file: it authenticates first
            self._authenticate_end()
        return bytes(out)

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        end = min(self._size, self._pos + len(mv))
        done = 0
        while self._pos < end:
            index = self._pos // self._seg
            start = self._pos - index * self._seg
            whole = self._plain_len(index)
            if start == 0 and end - self._pos >= whole and index != self._cur:
                # whole segments straight into the caller's buffer, up to BATCH per call; a failing
                # segment leaves its part zeroed (suites.py)
                k = min(BATCH, self._count - index, max(1, (end - self._pos) // self._seg))
                if k > 1:  # k full segments, or up to the (maybe shorter) final one
                    whole = self._size - index * self._seg if index + k == self._count else k * self._seg
                self._load(index, mv[done:done + whole], whole)
                done += whole
                self._pos += whole
                continue
            self._load(index)
            take = min(self._cur_len - start, end - self._pos)
            mv[done:done + take] = memoryview(self._pt)[start:start + take]
            done += take
            self._pos += take
        if done < len(mv):  # end of file (a short read, or 0): only after the final segment authenticated
            self._authenticate_end()
        return done

    def read(self, n: int = -1) -> bytes:
        rest = max(0, self._size - self._pos)
        whole = n is None or n < 0  # "the rest of the file", even when that is nothing
        buf = bytearray(rest if whole else min(n, rest))
        got = self.readinto(buf)
        if whole or got < n:
            self._authenticate_end()
        return bytes(buf[:got])

    readall = read

    def verify_all(self) -> int:
        """Authenticate every segment (the whole file); returns the plaintext length."""
        for i in range(self._count):
            self._load(i)
        return self._size

    def _auth_failed(self) -> None:
        self.failed = True
        if self._on_auth_failure:
            self._on_auth_failure()

    def close(self) -> None:
        if not self.closed:
            if self._on_close:
                self._on_close(self.crypto_bytes, self.crypto_seconds, self.failed)
            if self._mem is not None:
                self._mem.release()
            if self._close_source:
                self._src.close()
            buffers.give(self._ct)
            buffers.give(self._pt)
            self._ct = self._pt = None
        super().close()


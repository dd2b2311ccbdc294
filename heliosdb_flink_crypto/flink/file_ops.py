"""Bridge operations on checkpoint files: the shim's encrypting and decrypting streams.

* ``writer(session, path) -> (handle, header_bytes, segment_size, overhead)``: the file is bound to
  ``path``'s binding name (F-24); ``reader`` checks the header against it. ForSt's live database
  files get ``heliosdb.crypto.forst.segment-size`` (``Session.segment_size_for``)
* ``seal(handle, index, last, src_buffer, src_len, dst_buffer[, dst_offset]) -> sealed_len``
* ``seal_write(handle, index, last, src_buffer, src_len, dst_buffer, fd) -> sealed_len``: ``seal``,
  then the sealed bytes written to a local file's descriptor (the shim's streams without a worker)
* ``seal_bytes(handle, index, last, data) -> sealed bytes`` (the copying fallback)
* ``finish(handle, plaintext_bytes)`` the file is complete / ``discard(handle)`` it was aborted
* ``reader(session, path, header_bytes) -> handle``
* ``open(handle, index, last, src_buffer, src_len, dst_buffer) -> plaintext_len``
* ``open_bytes(handle, index, last, data) -> plaintext bytes``
* ``close(handle)`` the reader is done (reported as a decrypted file, or a failed one)
* ``malformed(session, path, reason)`` the shim could not frame a file (bad magic, length)

Buffers are named by id (bridge.register). Every error raised names the file; no message carries key
material. A file's events come from its :class:`~heliosdb_flink_crypto.observe.FileEvents`, as for
the Python streams.
"""
from __future__ import annotations

import os

from ..crypto import name_for
from ..errors import AuthenticationError, FormatError, HeliosCryptoError, SegmentAuthError
from ..format import overhead
from . import bridge
from .bridge import operation, session


class FileWriter:
    """An open encrypted file of the shim, being written; ``fd``: this process's duplicate of the local
    file's descriptor ``seal_write`` writes to (None until its first call), closed when the file ends."""

    kind = "writer"
    __slots__ = ("keys", "events", "path", "seg", "fd")

    def __init__(self, keys, events, path: str, seg: int):
        self.keys, self.events, self.path, self.seg, self.fd = keys, events, path, seg, None

    def end(self) -> None:
        """The file is finished or discarded: its duplicate descriptor is closed."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class FileReader:
    """An open encrypted file of the shim, being read; ``events`` None: none reported (tests)."""

    kind = "reader"
    __slots__ = ("keys", "events", "path", "seg", "bytes")

    def __init__(self, keys, path: str, seg: int, events=None):
        self.keys, self.path, self.seg, self.events, self.bytes = keys, path, seg, events, 0


@operation
def writer(sid: int, path: str) -> tuple[int, bytes, int, int]:
    try:
        s = session(sid)
        h, raw, keys, events = s.crypto_for(path).new_file(name=name_for(path), path=path,
                                                           segment_size=s.segment_size_for(path))
    except HeliosCryptoError as e:  # a KMS error does not know the file: name it, keeping its class
        if path not in str(e):  # (the class is the shim's exception type: a KMS outage stays one)
            e.args = (f"{path}: {e}",)
        raise
    hid = bridge.add_handle(FileWriter(keys, events, path, h.segment_size))
    return hid, raw, h.segment_size, overhead(h.suite)


@operation
def seal(hid: int, index: int, last: bool, src: int, src_len: int, dst: int, dst_off: int = 0) -> int:
    """Seal ``src_len`` bytes of buffer ``src`` as consecutive segments ``index, index + 1, ...``
    (every one full but the final one, which carries the last flag if ``last``) into ``dst`` from
    byte ``dst_off`` on, back to back; returns the bytes written. One call may carry several
    segments (fewer hand-offs)."""
    return _sealed(*bridge.batch(hid, FileWriter, src, dst), index, last, src_len, dst_off)


@operation
def seal_write(hid: int, index: int, last: bool, src: int, src_len: int, dst: int, fd: int) -> int:
    """``seal`` into ``dst`` from its start, then write the sealed bytes to the local file whose
    descriptor (in this process: the shim's) is ``fd``, through a duplicate of it made at the file's
    first call (the same open file and position; closed by ``finish``/``discard``, so a descriptor
    the JVM closes meanwhile never sends these bytes to another file). Returns the bytes written."""
    w, src_view, out = bridge.batch(hid, FileWriter, src, dst)
    n = _sealed(w, src_view, out, index, last, src_len, 0)
    try:
        if w.fd is None:
            w.fd = os.dup(fd)
        view = out[:n]
        while view:
            view = view[os.write(w.fd, view):]
    except OSError as e:
        raise OSError(e.errno, f"{w.path}: writing the inner file failed: {e.strerror}") from None
    return n


def _sealed(w: FileWriter, src_view, out, index: int, last: bool, src_len: int, dst_off: int) -> int:
    seg, keys = w.seg, w.keys
    if not 0 <= dst_off <= len(out):
        raise ValueError(f"{w.path}: output offset {dst_off} outside the buffer")
    out = out[dst_off:]
    if not 0 <= src_len <= len(src_view) or (not last and src_len % seg):
        raise ValueError(f"{w.path}: {src_len} bytes are not whole segments of {seg}")
    if len(out) < src_len + (-(-src_len // seg) or 1) * keys.overhead:  # ciphertext_length, inline
        raise ValueError(f"{w.path}: output buffer too small")
    return keys.seal_segments(index, bool(last), src_view[:src_len], seg, out)


@operation
def seal_bytes(hid: int, index: int, last: bool, data: bytes) -> bytes:
    w = bridge.handle(hid, FileWriter)
    if len(data) > w.seg:
        raise ValueError(f"{w.path}: segment of {len(data)} bytes over the segment size {w.seg}")
    out = bytearray(len(data) + overhead(w.keys.suite))
    n = w.keys.seal_into(index, bool(last), data, out)
    return bytes(out[:n])


@operation
def finish(hid: int, nbytes: int) -> None:
    w = bridge.drop_handle(hid, FileWriter)
    if w is not None:
        w.end()
        w.events.encrypted(int(nbytes))


@operation
def discard(hid: int) -> None:
    """The shim aborted the file (a write failed): it has no final segment and never authenticates."""
    w = bridge.drop_handle(hid, FileWriter)
    if w is not None:
        w.end()
        w.events.aborted()


@operation
def reader(sid: int, path: str, header: bytes) -> int:
    crypto = None
    try:
        crypto = session(sid).crypto_for(path)
        h, keys = crypto.open_file(header, path)
    except HeliosCryptoError as e:
        if crypto is not None:
            crypto.report_open_failure(e, path)
        raise
    return bridge.add_handle(FileReader(keys, path, h.segment_size, crypto.read_events(h, path)))


@operation
def malformed(sid: int, path: str, reason: str) -> None:
    """The shim found a file it cannot even frame (bad magic, impossible length): report it."""
    reason = str(reason)[:200]
    session(sid).crypto_for(path).report_open_failure(FormatError(reason, path), path, reason=reason)


def _opened(r: FileReader, index: int, last: bool, src, dst, seg: int | None = None) -> int:
    """Opens one segment, or (``seg`` given) the consecutive segments ``src`` holds."""
    try:
        n = r.keys.open_into(index, bool(last), src, dst) if seg is None else \
            r.keys.open_segments(index, bool(last), src, seg, dst)
    except SegmentAuthError:
        if r.events is not None:
            r.events.auth_failure()
        raise AuthenticationError(r.path) from None
    r.bytes += n
    return n


@operation(name="open")
def open_(hid: int, index: int, last: bool, src: int, src_len: int, dst: int) -> int:
    """Authenticate and decrypt ``src_len`` bytes of buffer ``src``: consecutive sealed segments
    ``index, index + 1, ...`` (all full but the final one, flagged last if ``last``) into ``dst``
    back to back; returns the plaintext bytes. Nothing is returned unless every segment
    authenticates. ``dst`` the same buffer as ``src`` (one buffer, the shim's local reads): the
    sealed bytes start one segment (``seg`` bytes) into it and the plaintext is written from its
    start, each segment's below its own sealed bytes."""
    r, src_view, out = bridge.batch(hid, FileReader, src, dst)
    seg, o = r.seg, r.keys.overhead
    at = seg if src == dst else 0
    if not o <= src_len <= len(src_view) - at or (not last and src_len % (seg + o)) \
            or len(out) < src_len - (-(-src_len // (seg + o)) or 1) * o:
        raise ValueError(f"{r.path}: segment buffers do not match the segment size")
    return _opened(r, index, last, src_view[at:at + src_len], out, seg)


@operation
def open_bytes(hid: int, index: int, last: bool, data: bytes) -> bytes:
    r = bridge.handle(hid, FileReader)
    if len(data) > r.seg + overhead(r.keys.suite):
        raise ValueError(f"{r.path}: segment over the segment size")
    out = bytearray(r.seg)
    n = _opened(r, index, last, data, out)
    return bytes(out[:n])


@operation
def close(hid: int) -> None:
    """The shim closed a reader: report the file as decrypted (bytes authenticated) or failed."""
    r = bridge.drop_handle(hid, FileReader)
    if r is not None and r.events is not None:
        r.events.decrypted(r.bytes)

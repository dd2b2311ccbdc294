"""The Python side of the Java shim, called in-process through pemja.

The shim calls ONE function, :func:`dispatch` ``(op, *args)`` (pemja can crash the JVM when one
interpreter alternates between function names, so every operation goes through this entry and is
dispatched here). Arguments and results are ints, strings, bytes and tuples only.

Zero copy: the shim registers each reusable direct ByteBuffer once (``register(address, size)``);
its memory is wrapped with ``ctypes`` as a writable memoryview, and every later ``seal``/``open``
names buffers by id, so a call moves ints only and AES-GCM runs straight into the Java buffer.

Operations (``dispatch(op, ...)``):

* ``configure(conf_json) -> session`` the ``heliosdb.crypto.*`` entries of Flink's configuration,
  validated with :func:`heliosdb_flink_crypto.config.load` (a ConfigError names the key).
* ``register(address, size) -> buffer`` / ``unregister(buffer)``
* ``writer(session, path) -> (handle, header_bytes, segment_size, overhead)``: the file is bound to
  ``path``'s binding name (F-24); ``reader`` checks the header against it. ForSt's live database
  files get ``heliosdb.crypto.forst.segment-size`` (``Session.segment_size_for``)
* ``seal(handle, index, last, src_buffer, src_len, dst_buffer) -> sealed_len``
* ``seal_bytes(handle, index, last, data) -> sealed bytes`` (the copying fallback)
* ``finish(handle, plaintext_bytes)`` the file is complete / ``discard(handle)`` it was aborted
* ``reader(session, path, header_bytes) -> handle``
* ``open(handle, index, last, src_buffer, src_len, dst_buffer) -> plaintext_len``
* ``open_bytes(handle, index, last, data) -> plaintext bytes``
* ``close(handle)`` the reader is done (reported as a decrypted file, or a failed one)
* ``malformed(session, path, reason)`` the shim could not frame a file (bad magic, length)
* ``reseal(session, src, dst, header) -> header | b""``: a rename changes the binding name (rebind.py)
* ``metrics_snapshot() -> json``; ``ping() -> version``
* ``flink_metrics(conf_json) -> json`` / ``check_restore(session, job_dir, pointer) -> tenant``: the
  lib jar's metered state backend and tenant checkpoint storage (lib_ops.py)
* ``insecure_reader_with_dek(path, header_bytes, dek_hex, bound_name) -> handle``: tests only
  (format vectors, version 1 readable), refused unless ``HELIOSDB_INSECURE_TEST_HOOKS=1``

Every error raised names the file; no message carries key material. Keys stay in this process.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import os
import threading
import time

from .. import __version__, config
from ..engine import check_binding, check_version, open_header
from ..errors import AuthenticationError, ConfigError, FormatError, HeliosCryptoError, PathError, SegmentAuthError
from ..format import overhead, parse
from ..crypto import file_fields, name_for
from .lib_ops import OPS as _LIB_OPS
from .rebind import OPS as _REBIND_OPS
from .session import Session


class _Writer:
    __slots__ = ("keys", "done", "path", "seg", "crypto", "file_id", "tenant")

    def __init__(self, keys, done, path: str, seg: int, crypto, file_id: str, tenant: str):
        self.keys, self.done, self.path, self.seg = keys, done, path, seg
        self.crypto, self.file_id, self.tenant = crypto, file_id, tenant


class _Reader:
    __slots__ = ("keys", "path", "seg", "bus", "fields", "bytes", "failed", "t0")

    def __init__(self, keys, path: str, seg: int, bus=None, fields=None):
        self.keys, self.path, self.seg, self.bus, self.fields = keys, path, seg, bus, fields or {}
        self.bytes, self.failed, self.t0 = 0, False, time.perf_counter()


_lock = threading.Lock()
_ids = itertools.count(1)
_sessions: dict[int, Session] = {}
_session_by_conf: dict[str, int] = {}
_handles: dict[int, object] = {}
_buffers: dict[int, tuple[object, memoryview]] = {}


def configure(conf_json: str) -> int:
    """A session for this configuration; the same configuration gets the same session (one DEK
    cache per process, shared by every encrypted scheme)."""
    conf = json.loads(conf_json)
    if not isinstance(conf, dict):
        raise ConfigError(config.PREFIX + "*", "configuration must be a map of strings")
    canonical = json.dumps(conf, sort_keys=True)
    with _lock:
        sid = _session_by_conf.get(canonical)
        if sid is not None:
            return sid
    session = Session(conf)
    with _lock:
        sid = _session_by_conf.get(canonical)
        if sid is None:
            sid = next(_ids)
            _sessions[sid], _session_by_conf[canonical] = session, sid
        return sid


def session(sid: int) -> Session:
    try:
        return _sessions[sid]
    except KeyError:
        raise ValueError(f"unknown session {sid}") from None


def register(address: int, size: int) -> int:
    """Wrap ``size`` bytes of native memory at ``address`` (a Java direct ByteBuffer the shim keeps
    alive until it calls ``unregister``)."""
    if address <= 0 or size <= 0:
        raise ValueError("register needs a native address and a positive size")
    arr = (ctypes.c_char * size).from_address(address)
    view = memoryview(arr).cast("B")
    bid = next(_ids)
    _buffers[bid] = (arr, view)
    return bid


def unregister(bid: int) -> None:
    entry = _buffers.pop(bid, None)
    if entry is not None:
        entry[1].release()


def _view(bid: int) -> memoryview:
    try:
        return _buffers[bid][1]
    except KeyError:
        raise ValueError(f"unknown buffer {bid}") from None


def _handle(h: int, kind):
    obj = _handles.get(h)
    if not isinstance(obj, kind):
        raise ValueError(f"unknown {kind.__name__.strip('_').lower()} handle {h}")
    return obj


def writer(sid: int, path: str) -> tuple[int, bytes, int, int]:
    try:
        s = session(sid)
        crypto = s.crypto_for(path)
        h, raw, keys, done = crypto.new_file(name=name_for(path), segment_size=s.segment_size_for(path))
    except HeliosCryptoError as e:  # a KMS error does not know the file: name it
        if path in str(e):
            raise
        raise PathError(path, e) from e
    hid = next(_ids)
    _handles[hid] = _Writer(keys, done, path, h.segment_size, crypto, h.file_id, h.tenant)
    return hid, raw, h.segment_size, overhead(h.suite)


def seal(hid: int, index: int, last: bool, src: int, src_len: int, dst: int) -> int:
    """Seal ``src_len`` bytes of buffer ``src`` as consecutive segments ``index, index + 1, ...``
    (every one full but the final one, which carries the last flag if ``last``) into ``dst``, back
    to back; returns the bytes written. One call may carry several segments (fewer hand-offs)."""
    w = _handle(hid, _Writer)
    seg, keys = w.seg, w.keys
    src_view, out = _view(src), _view(dst)
    if not 0 <= src_len <= len(src_view) or (not last and src_len % seg):
        raise ValueError(f"{w.path}: {src_len} bytes are not whole segments of {seg}")
    if len(out) < src_len + max(1, -(-src_len // seg)) * keys.overhead:
        raise ValueError(f"{w.path}: output buffer too small")
    return keys.seal_segments(index, bool(last), src_view[:src_len], seg, out)


def seal_bytes(hid: int, index: int, last: bool, data: bytes) -> bytes:
    w = _handle(hid, _Writer)
    if len(data) > w.seg:
        raise ValueError(f"{w.path}: segment of {len(data)} bytes over the segment size {w.seg}")
    out = bytearray(len(data) + overhead(w.keys.suite))
    n = w.keys.seal_into(index, bool(last), data, out)
    return bytes(out[:n])


def finish(hid: int, nbytes: int) -> None:
    w = _handles.pop(hid, None)
    if isinstance(w, _Writer):
        w.done(int(nbytes), path=w.path)


def discard(hid: int) -> None:
    """The shim aborted the file (a write failed): it has no final segment and never authenticates."""
    w = _handles.pop(hid, None)
    if isinstance(w, _Writer):
        w.crypto.bus.emit("encrypt", "error", path=w.path, file_id=w.file_id, tenant=w.tenant,
                          error="aborted")


def reader(sid: int, path: str, header: bytes) -> int:
    crypto = None
    try:
        crypto = session(sid).crypto_for(path)
        h, keys = crypto.open_file(header, path)
    except HeliosCryptoError as e:
        if crypto is not None:
            crypto.report_open_failure(e, path)
        raise
    hid = next(_ids)
    _handles[hid] = _Reader(keys, path, h.segment_size, crypto.bus, file_fields(h, path))
    return hid


def malformed(sid: int, path: str, reason: str) -> None:
    """The shim found a file it cannot even frame (bad magic, impossible length): report it."""
    reason = str(reason)[:200]
    session(sid).crypto_for(path).report_open_failure(FormatError(reason, path), path, reason=reason)


def insecure_reader_with_dek(path: str, header: bytes, dek_hex: str, bound_name: str = "") -> int:
    """TESTS ONLY (format vectors carry their DEK): open a header with a caller-given data key and
    check it is sealed for ``bound_name``. Refused unless HELIOSDB_INSECURE_TEST_HOOKS=1."""
    if os.environ.get("HELIOSDB_INSECURE_TEST_HOOKS") != "1":
        raise PermissionError("insecure_reader_with_dek is for tests (HELIOSDB_INSECURE_TEST_HOOKS=1)")
    h = parse(header, path)
    check_version(h, True, path)
    keys = open_header(h, bytes(header[:h.length]), bytes.fromhex(dek_hex), path)
    check_binding(h, bound_name, path)
    hid = next(_ids)
    _handles[hid] = _Reader(keys, path, h.segment_size)  # no events: not a real read
    return hid


def _opened(r: _Reader, index: int, last: bool, src, dst, seg: int | None = None) -> int:
    """Opens one segment, or (``seg`` given) the consecutive segments ``src`` holds."""
    try:
        n = r.keys.open_into(index, bool(last), src, dst) if seg is None else \
            r.keys.open_segments(index, bool(last), src, seg, dst)
    except SegmentAuthError:
        if not r.failed and r.bus is not None:
            r.bus.emit("auth_failure", "error", **r.fields)
        r.failed = True
        raise AuthenticationError(r.path) from None
    r.bytes += n
    return n


def open(hid: int, index: int, last: bool, src: int, src_len: int, dst: int) -> int:  # noqa: A001
    """Authenticate and decrypt ``src_len`` bytes of buffer ``src``: consecutive sealed segments
    ``index, index + 1, ...`` (all full but the final one, flagged last if ``last``) into ``dst``;
    returns the plaintext bytes. Nothing is returned unless every segment authenticates."""
    r = _handle(hid, _Reader)
    seg, o = r.seg, r.keys.overhead
    src_view, out = _view(src), _view(dst)
    count = max(1, -(-src_len // (seg + o)))
    if not o <= src_len <= len(src_view) or (not last and src_len % (seg + o)) \
            or len(out) < src_len - count * o:
        raise ValueError(f"{r.path}: segment buffers do not match the segment size")
    return _opened(r, index, last, src_view[:src_len], out, seg)


def open_bytes(hid: int, index: int, last: bool, data: bytes) -> bytes:
    r = _handle(hid, _Reader)
    if len(data) > r.seg + overhead(r.keys.suite):
        raise ValueError(f"{r.path}: segment over the segment size")
    out = bytearray(r.seg)
    n = _opened(r, index, last, data, out)
    return bytes(out[:n])


def close(hid: int) -> None:
    """The shim closed a reader: report the file as decrypted (bytes authenticated) or failed."""
    r = _handles.pop(hid, None)
    if isinstance(r, _Reader) and r.bus is not None:
        r.bus.emit("decrypt", "error" if r.failed else "ok", bytes=r.bytes,
                   seconds=time.perf_counter() - r.t0,
                   **({"error": "AuthenticationError"} if r.failed else {}), **r.fields)


def metrics_snapshot() -> str:
    """The process's metrics as a JSON object string (docs/metrics.md, contract for the shim)."""
    from .. import metrics
    return metrics.snapshot_json()


def ping() -> str:
    return __version__


OPS = {"configure": configure, "register": register, "unregister": unregister, "writer": writer,
       "seal": seal, "seal_bytes": seal_bytes, "finish": finish, "discard": discard, "reader": reader,
       "malformed": malformed, "insecure_reader_with_dek": insecure_reader_with_dek, "open": open,
       "open_bytes": open_bytes, "close": close, "metrics_snapshot": metrics_snapshot, "ping": ping}
OPS.update(_LIB_OPS)  # the lib jar's operations (flink_metrics, check_restore): lib_ops.py
OPS.update(_REBIND_OPS)  # reseal (the shim's rename): rebind.py


def dispatch(op: str, *args):
    """The one entry function the shim invokes."""
    fn = OPS.get(op)
    if fn is None:
        raise ValueError(f"unknown operation {op!r}")
    return fn(*args)


def reset() -> None:
    """Forget every session, handle and buffer (tests)."""
    with _lock:
        for s in _sessions.values():
            s.close()
        _sessions.clear()
        _session_by_conf.clear()
        _handles.clear()
        for bid in list(_buffers):
            unregister(bid)

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
* ``writer(session, path) -> (handle, header_bytes, segment_size, overhead)``
* ``seal(handle, index, last, src_buffer, src_len, dst_buffer) -> sealed_len``
* ``seal_bytes(handle, index, last, data) -> sealed bytes`` (the copying fallback)
* ``finish(handle, plaintext_bytes)`` the file is complete / ``discard(handle)`` it was aborted
* ``reader(session, path, header_bytes) -> handle``
* ``open(handle, index, last, src_buffer, src_len, dst_buffer) -> plaintext_len``
* ``open_bytes(handle, index, last, data) -> plaintext bytes``
* ``close(handle)``; ``ping() -> version``
* ``insecure_reader_with_dek(path, header_bytes, dek_hex) -> handle``: tests only (format vectors),
  refused unless ``HELIOSDB_INSECURE_TEST_HOOKS=1``

Every error raised names the file; no message carries key material. Keys stay in this process.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import os
import threading
from typing import Any, Mapping

from .. import __version__, config
from ..crypto import CheckpointCrypto
from ..engine import open_header
from ..engine.suites import SegmentAuthError
from ..errors import AuthenticationError, ConfigError, HeliosCryptoError
from ..format import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, overhead, parse, validate_segment_size
from ..kms.cache import CachePolicy

SUITES = {"aes-256-gcm": SUITE_AES_GCM, "aes-256-cbc-hmac-sha256": SUITE_AES_CBC_HMAC}


class Session:
    """One validated configuration and the CheckpointCrypto(s) it makes."""

    def __init__(self, conf: Mapping[str, Any]):
        self.conf = config.load(conf)
        c = self.conf
        try:
            self.segment_size = validate_segment_size(c["heliosdb.crypto.segment-size"])
        except ValueError as e:
            raise ConfigError("heliosdb.crypto.segment-size", str(e)) from None
        self.suite = SUITES[c["heliosdb.crypto.algorithm"]]
        self.settings = {k: v for k, v in c.items() if config._is_provider_setting(k)}
        self.policy = CachePolicy(max_age=c["heliosdb.crypto.cache.max-age"],
                                  max_bytes=c["heliosdb.crypto.cache.max-bytes"],
                                  max_files=c["heliosdb.crypto.cache.max-files"],
                                  outage_grace=c["heliosdb.crypto.cache.outage-grace"])
        self.default = CheckpointCrypto(c["heliosdb.crypto.kms.uri"], suite=self.suite,
                                        segment_size=self.segment_size, settings=self.settings,
                                        cache_policy=self.policy,
                                        trusted_uris=c["heliosdb.crypto.kms.decrypt-uris"])

    def __repr__(self) -> str:
        return f"Session({self.default!r})"

    def crypto_for(self, path: str) -> CheckpointCrypto:
        """THE place where a file path is mapped to the CheckpointCrypto (tenant, KMS URIs) that
        encrypts it or may decrypt it. Today: one configuration for every path."""
        return self.default

    def close(self) -> None:
        self.default.close()


class _Writer:
    __slots__ = ("keys", "done", "path", "seg")

    def __init__(self, keys, done, path: str, seg: int):
        self.keys, self.done, self.path, self.seg = keys, done, path, seg


class _Reader:
    __slots__ = ("keys", "path", "seg")

    def __init__(self, keys, path: str, seg: int):
        self.keys, self.path, self.seg = keys, path, seg


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
    crypto = session(sid).crypto_for(path)
    try:
        h, raw, keys, done = crypto.new_file()
    except HeliosCryptoError as e:  # a KMS error does not know the file: name it
        if path in str(e):
            raise
        raise PathError(path, e) from e
    hid = next(_ids)
    _handles[hid] = _Writer(keys, done, path, h.segment_size)
    return hid, raw, h.segment_size, overhead(h.suite)


def seal(hid: int, index: int, last: bool, src: int, src_len: int, dst: int) -> int:
    w = _handle(hid, _Writer)
    if not 0 <= src_len <= w.seg:
        raise ValueError(f"{w.path}: segment of {src_len} bytes over the segment size {w.seg}")
    out = _view(dst)
    if len(out) < src_len + overhead(w.keys.suite):
        raise ValueError(f"{w.path}: output buffer too small")
    return w.keys.seal_into(index, bool(last), _view(src)[:src_len], out)


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
        w.done(int(nbytes))


def discard(hid: int) -> None:
    _handles.pop(hid, None)


def reader(sid: int, path: str, header: bytes) -> int:
    crypto = session(sid).crypto_for(path)
    h, keys = crypto.open_file(header, path)
    hid = next(_ids)
    _handles[hid] = _Reader(keys, path, h.segment_size)
    crypto.bus.emit("decrypt", "ok", path=path, file_id=h.file_id, tenant=h.tenant,
                    key_version=h.slots[0].key_version)
    return hid


def insecure_reader_with_dek(path: str, header: bytes, dek_hex: str) -> int:
    """TESTS ONLY (format vectors carry their DEK): open a header with a caller-given data key.
    Refused unless the process runs with HELIOSDB_INSECURE_TEST_HOOKS=1."""
    if os.environ.get("HELIOSDB_INSECURE_TEST_HOOKS") != "1":
        raise PermissionError("insecure_reader_with_dek is for tests (HELIOSDB_INSECURE_TEST_HOOKS=1)")
    h = parse(header, path)
    keys = open_header(h, bytes(header[:h.length]), bytes.fromhex(dek_hex), path)
    hid = next(_ids)
    _handles[hid] = _Reader(keys, path, h.segment_size)
    return hid


def open(hid: int, index: int, last: bool, src: int, src_len: int, dst: int) -> int:  # noqa: A001
    r = _handle(hid, _Reader)
    if src_len > r.seg + overhead(r.keys.suite) or len(_view(dst)) < r.seg:
        raise ValueError(f"{r.path}: segment buffers do not match the segment size")
    try:
        return r.keys.open_into(index, bool(last), _view(src)[:src_len], _view(dst))
    except SegmentAuthError:
        raise AuthenticationError(r.path) from None


def open_bytes(hid: int, index: int, last: bool, data: bytes) -> bytes:
    r = _handle(hid, _Reader)
    if len(data) > r.seg + overhead(r.keys.suite):
        raise ValueError(f"{r.path}: segment over the segment size")
    out = bytearray(r.seg)
    try:
        n = r.keys.open_into(index, bool(last), data, out)
    except SegmentAuthError:
        raise AuthenticationError(r.path) from None
    return bytes(out[:n])


def close(hid: int) -> None:
    _handles.pop(hid, None)


def ping() -> str:
    return __version__


class PathError(HeliosCryptoError):
    """A failure that did not name the file it happened to (e.g. a KMS error): names it."""

    def __init__(self, path: str, cause: Exception):
        self.path = path
        super().__init__(f"{path}: {type(cause).__name__}: {cause}")


OPS = {"configure": configure, "register": register, "unregister": unregister, "writer": writer,
       "seal": seal, "seal_bytes": seal_bytes, "finish": finish, "discard": discard,
       "reader": reader, "insecure_reader_with_dek": insecure_reader_with_dek, "open": open, "open_bytes": open_bytes, "close": close, "ping": ping}


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

"""The bridge protocol between the Java shim and Python: its operations, sessions, handles, buffers.

The shim calls ONE function, :func:`dispatch` ``(op, *args)`` (pemja can crash the JVM when one
interpreter alternates between function names, so every operation goes through this entry and is
dispatched here). Arguments and results are ints, strings, bytes and tuples only. Each group of
operations registers itself here with :func:`operation` (file_ops, lib_ops, rebind, insecure_ops);
:mod:`.hooks`, the module the shim loads, imports them all. This module owns what they share:

* sessions: ``configure(conf_json) -> session`` (the same configuration, the same session);
* native buffers: the shim registers each reusable direct ByteBuffer once (``register(address,
  size) -> buffer``, ``unregister(buffer)``); its memory is wrapped with ``ctypes`` as a writable
  memoryview (:func:`batch`), so a ``seal``/``open`` call moves ints only and AES-GCM runs straight
  into the Java buffer;
* handles: the open files of the operations, by id (:func:`add_handle`, :func:`handle`,
  :func:`drop_handle`).
"""
from __future__ import annotations

import ctypes
import itertools
import json
import threading

from .. import __version__, config
from ..errors import ConfigError
from .session import Session

#: The version of this protocol: the operations, their arguments and the buffer layouts they assume
#: (e.g. where ``open`` in place finds the sealed bytes). Raised with any change either side depends
#: on; the jars carry it (FormatConstants.BRIDGE_PROTOCOL, generated) and refuse a package that
#: answers another (``protocol``), so a jar left from another install fails with a message, not with
#: every read failing to authenticate.
PROTOCOL = 4

#: op name -> function: every operation the shim may call.
OPS: dict[str, object] = {}

_lock = threading.Lock()
_ids = itertools.count(1)
_sessions: dict[int, Session] = {}
_session_by_conf: dict[str, int] = {}
_handles: dict[int, object] = {}
_buffers: dict[int, tuple[object, memoryview]] = {}


def operation(fn=None, *, name: str | None = None):
    """Register ``fn`` as the operation ``name`` (default: its own name); as a decorator too."""
    def add(f):
        op = name or f.__name__
        if op in OPS:
            raise ValueError(f"operation {op!r} registered twice")
        OPS[op] = f
        return f
    return add if fn is None else add(fn)


def dispatch(op: str, *args):
    """The one entry function the shim invokes."""
    fn = OPS.get(op)
    if fn is None:
        raise ValueError(f"unknown operation {op!r}")
    return fn(*args)


# -- sessions ------------------------------------------------------------------------
@operation
def configure(conf_json: str) -> int:
    """A session for this configuration (the ``heliosdb.crypto.*`` entries of Flink's, validated by
    config.load: a ConfigError names the key); the same configuration gets the same session (one DEK
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


def sessions() -> list[Session]:
    """Every session of this process (configured by either jar)."""
    return list(_sessions.values())


# -- native buffers -----------------------------------------------------------------
@operation
def register(address: int, size: int) -> int:
    """Wrap ``size`` bytes of native memory at ``address`` (a Java direct ByteBuffer the shim keeps
    alive until it calls ``unregister``)."""
    if address <= 0 or size <= 0:
        raise ValueError("register needs a native address and a positive size")
    arr = (ctypes.c_char * size).from_address(address)
    view_ = memoryview(arr).cast("B")
    bid = next(_ids)
    _buffers[bid] = (arr, view_)
    return bid


@operation
def unregister(bid: int) -> None:
    entry = _buffers.pop(bid, None)
    if entry is not None:
        entry[1].release()


def batch(hid: int, kind, src: int, dst: int) -> tuple[object, memoryview, memoryview]:
    """What a per-batch operation (``seal``, ``open``) works on: the open ``kind`` object of handle
    ``hid`` (:func:`handle`'s rule) and the memory of registered buffers ``src`` and ``dst``. One
    call, no loop: a batch's Python frames are most of its cost outside the cipher."""
    obj = _handles.get(hid)
    if not isinstance(obj, kind):
        raise ValueError(f"unknown {kind.kind} handle {hid}")
    try:
        return obj, _buffers[src][1], _buffers[dst][1]
    except KeyError:
        raise ValueError(f"unknown buffer {dst if src in _buffers else src}") from None


# -- handles ---------------------------------------------------------------------------
def add_handle(obj) -> int:
    hid = next(_ids)
    _handles[hid] = obj
    return hid


def handle(hid: int, kind):
    """The open ``kind`` object of handle ``hid``; ValueError naming the kind if there is none."""
    obj = _handles.get(hid)
    if not isinstance(obj, kind):
        raise ValueError(f"unknown {kind.kind} handle {hid}")
    return obj


def drop_handle(hid: int, kind):
    """Forget handle ``hid``; its ``kind`` object, or None (not open, or of another kind)."""
    obj = _handles.pop(hid, None)
    return obj if isinstance(obj, kind) else None


# -- the process ------------------------------------------------------------------------
@operation
def metrics_snapshot() -> str:
    """The process's metrics as a JSON object string (docs/metrics.md, contract for the shim)."""
    from .. import metrics
    return metrics.snapshot_json()


@operation
def ping() -> str:
    return __version__


@operation
def protocol() -> int:
    """This package's :data:`PROTOCOL`: the shim refuses to run on another."""
    return PROTOCOL


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

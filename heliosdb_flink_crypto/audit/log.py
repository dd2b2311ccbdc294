"""AuditLog: subscribes to an EventBus and writes one chained record per crypto operation.

The bus listener runs on the checkpointing thread and does almost nothing: it filters the event
through the allow-list, stamps time/host/pid and offers it to a bounded queue without waiting.
If the queue is full (the sink is slow or stuck) the event is dropped and counted; when the
writer catches up it first writes an ``audit_drop`` record (``dropped``: how many) into the chain,
so the gap is itself recorded. A background thread seals records into the hash chain and writes
them to every sink; a failing sink is counted (``write_errors``) and never raises into Flink.
``close()`` (also run at interpreter exit) drains the queue, writes ``audit_stop`` and closes.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import threading
import time
import weakref

from ..errors import ConfigError
from ..observe import BUS, EventBus
from .record import Chain, from_event, iso_time
from .sinks import FileSink

log = logging.getLogger(__name__)

#: Bus ops that are not audited: kms_call repeats dek_generate/wrap/unwrap (metrics use it).
IGNORED_OPS = frozenset({"kms_call"})
_LIVE: "weakref.WeakSet[AuditLog]" = weakref.WeakSet()
_TOTALS = {"written": 0, "dropped": 0, "write_errors": 0}
_TOTALS_LOCK = threading.Lock()


def live_logs() -> list["AuditLog"]:
    """Audit logs open in this process."""
    return list(_LIVE)


def totals() -> dict:
    """Process-wide counters over every audit log ever opened (monotonic; the metrics read them)."""
    with _TOTALS_LOCK:
        return dict(_TOTALS)


def _count(name: str, n: int = 1) -> None:
    with _TOTALS_LOCK:
        _TOTALS[name] += n


class AuditLog:
    def __init__(self, sinks, *, key: bytes | None = None, bus: EventBus | None = None,
                 queue_size: int = 10000, clock=time.time):
        if not sinks:
            raise ValueError("an audit log needs at least one sink")
        if queue_size < 1:
            raise ValueError("the audit queue size must be at least 1")
        self.sinks = list(sinks)
        self.bus = bus or BUS
        self._clock = clock
        self._chain = self._continue_chain(key)
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self.dropped = self.written = self.write_errors = 0
        self._drops_recorded = 0
        self._closed = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heliosdb-audit-writer", daemon=True)
        self._enqueue({"op": "audit_start"}, force=True)
        self._thread.start()
        self._listener = self.bus.subscribe(self._on_event)  # unsubscribe needs this very object
        atexit.register(self.close)
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"AuditLog(sinks={self.sinks}, alg={self._chain.alg})"

    def _continue_chain(self, key: bytes | None) -> Chain:
        """Continue the chain of an existing log file (a restarted process), refusing a key change."""
        chain = Chain(key)
        for sink in self.sinks:
            last = sink.last_record() if isinstance(sink, FileSink) else None
            if last is None:
                continue
            if not chain.authentic(last) or not isinstance(last.get("seq"), int):
                raise ConfigError("heliosdb.crypto.audit.file",
                                  f"the last record of {sink.path} does not verify with the configured "
                                  "HMAC key setting (key added, removed or changed?); move the old log "
                                  "aside or restore the key")
            chain.seq, chain.prev = last["seq"] + 1, last["hash"]
        return chain

    # -- the checkpointing thread's side -----------------------------------------------
    def _on_event(self, event: dict) -> None:
        op = event.get("op")
        if op in IGNORED_OPS or not isinstance(op, str) or op.startswith("audit_"):
            return
        self._enqueue(event)

    def _enqueue(self, event: dict, force: bool = False) -> None:
        """Only timestamp and queue here; filtering happens on the writer thread."""
        item = (self._clock(), os.getpid(), event)
        try:
            if force:
                self._queue.put(item, timeout=1)
            else:
                self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            _count("dropped")

    # -- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for t, pid, event in batch:
                try:
                    self._record_drops()
                    self._write(from_event(event), t, pid)
                except Exception:  # never let one odd event end the writer thread
                    log.exception("audit writer failed on one record")
                    with self._lock:
                        self.dropped += 1
                    _count("dropped")
            self._each_sink("flush")

    def _record_drops(self) -> None:
        with self._lock:
            n = self.dropped - self._drops_recorded
            self._drops_recorded = self.dropped
        if n:
            self._write({"op": "audit_drop", "outcome": "error", "dropped": n}, self._clock(), os.getpid())

    def _write(self, record: dict, t: float, pid: int) -> None:
        record.update(time=iso_time(t), host=self._host, pid=pid)
        line = self._chain.seal(record)
        for sink in self.sinks:
            try:
                sink.write(line)
            except Exception as e:  # a broken sink must not stop the others or the checkpoint
                self.write_errors += 1
                _count("write_errors")
                if self.write_errors in (1, 10, 100) or self.write_errors % 1000 == 0:
                    log.warning("audit sink %r failed (%d failures so far): %s", sink, self.write_errors,
                                type(e).__name__)
        self.written += 1
        _count("written")

    def _each_sink(self, method: str) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)()
            except Exception as e:
                self.write_errors += 1
                _count("write_errors")
                log.warning("audit sink %r %s failed: %s", sink, method, type(e).__name__)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, write what is queued plus ``audit_stop``, close the sinks. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.bus.unsubscribe(self._listener)
        atexit.unregister(self.close)
        self._enqueue({"op": "audit_stop", "events": self.written, "dropped": self.dropped}, force=True)
        self._stopping.set()
        self._thread.join(timeout)
        _LIVE.discard(self)
        if self._thread.is_alive():  # a stuck sink: leave it to the daemon thread
            log.warning("audit writer did not finish within %.0f s; %d events still queued",
                        timeout, self._queue.qsize())
            return
        self._record_drops()
        self._each_sink("close")

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stats(self) -> dict:
        with self._lock:
            return {"written": self.written, "dropped": self.dropped, "write_errors": self.write_errors,
                    "queued": self._queue.qsize()}

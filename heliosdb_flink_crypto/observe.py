"""One event bus the package reports to; the audit log and the metrics subscribe to it.

An event is a flat dict: ``op`` (encrypt, decrypt, dek_generate, wrap, unwrap, auth_failure,
kms_call, rotate, rewrap, delete, ...), ``outcome`` (ok / error / denied), and fields such as
``path``, ``file_id``, ``tenant``, ``kms_uri``, ``key_version``, ``bytes``, ``seconds``, ``error``.
Never key material: emitters pass ids, URIs and versions only. The events of a file being encrypted
or decrypted (encrypt, decrypt, auth_failure) come from its :class:`FileEvents`.
"""
from __future__ import annotations

import logging
import threading
from time import perf_counter
from typing import Callable

from .errors import FormatError

Listener = Callable[[dict], None]
log = logging.getLogger(__name__)


class EventBus:
    def __init__(self):
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Listener:
        with self._lock:
            self._listeners = self._listeners + [listener]
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x != listener]  # == matches bound methods

    def emit(self, op: str, outcome: str = "ok", **fields) -> None:
        listeners = self._listeners
        if not listeners:
            return
        event = {"op": op, "outcome": outcome, **fields}
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must never break a checkpoint
                log.exception("event listener %r failed", listener)


class FileEvents:
    """The events of one encrypted file, written or read: the one place they are emitted, for files
    of CheckpointCrypto's writers and readers (the streams call these methods back) and of the shim's
    hooks alike. ``fields`` identify the file (path, file_id, tenant, kms_uri, key_version), never
    key material.

    Writing: :meth:`encrypted` once the file is complete, or :meth:`aborted` if it never will be.
    Reading: :meth:`auth_failure` when a segment fails to authenticate (reported once per file), and
    :meth:`decrypted` when the reader closes (outcome ``error`` after a failure); :meth:`open_failed`
    if the file could not be opened at all.
    """

    __slots__ = ("bus", "fields", "failed", "t0", "_on_encrypted")

    def __init__(self, bus: EventBus, *, on_encrypted: Callable[[int], None] | None = None, **fields):
        self.bus, self.fields, self._on_encrypted = bus, fields, on_encrypted
        self.failed, self.t0 = False, perf_counter()

    def _seconds(self, seconds: float | None) -> float:
        return perf_counter() - self.t0 if seconds is None else seconds

    def encrypted(self, nbytes: int, seconds: float | None = None) -> None:
        """The file is complete, ``nbytes`` plaintext bytes; ``seconds`` spent sealing (default:
        since these events were made, with the file's header)."""
        if self._on_encrypted is not None:
            self._on_encrypted(nbytes)
        self.bus.emit("encrypt", "ok", bytes=nbytes, seconds=self._seconds(seconds), **self.fields)

    def aborted(self) -> None:
        """The file was abandoned: it has no final segment and never authenticates."""
        self.bus.emit("encrypt", "error", error="aborted", **self.fields)

    def auth_failure(self) -> None:
        if not self.failed:
            self.bus.emit("auth_failure", "error", **self.fields)
        self.failed = True

    def open_failed(self, error: Exception, **extra) -> None:
        """The file could not be opened for reading: a malformed one is an authentication failure too
        (a header that failed its MAC was reported by :meth:`auth_failure` already)."""
        if isinstance(error, FormatError):
            self.bus.emit("auth_failure", "error", error="malformed", **self.fields)
        self.bus.emit("decrypt", "error", error=type(error).__name__, **extra, **self.fields)

    def decrypted(self, nbytes: int, seconds: float | None = None) -> None:
        """The reader closed: ``nbytes`` plaintext bytes authenticated, ``seconds`` spent on them."""
        extra = {"error": "AuthenticationError"} if self.failed else {}
        self.bus.emit("decrypt", "error" if self.failed else "ok", bytes=nbytes,
                      seconds=self._seconds(seconds), **extra, **self.fields)


#: The process-wide bus. Components accept their own bus for tests.
BUS = EventBus()

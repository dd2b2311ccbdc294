"""One event bus the engine reports to; the audit log and the metrics subscribe to it.

An event is a flat dict: ``op`` (encrypt, decrypt, dek_generate, wrap, unwrap, auth_failure,
kms_call, rotate, rewrap, delete, ...), ``outcome`` (ok / error / denied), and fields such as
``path``, ``file_id``, ``tenant``, ``kms_uri``, ``key_version``, ``bytes``, ``seconds``, ``error``.
Never key material: emitters pass ids, URIs and versions only.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

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


#: The process-wide bus. Components accept their own bus for tests.
BUS = EventBus()

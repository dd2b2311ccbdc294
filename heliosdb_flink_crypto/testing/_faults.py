"""Fault injection shared by the stand-ins: failures, delays and call counts per operation.

A rule applies to one operation name (the wire protocol's: ``Encrypt``, ``wrapkey``, ...) or to
``"*"``; it fires ``times`` times (``None``: until cleared). The stand-in turns a failure's ``code``
into its own protocol's error (AWS ``__type``, Azure ``error.code``, gRPC status name).
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass
class Rule:
    op: str
    code: str | None = None
    delay: float = 0.0
    status: int | None = None
    times: int | None = 1


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.calls: Counter = Counter()

    def fail(self, op: str = "*", code: str = "InternalFailure", *, status: int | None = None,
             times: int | None = 1) -> None:
        """Answer the next ``times`` calls of ``op`` with error ``code`` (``times=None``: always)."""
        with self._lock:
            self._rules.append(Rule(op, code=code, status=status, times=times))

    def delay(self, seconds: float, op: str = "*", *, times: int | None = None) -> None:
        """Hold the next ``times`` answers to ``op`` for ``seconds`` (client timeouts fire)."""
        with self._lock:
            self._rules.append(Rule(op, delay=seconds, times=times))

    def clear(self) -> None:
        """Drop every rule and reset the call counts."""
        with self._lock:
            self._rules.clear()
            self.calls.clear()

    def take(self, op: str) -> tuple[float, Rule | None]:
        """Count a call of ``op``; the delay to apply and the failure rule to answer with, if any."""
        delay, failure = 0.0, None
        with self._lock:
            self.calls[op] += 1
            for r in list(self._rules):
                if r.op not in ("*", op):
                    continue
                if r.code is not None and failure is not None:
                    continue
                if r.code is None:
                    delay = max(delay, r.delay)
                else:
                    failure = r
                if r.times is not None:
                    r.times -= 1
                    if r.times <= 0:
                        self._rules.remove(r)
        return delay, failure

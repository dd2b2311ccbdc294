"""DEK cache: reuse unwrapped data keys instead of calling the KMS per file.

Encrypt side: one current DEK per scope (tenant + KMS URIs), replaced when it is older than
``max_age``, has sealed ``max_files`` files or ``max_bytes`` bytes (a DEK that some KMS could not
wrap lives at most ``incomplete_max_age``). If making a new DEK fails because
the KMS is unavailable, the current one stays in use for up to ``outage_grace`` past its max age;
after that the error propagates and writes fail closed.
Decrypt side: LRU of unwrapped DEKs keyed by a :class:`DekRef` (DEK id, key identity, KEK version,
SHA-256 of the wrapped bytes, tenant), bounded in entries and age. Callers put an entry only once
the header authenticated with that DEK, so a planted file (same DEK id, other wrapped bytes or a
wrong DEK) cannot make genuine files open with its key. Thread-safe. Counts hits and misses.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import KmsUnavailableError


class DekRef(NamedTuple):
    """What identifies one unwrapped DEK: everything of the key slot it came from."""
    dek_id: bytes
    key: tuple  # kms.identity.key_identity of the KMS URI
    key_version: str
    wrapped_sha256: bytes
    tenant: str


@dataclass(frozen=True)
class CachePolicy:
    max_age: float = 3600.0
    max_bytes: int = 1 << 40
    max_files: int = 1 << 20
    max_entries: int = 1024
    outage_grace: float = 3600.0
    incomplete_max_age: float = 60.0  # a DEK some KMS could not wrap is replaced this soon


@dataclass
class _Current:
    key: object = field(repr=False)
    created: float
    files: int = 0
    bytes: int = 0


class DekCache:
    def __init__(self, policy: CachePolicy | None = None, clock=time.monotonic):
        self.policy = policy or CachePolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        self._current: dict[object, _Current] = {}
        self._lru: OrderedDict = OrderedDict()
        self.hits = self.misses = self.evictions = self.grace_uses = 0

    def __repr__(self) -> str:
        return f"DekCache(entries={len(self._lru)}, hits={self.hits}, misses={self.misses})"

    def _fresh(self, c: _Current, now: float) -> bool:
        p = self.policy
        age = p.max_age if getattr(c.key, "complete", True) else min(p.max_age, p.incomplete_max_age)
        return now - c.created < age and c.files < p.max_files and c.bytes < p.max_bytes

    def current(self, scope, factory):
        """The DEK to seal one more file with in ``scope``; ``factory()`` makes a new one."""
        with self._lock:
            c = self._current.get(scope)
            if c and self._fresh(c, self._clock()):
                c.files += 1
                self.hits += 1
                return c.key
        with self._create_lock:
            with self._lock:  # another thread may have made it meanwhile
                c = self._current.get(scope)
                if c and self._fresh(c, self._clock()):
                    c.files += 1
                    self.hits += 1
                    return c.key
            self.misses += 1
            try:
                key = factory()
            except KmsUnavailableError:
                now = self._clock()
                if c and now - c.created < self.policy.max_age + self.policy.outage_grace:
                    with self._lock:
                        c.files += 1
                        self.grace_uses += 1
                    return c.key
                raise
            with self._lock:
                self._current[scope] = _Current(key, self._clock(), files=1)
            return key

    def add_bytes(self, scope, key, n: int) -> None:
        with self._lock:
            c = self._current.get(scope)
            if c and c.key is key:
                c.bytes += n

    def get(self, ref):
        with self._lock:
            e = self._lru.get(ref)
            if e is None or self._clock() - e[1] >= self.policy.max_age + self.policy.outage_grace:
                self.misses += 1
                return None
            self._lru.move_to_end(ref)
            self.hits += 1
            return e[0]

    def put(self, ref, dek: bytes) -> None:
        with self._lock:
            self._lru[ref] = (dek, self._clock())
            self._lru.move_to_end(ref)
            while len(self._lru) > self.policy.max_entries:
                self._lru.popitem(last=False)
                self.evictions += 1

    def invalidate(self, predicate=lambda ref: True) -> int:
        """Drop decrypt-side entries whose ref matches and every current DEK (e.g. after a rotation).

        Waits for a DEK creation in flight, so no DEK wrapped under a KEK version that was current
        before the call is handed out after it."""
        with self._create_lock, self._lock:
            gone = [r for r in self._lru if predicate(r)]
            for r in gone:
                del self._lru[r]
            self._current.clear()
            return len(gone)

    def stats(self) -> dict:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                    "entries": len(self._lru), "grace_uses": self.grace_uses}

"""Key rotation (docs/operations.md, Rotation): policy, persisted state, manual and scheduled rotation.

A :class:`RotationManager` watches the KEKs that wrap new data keys. ``rotate(uri)`` asks the
provider for a new KEK version (its ``rotate()`` method: the local keyring has one; cloud providers
have one where their SDK can rotate on demand) and at once drops the current DEKs of every attached
:class:`CheckpointCrypto`, so the next file gets a DEK wrapped under the new version. Old versions
keep decrypting (every header names its KEK version). ``check()`` (what the background thread runs
every ``check-interval``) rotates keys that are due and notices versions rotated elsewhere (another
process, the CLI, the KMS's own schedule), dropping current DEKs then too.

The last rotation time per KMS URI survives restarts in a small JSON state file (0600, written
atomically under a lock). Every rotation emits a ``rotate`` event on the bus.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .. import config as cfg
from ..errors import HeliosCryptoError, KmsError
from ..kms import KeyProvider, open_provider
from ..observe import BUS, EventBus
from .state import RotationState, default_state_path

log = logging.getLogger(__name__)
DAY = 86400.0


@dataclass(frozen=True)
class RotationPolicy:
    enabled: bool = True
    interval: float = 30 * DAY
    max_age: float = 90 * DAY
    auto_rotate: bool = True
    check_interval: float = 60.0

    @classmethod
    def from_config(cls, conf: Mapping[str, Any]) -> "RotationPolicy":
        v = {o.key: o.default for o in cfg.OPTIONS if o.key.startswith("heliosdb.crypto.rotation.")}
        for key in v:
            if conf.get(key) not in (None, ""):
                raw = conf[key]
                try:
                    v[key] = cfg.option(key).parse(raw) if isinstance(raw, str) else raw
                except ValueError as e:
                    raise cfg.ConfigError(key, str(e)) from None
        p = "heliosdb.crypto.rotation."
        return cls(bool(v[p + "enabled"]), float(v[p + "interval"]), float(v[p + "max-age"]),
                   bool(v[p + "auto-rotate"]), float(v[p + "check-interval"]))

    def due(self, age: float) -> str | None:
        """Why a key of this age must rotate now (``max-age`` / ``interval``), or None."""
        if not self.enabled:
            return None
        if age >= self.max_age:
            return "max-age"
        if self.auto_rotate and age >= self.interval:
            return "interval"
        return None


@dataclass(frozen=True)
class Rotation:
    kms_uri: str
    previous_version: str
    key_version: str
    reason: str
    seconds: float
    invalidated: int  # CheckpointCrypto instances whose current DEKs were dropped


def _created(provider: KeyProvider, version: str) -> float | None:
    versions = getattr(provider, "versions", None)
    if versions is None:
        return None
    try:
        created = versions().get(version, {}).get("created")
    except HeliosCryptoError:
        return None
    return float(created) if created else None


class RotationManager:
    """Rotates the KEKs ``uris`` by ``policy``; drops current DEKs of attached cryptos on rotation.

    ``provider(uri)`` opens a provider (default: ``open_provider`` with ``settings``); ``clock`` is
    wall time (seconds), injectable for tests. ``router`` (a TenantRouter) is attached as a whole:
    every crypto it makes, now or later, is invalidated on rotation.
    """

    def __init__(self, uris: Iterable[str], policy: RotationPolicy | None = None, state_path: str = "", *,
                 provider: Callable[[str], KeyProvider] | None = None, settings: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time, bus: EventBus | None = None, router=None):
        self.uris = list(dict.fromkeys(uris))
        self.policy = policy or RotationPolicy()
        self.state = RotationState(default_state_path(self.uris, state_path))
        self._providers: dict[str, KeyProvider] = {}
        self._open = provider or (lambda u: open_provider(u, settings or {}))
        self.clock, self.bus, self.router = clock, bus or BUS, router
        self._attached: list = []
        self._known: dict[str, str] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"RotationManager(uris={self.uris}, policy={self.policy})"

    @classmethod
    def from_config(cls, conf: Mapping[str, Any], router=None, **kw) -> "RotationManager":
        """Manage every encryption KMS URI of ``router`` (or of ``heliosdb.crypto.kms.uri``)."""
        uris = router.encryption_uris() if router is not None else _uris(conf.get("heliosdb.crypto.kms.uri"))
        settings = {k: str(v) for k, v in conf.items() if k.startswith("heliosdb.crypto.kms.") and k.count(".") >= 4}
        kw.setdefault("settings", settings)
        return cls(uris, RotationPolicy.from_config(conf), str(conf.get("heliosdb.crypto.rotation.state-file") or ""),
                   router=router, **kw)

    # -- who to tell --------------------------------------------------------------
    def attach(self, crypto) -> None:
        """Drop ``crypto``'s current DEKs whenever a KEK it wraps with rotates."""
        with self._lock:
            self._attached.append(crypto)

    def detach(self, crypto) -> None:
        with self._lock:
            self._attached = [c for c in self._attached if c is not crypto]

    def _invalidate(self, uri: str) -> int:
        cryptos = list(self._attached) + (self.router.cryptos() if self.router is not None else [])
        n = 0
        for c in cryptos:
            if uri in c.kms_uris:
                # invalidate() waits for a DEK creation in flight: no old-version DEK survives.
                c.cache.invalidate(lambda ref: False)  # current DEKs only; old files keep decrypting
                n += 1
        return n

    def provider(self, uri: str) -> KeyProvider:
        p = self._providers.get(uri)
        if p is None:
            p = self._providers[uri] = self._open(uri)
        return p

    # -- schedule -----------------------------------------------------------------
    def last_rotation(self, uri: str) -> float:
        """When ``uri``'s current version came into use (state file; else the provider's creation
        time for that version; else first seen now, which is then recorded)."""
        version = self.provider(uri).current_key_version()
        entry = self.state.get(uri)
        if entry and entry.get("version") == version:
            return float(entry["last_rotation"])
        when = _created(self.provider(uri), version)
        when = self.clock() if when is None else when
        self.state.record(uri, version, when)
        return when

    def status(self, uri: str) -> dict:
        last = self.last_rotation(uri)
        age = max(0.0, self.clock() - last)
        nxt = [x for x in (self.policy.max_age, self.policy.interval if self.policy.auto_rotate else None) if x]
        return {"kms_uri": uri, "key_version": self.provider(uri).current_key_version(),
                "last_rotation": last, "age_seconds": age, "due": self.policy.due(age),
                "next_rotation": (last + min(nxt)) if self.policy.enabled and nxt else None,
                "state_file": self.state.path}

    def due(self, uri: str) -> str | None:
        return self.policy.due(self.clock() - self.last_rotation(uri))

    # -- rotating -----------------------------------------------------------------
    def rotate(self, uri: str, reason: str = "manual") -> Rotation:
        """Make a new KEK version current now; new files use it from the next DEK on."""
        t0 = time.perf_counter()
        with self._lock:
            p = self.provider(uri)
            try:
                old = p.current_key_version()
                fn = getattr(p, "rotate", None)
                if fn is None:
                    raise KmsError(p.scheme or type(p).__name__, uri, "rotate",
                                   "this provider cannot rotate on demand; rotate the key in the KMS itself "
                                   "(docs/operations.md), the new version is picked up within check-interval")
                new = fn() or p.current_key_version()
            except HeliosCryptoError as e:
                self.bus.emit("rotate", "error", kms_uri=uri, reason=reason, error=str(e),
                              seconds=time.perf_counter() - t0)
                raise
            n = self._invalidate(uri)
            self._known[uri] = str(new)
            dt = time.perf_counter() - t0
        self.state.record(uri, str(new), self.clock())
        self.bus.emit("rotate", "ok", kms_uri=uri, key_version=str(new), previous_version=old, reason=reason,
                      seconds=dt)
        log.info("rotated %s: version %s -> %s (%s)", uri, old, new, reason)
        return Rotation(uri, old, str(new), reason, dt, n)

    def check(self) -> list[Rotation]:
        """One scheduler pass: pick up rotations made elsewhere, rotate what is due."""
        done = []
        for uri in self.uris:
            try:
                t0 = time.perf_counter()
                version = self.provider(uri).current_key_version()
                known = self._known.get(uri)
                if known is not None and version != known:  # rotated by someone else
                    with self._lock:
                        n = self._invalidate(uri)
                        self._known[uri] = version
                    self.state.record(uri, version, self.clock())
                    dt = time.perf_counter() - t0
                    self.bus.emit("rotate", "ok", kms_uri=uri, key_version=version, previous_version=known,
                                  reason="detected", seconds=dt)
                    done.append(Rotation(uri, known, version, "detected", dt, n))
                self._known[uri] = version
                reason = self.due(uri)
                if reason:
                    done.append(self.rotate(uri, reason))
            except HeliosCryptoError as e:
                log.warning("key rotation check of %s failed: %s", uri, e)
        return done

    # -- background thread --------------------------------------------------------
    def start(self) -> "RotationManager":
        """Run ``check()`` now and then every ``policy.check_interval`` on a daemon thread."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="heliosdb-key-rotation", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # pragma: no cover - never let the thread die silently
                log.exception("key rotation check failed")
            if self._stop.wait(self.policy.check_interval):
                return

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def close(self) -> None:
        self.stop()
        for p in self._providers.values():
            p.close()


def _uris(v) -> list[str]:
    if not v:
        return []
    return cfg.parse_list(v) if isinstance(v, str) else list(v)

"""A session of the shim: one validated ``heliosdb.crypto.*`` configuration and what it makes.

* :meth:`Session.crypto_for` is THE place where a file path is mapped to the CheckpointCrypto that
  encrypts it or may decrypt it: tenants by longest path prefix (lifecycle/tenants.py), each with its
  own KMS URIs and DEK cache; paths under no prefix use ``heliosdb.crypto.kms.uri`` (or are refused
  with ``heliosdb.crypto.tenants.require-match``). A file whose header names another tenant than
  its path is refused.
* The process's audit log and metrics are made from the first session's configuration (one of each
  per process: ``audit.process_log``, ``metrics.from_config``); metrics only when switched on (an
  endpoint port, or the lib jar's gauges: :meth:`Session.enable_metrics`), then every tenant's DEK
  cache is watched.
* :meth:`Session.segment_size_for` gives the files of ForSt's working database folders
  (``.../op_*/db/<file>``, :func:`forst_db_file`) their own segment size,
  ``heliosdb.crypto.forst.segment-size``: ForSt reads them by small block at random offsets.
* With ``heliosdb.crypto.allow-unencrypted-state-dirs`` on (the enc+ file systems then accept state
  left unencrypted next to encrypted checkpoints, flink/state_dirs.py), the audit log records a
  ``state_dirs_unguarded`` event as the session starts, naming the places (``places``) from the Flink
  keys the shim passes along with the ``heliosdb.crypto.*`` ones.
* FIPS mode is checked first (``fips.check``), and a RotationManager rotates the KEKs on schedule
  (``heliosdb.crypto.rotation.*``), dropping the tenants' current DEKs when a KEK rotates.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

from .. import config
from ..crypto import CheckpointCrypto
from ..errors import ConfigError
from ..format import validate_segment_size
from ..format.binding import components
from ..lifecycle.rotation import RotationManager
from ..lifecycle.tenants import TenantRouter
from ..observe import BUS
from . import state_dirs


class Session:
    def __init__(self, conf: Mapping[str, Any]):
        self.conf = config.load(conf)
        self.segment_size = _segment_size(self.conf, "heliosdb.crypto.segment-size")
        self.forst_segment_size = _segment_size(self.conf, "heliosdb.crypto.forst.segment-size")
        from .. import audit, fips, metrics
        fips.check(self.conf)  # fips-mode: refuse to start unless OpenSSL runs its FIPS provider
        self.router = TenantRouter.from_config(self.conf)
        self._watched: set[int] = set()
        self._lock = threading.Lock()
        audit.process_log(self.conf)
        if self.conf[state_dirs.ALLOW]:  # the file systems' guard is off: the audit log keeps that, and where
            # the shim passes the Flink keys its guard read (StateDirs.forSession) when places are unencrypted
            places = "; ".join(f"{p.key} = {p.value}" for p in state_dirs.unencrypted(conf))
            BUS.emit("state_dirs_unguarded", "ok", reason=f"{state_dirs.ALLOW} is true",
                     **({"places": places} if places else {}))
        # prometheus_client (the metrics extra) only when metrics are on: an endpoint, or the lib jar's gauges
        self.metrics = metrics.from_config(self.conf) if metrics.switched_on(self.conf) else None
        # scheduled KEK rotation in the running cluster (rotation.* options; state survives restarts)
        self.rotation = RotationManager.from_config(self.conf, router=self.router)
        if self.conf["heliosdb.crypto.rotation.enabled"]:
            self.rotation.start()

    def __repr__(self) -> str:
        return f"Session(tenants={[t.id or '<default>' for t in self.router.map.all()]})"

    def crypto_for(self, path: str) -> CheckpointCrypto:
        """The CheckpointCrypto for the file at ``path`` (its tenant's keys); KeyAccessError when no
        tenant owns the path and require-match is on."""
        c = self.router.crypto_for(path)
        if self.metrics is not None and id(c) not in self._watched:
            with self._lock:
                if id(c) not in self._watched:
                    self._watched.add(id(c))
                    self.metrics.watch_cache(c.cache)
        return c

    def enable_metrics(self) -> None:
        """Switch metrics on (the lib jar's metered state backend reads them, first before its first keyed
        backend restores or checkpoints); they count from now on."""
        if self.metrics is None:
            from .. import metrics
            with self._lock:
                if self.metrics is None:
                    self.metrics = metrics.from_config(self.conf)

    def segment_size_for(self, path: str) -> int:
        """The segment size of a new file at ``path``: ForSt's live database files get their own."""
        return self.forst_segment_size if forst_db_file(path) else self.segment_size

    def close(self) -> None:
        self.rotation.close()
        self.router.close()


def _segment_size(conf, key: str) -> int:
    try:
        return validate_segment_size(conf[key])
    except ValueError as e:
        raise ConfigError(key, str(e)) from None


def forst_db_file(path: str) -> bool:
    """A file of ForSt's working database (``<remote dir>/<job>/op_<operator>_attempt_<n>/db/<file>``,
    ForStPathContainer in Flink 2.x), which lives in the primary directory when that is remote."""
    parts = components(path)
    return len(parts) >= 3 and parts[-2] == "db" and parts[-3].startswith("op_")


__all__ = ["Session", "forst_db_file"]

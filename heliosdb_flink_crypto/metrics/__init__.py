"""Prometheus metrics of checkpoint encryption (docs/metrics.md).

``Metrics(bus)`` subscribes to the event bus; ``MetricsServer(metrics.registry, port)`` serves
them on 127.0.0.1; ``snapshot()`` returns the current figures as a flat dict for the Java shim.
``from_config(conf, crypto=...)`` wires all of it from ``heliosdb.crypto.metrics.*`` once per
process.

``prometheus_client`` (the ``metrics`` extra) is imported only when metrics are switched on
(``from_config``, or ``Metrics`` / ``MetricsServer`` used directly); a missing one is a
MissingExtraError naming the extra. Nothing else in the package needs it.
"""
from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError, MissingExtraError
from ..observe import EventBus
from .server import parse_ports, snapshot as _snapshot

if TYPE_CHECKING:  # pragma: no cover
    from .collector import Metrics
    from .server import MetricsServer

_lock = threading.Lock()
_process: dict = {}


def __getattr__(name: str):
    """``Metrics``, ``MetricsServer``, ``provider_of``: imported on first use (they need prometheus_client)."""
    if name in ("Metrics", "provider_of"):
        _require("metrics")
        from . import collector
        return getattr(collector, name)
    if name == "MetricsServer":
        from .server import MetricsServer
        return MetricsServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require(feature: str) -> None:
    try:
        importlib.import_module("prometheus_client")
    except ImportError:
        raise MissingExtraError(feature, "prometheus_client", "metrics") from None


def _ports(conf: Mapping[str, Any]) -> tuple[dict, list[int]]:
    from ..audit import config_values
    opts = config_values(conf, "heliosdb.crypto.metrics.")
    try:
        return opts, parse_ports(opts["heliosdb.crypto.metrics.port"])
    except ValueError as e:
        raise ConfigError("heliosdb.crypto.metrics.port", str(e)) from None


def switched_on(conf: Mapping[str, Any]) -> bool:
    """True when ``conf`` asks for an endpoint (``heliosdb.crypto.metrics.port`` not 0) or the process
    already keeps metrics (e.g. the lib jar's metered state backend asked for them)."""
    return bool(_ports(conf)[1]) or "metrics" in _process


def from_config(conf: Mapping[str, Any], bus: EventBus | None = None, crypto=None) -> Metrics:
    """The process's Metrics (made on the first call; later calls add ``crypto``'s cache), with
    an HTTP endpoint when ``heliosdb.crypto.metrics.port`` is not 0. MissingExtraError without
    prometheus_client."""
    opts, ports = _ports(conf)
    with _lock:
        m = _process.get("metrics")
        if m is None:
            _require("heliosdb.crypto.metrics (the Prometheus endpoint or the lib jar's Flink metrics)")
            from .collector import Metrics
            from .server import MetricsServer
            m = Metrics(bus, max_tenants=opts["heliosdb.crypto.metrics.max-tenants"])
            if ports:
                _process["server"] = MetricsServer(m.registry, ports, opts["heliosdb.crypto.metrics.host"])
            _process["metrics"] = m
    if crypto is not None:
        m.watch_cache(crypto.cache)
    return m


def server() -> MetricsServer | None:
    """The process's endpoint, if ``from_config`` started one."""
    return _process.get("server")


def snapshot(metrics: Metrics | None = None) -> dict[str, float]:
    """Current values of ``metrics`` (default: the process's) as ``{"name{labels}": value}``;
    empty if metrics were never set up. The contract the Java shim relies on: docs/metrics.md."""
    m = metrics or _process.get("metrics")
    return _snapshot(m.registry) if m else {}


def snapshot_json() -> str:
    """:func:`snapshot` as a JSON object string (the Java shim's hook results are strings/ints)."""
    import json
    return json.dumps(snapshot(), sort_keys=True)


def shutdown() -> None:
    """Stop the process's endpoint and forget its metrics (tests, interpreter shutdown)."""
    with _lock:
        s, m = _process.pop("server", None), _process.pop("metrics", None)
    if s:
        s.close()
    if m:
        m.close()


__all__ = ["Metrics", "MetricsServer", "from_config", "parse_ports", "provider_of", "server", "shutdown",
           "snapshot", "snapshot_json", "switched_on"]

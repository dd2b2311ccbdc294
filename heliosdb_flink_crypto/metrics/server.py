"""The per-process Prometheus endpoint (``/metrics``) and the snapshot the Java shim polls (no
prometheus_client import until an endpoint starts)."""
from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def parse_ports(spec) -> list[int]:
    """``9250`` or ``9250-9260`` -> candidate ports; ``0`` -> [] (endpoint off)."""
    s = str(spec).strip()
    lo, sep, hi = s.partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise ValueError(f"{spec!r} is not a port or a port range such as 9250-9260") from None
    if first == 0 and not sep:
        return []
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"{spec!r} is not a port range within 1-65535")
    return list(range(first, last + 1))


class MetricsServer:
    """Serves ``registry`` over HTTP on ``host`` at the first free port of ``ports``."""

    def __init__(self, registry: CollectorRegistry, ports, host: str = "127.0.0.1"):
        from prometheus_client import start_http_server
        ports = parse_ports(ports) if isinstance(ports, (str, int)) else list(ports)
        if not ports:
            raise ValueError("no port to serve metrics on")
        for port in ports:
            try:
                self._server, self._thread = start_http_server(port, addr=host, registry=registry)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
                raise
            self.host, self.port = host, port
            log.info("metrics endpoint on http://%s:%d/metrics", host, port)
            return
        raise OSError(errno.EADDRINUSE, f"every port of {ports[0]}-{ports[-1]} on {host} is in use")

    def __repr__(self) -> str:
        return f"MetricsServer({self.url})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def snapshot(registry: CollectorRegistry) -> dict[str, float]:
    """Current values, flat: ``name`` or ``name{label="value",...}`` (labels sorted) -> float.

    Counters appear as ``..._total``, histograms as ``..._count`` and ``..._sum`` (no buckets),
    gauges as their name; ``_created`` timestamps are left out.
    """
    out: dict[str, float] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name.endswith(("_created", "_bucket")):
                continue
            if s.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] = float(s.value)
            else:
                out[s.name] = float(s.value)
    return out

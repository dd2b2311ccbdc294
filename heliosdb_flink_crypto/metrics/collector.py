"""Metrics fed from the event bus, kept in their own prometheus-client registry.

Labels stay bounded and free of key material: ``provider`` is the KMS URI scheme (local,
aws-kms, azure-kv, gcp-kms, pkcs11; anything else "other"), never the URI with its key id or
path; ``op``/``kms_op`` come from fixed sets; ``reason`` is an error class name of this package;
``tenant`` is capped at ``max_tenants`` distinct values (later ones count as ``_other``).
DEK cache figures are read from the watched caches and the audit counters from the audit log at
scrape time.
"""
from __future__ import annotations

import threading
import weakref
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .. import errors
from ..kms import PROVIDERS
from ..observe import BUS, EventBus

FILE_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120)
KMS_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
OPS = frozenset({"encrypt", "decrypt", "dek_generate", "wrap", "unwrap", "auth_failure", "rotate",
                 "rewrap", "reencrypt", "rebind", "delete", "destroy", "min_version", "tenant_mismatch", "kms_call"})
KMS_OPS = frozenset({"dek_generate", "wrap", "unwrap", "rewrap", "rotate", "current_key_version",
                     "test_connection", "destroy"})
REASONS = frozenset(n for n in dir(errors) if isinstance(getattr(errors, n), type)
                    and issubclass(getattr(errors, n), Exception)) | {"OSError", "ValueError", "ImportError"}
OTHER_TENANT = "_other"


def provider_of(uri) -> str:
    if not isinstance(uri, str) or not uri:
        return "none"
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:
        return "other"
    return scheme if scheme in PROVIDERS else "other"


class Metrics:
    def __init__(self, bus: EventBus | None = None, registry: CollectorRegistry | None = None,
                 max_tenants: int = 100):
        self.registry = registry or CollectorRegistry()
        self.bus = bus or BUS
        self.max_tenants = max_tenants
        self._tenants: set[str] = set()
        self._lock = threading.Lock()
        self._caches: list = []
        self._children: dict = {}
        r, n = self.registry, "heliosdb_"
        self.encryptions = Counter(n + "checkpoint_encryption_total", "Files encrypted.", ["tenant"], registry=r)
        self.decryptions = Counter(n + "checkpoint_decryption_total", "Files opened for decryption.",
                                   ["tenant"], registry=r)
        self.enc_seconds = Histogram(n + "checkpoint_encryption_duration_seconds",
                                     "Time from opening to closing an encrypted file.", buckets=FILE_BUCKETS,
                                     registry=r)
        self.dec_seconds = Histogram(n + "checkpoint_decryption_duration_seconds",
                                     "Time to open an encrypted file for reading (header, data key, "
                                     "authentication).", buckets=FILE_BUCKETS, registry=r)
        self.kms_seconds = Histogram(n + "kms_call_duration_seconds", "KMS call latency.",
                                     ["provider", "op"], buckets=KMS_BUCKETS, registry=r)
        self.rotations = Counter(n + "key_rotation_total", "Key-encryption-key rotations.",
                                 ["provider", "outcome"], registry=r)
        self.enc_errors = Counter(n + "encryption_errors_total", "Failed encryptions.", ["reason"], registry=r)
        self.dec_errors = Counter(n + "decryption_errors_total", "Failed decryptions.", ["reason"], registry=r)
        self.auth_failures = Counter(n + "auth_failures_total",
                                     "Files that failed authentication (tampered, truncated, wrong key).",
                                     registry=r)
        self.enc_bytes = Counter(n + "checkpoint_encrypted_bytes_total", "Plaintext bytes encrypted.",
                                 ["tenant"], registry=r)
        self.dec_bytes = Counter(n + "checkpoint_decrypted_bytes_total",
                                 "Plaintext size of files opened for decryption.", ["tenant"], registry=r)
        self.kms_calls = Counter(n + "kms_calls_total", "KMS calls.", ["provider", "op", "outcome"], registry=r)
        self.operations = Counter(n + "crypto_operations_total", "Every crypto event by operation and outcome.",
                                  ["op", "outcome"], registry=r)
        self.fips = Gauge(n + "crypto_fips_enabled", "1 if OpenSSL runs its FIPS provider.", registry=r)
        self.fips.set_function(_fips_enabled)
        self.registry.register(_PullCollector(self))
        self._listener = self.bus.subscribe(self.on_event)  # unsubscribe needs this very object

    def __repr__(self) -> str:
        return f"Metrics(caches={len(self._caches)})"

    def watch_cache(self, cache) -> None:
        """Report a DekCache's hits, misses, evictions, entries (e.g. ``crypto.cache``)."""
        with self._lock:
            self._caches.append(weakref.ref(cache))

    def caches(self) -> list:
        with self._lock:
            live = [c() for c in self._caches]
            self._caches = [weakref.ref(c) for c in live if c is not None]
            return [c for c in live if c is not None]

    def close(self) -> None:
        self.bus.unsubscribe(self._listener)

    def _tenant(self, tenant) -> str:
        tenant = tenant if isinstance(tenant, str) else ""
        with self._lock:
            if tenant in self._tenants:
                return tenant
            if len(self._tenants) < self.max_tenants:
                self._tenants.add(tenant)
                return tenant
        return OTHER_TENANT

    def _l(self, metric, *labels):
        """``metric.labels(*labels)``, cached (labels() takes a lock and builds tuples each call)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_event(self, e: dict) -> None:
        op, outcome = e.get("op"), e.get("outcome", "ok")
        outcome = outcome if outcome in ("ok", "error", "denied") else "other"
        self._l(self.operations, op if op in OPS else "other", outcome).inc()
        seconds, nbytes = _number(e.get("seconds")), _number(e.get("bytes"))
        if op in ("encrypt", "decrypt"):
            enc = op == "encrypt"
            if outcome != "ok":
                reason = e.get("error")
                self._l(self.enc_errors if enc else self.dec_errors, reason if reason in REASONS else "other").inc()
                return
            tenant = self._tenant(e.get("tenant"))
            self._l(self.encryptions if enc else self.decryptions, tenant).inc()
            if nbytes is not None:
                self._l(self.enc_bytes if enc else self.dec_bytes, tenant).inc(nbytes)
            if seconds is not None:
                (self.enc_seconds if enc else self.dec_seconds).observe(seconds)
        elif op == "kms_call":
            provider, kop = provider_of(e.get("kms_uri")), e.get("kms_op")
            kop = kop if kop in KMS_OPS else "other"
            self._l(self.kms_calls, provider, kop, outcome).inc()
            if seconds is not None:
                self._l(self.kms_seconds, provider, kop).observe(seconds)
        elif op == "auth_failure":
            self.auth_failures.inc()
        elif op == "rotate":
            self._l(self.rotations, provider_of(e.get("kms_uri")), outcome).inc()


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


def _fips_enabled() -> float:
    from ..fips import openssl_fips_enabled
    return 1.0 if openssl_fips_enabled() else 0.0


class _PullCollector:
    """Figures read at scrape time: DEK caches and the audit log."""

    def __init__(self, metrics: Metrics):
        self._m = weakref.ref(metrics)

    def collect(self):
        from ..audit.log import totals
        m = self._m()
        stats = [c.stats() for c in m.caches()] if m else []
        n = "heliosdb_dek_cache_"
        for key, help_ in (("hits", "DEK cache hits."), ("misses", "DEK cache misses."),
                           ("evictions", "DEKs evicted from the cache."),
                           ("grace_uses", "Files sealed with an expired DEK while the KMS was unavailable.")):
            yield CounterMetricFamily(n + key, help_, value=sum(s.get(key, 0) for s in stats))
        yield GaugeMetricFamily(n + "entries", "Unwrapped DEKs held.", value=sum(s.get("entries", 0) for s in stats))
        t = totals()
        yield CounterMetricFamily("heliosdb_audit_events_written", "Audit records written.", value=t["written"])
        yield CounterMetricFamily("heliosdb_audit_events_dropped", "Audit records dropped (queue full).",
                                  value=t["dropped"])
        yield CounterMetricFamily("heliosdb_audit_write_errors", "Audit sink write failures.",
                                  value=t["write_errors"])

"""Hook operations of the lib jar (``heliosdb-flink-crypto-lib.jar`` in Flink's ``lib/``).

The lib jar's classes (``io.heliosdb.flink.crypto.lib``: the metered state backend and the tenant
checkpoint storage) reach Python through the shim's bridge (``PythonBridge``, compiled into both
jars) and the same single entry, :func:`heliosdb_flink_crypto.flink.hooks.dispatch`; pemja runs one
CPython per JVM, so the sessions, the metrics registry and the tenant router are the very ones the
FileSystem plugin uses.

* ``flink_metrics(conf_json) -> json``: the figures the Flink gauges show, one total per name of
  :data:`FLINK_GAUGES` (summed over labels; histograms as ``_sum`` seconds and ``_count``). If no
  session exists in this process yet (the FileSystem has not opened a file), one is configured from
  ``conf_json`` first, so the process's metrics exist.
* ``check_restore(session, job_dir, pointer, action="restore") -> tenant``: the tenant guard. The
  tenant of the restore pointer (``action="savepoint"``: of a savepoint's target directory) and of the
  job's own checkpoint directory, each by the session's TenantRouter (longest ``path-prefix``); a
  :class:`TenantRestoreError` naming both tenants and the path if they differ. Returns the job's
  tenant id (``""`` for the default tenant).
"""
from __future__ import annotations

import json

from ..errors import TenantRestoreError
from ..observe import BUS
from . import bridge

#: gauge name -> the snapshot sample it sums (docs/metrics.md, "Flink's own metric system").
#: The Java side (lib/FlinkGauges.NAMES) registers exactly these names, in this order.
_SOURCES = {
    "heliosdb_checkpoint_encryption_total": "heliosdb_checkpoint_encryption_total",
    "heliosdb_checkpoint_decryption_total": "heliosdb_checkpoint_decryption_total",
    "heliosdb_checkpoint_encryption_duration_seconds_sum": "heliosdb_checkpoint_encryption_duration_seconds_sum",
    "heliosdb_checkpoint_encryption_duration_seconds_count": "heliosdb_checkpoint_encryption_duration_seconds_count",
    "heliosdb_checkpoint_decryption_duration_seconds_sum": "heliosdb_checkpoint_decryption_duration_seconds_sum",
    "heliosdb_checkpoint_decryption_duration_seconds_count": "heliosdb_checkpoint_decryption_duration_seconds_count",
    "heliosdb_kms_call_duration_seconds_sum": "heliosdb_kms_call_duration_seconds_sum",
    "heliosdb_kms_call_duration_seconds_count": "heliosdb_kms_call_duration_seconds_count",
    "heliosdb_key_rotation_total": "heliosdb_key_rotation_total",
    "heliosdb_encryption_errors_total": "heliosdb_encryption_errors_total",
    "heliosdb_decryption_errors_total": "heliosdb_decryption_errors_total",
    "heliosdb_auth_failures_total": "heliosdb_auth_failures_total",
    "heliosdb_checkpoint_encrypted_bytes_total": "heliosdb_checkpoint_encrypted_bytes_total",
    "heliosdb_checkpoint_decrypted_bytes_total": "heliosdb_checkpoint_decrypted_bytes_total",
    "heliosdb_dek_cache_hits_total": "heliosdb_dek_cache_hits_total",
    "heliosdb_dek_cache_misses_total": "heliosdb_dek_cache_misses_total",
    "heliosdb_kms_calls_total": "heliosdb_kms_calls_total",
}
FLINK_GAUGES = tuple(_SOURCES)


def aggregate(snapshot: dict[str, float]) -> dict[str, float]:
    """:data:`FLINK_GAUGES` -> total of the matching samples of ``snapshot`` (0.0 when absent)."""
    wanted = {src: name for name, src in _SOURCES.items()}
    out = dict.fromkeys(FLINK_GAUGES, 0.0)
    for key, value in snapshot.items():
        name = wanted.get(key.split("{", 1)[0])
        if name is not None:
            out[name] += float(value)
    return out


@bridge.operation
def flink_metrics(conf_json: str) -> str:
    from .. import metrics
    if not bridge.sessions():  # nothing configured Python in this JVM yet: do it, as the FileSystem would
        bridge.configure(conf_json)
    for s in bridge.sessions():  # the metered state backend switches metrics on
        s.enable_metrics()
    return json.dumps(aggregate(metrics.snapshot()), sort_keys=True)


@bridge.operation
def check_restore(sid: int, job_dir: str, pointer: str, action: str = "restore") -> str:
    if action not in ("restore", "savepoint"):
        raise ValueError(f"unknown tenant check {action!r}")
    tenants = bridge.session(sid).router.map
    job_tenant = tenants.tenant_for(job_dir).id
    pointer_tenant = tenants.tenant_for(pointer).id
    if pointer_tenant != job_tenant:
        err = TenantRestoreError(pointer, pointer_tenant, job_dir, job_tenant, action)
        BUS.emit("tenant_mismatch", "denied", path=pointer, tenant=job_tenant, header_tenant=pointer_tenant,
                 error="TenantRestoreError")
        raise err
    return job_tenant


__all__ = ["FLINK_GAUGES", "TenantRestoreError", "aggregate", "check_restore", "flink_metrics"]

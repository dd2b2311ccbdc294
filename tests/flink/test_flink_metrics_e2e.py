"""The lib jar's metered state backend in a real Flink job (PyFlink's local MiniCluster).

* Flink's own metric system: a job with ``state.backend.type`` = the metered factory checkpoints to
  ``enc+file://``; Flink's REST API shows ``heliosdb_checkpoint_encryption_total`` > 0 on the
  TaskManager (``/taskmanagers/<id>/metrics``) and on the keyed operator (web UI's task metrics), and
  Flink's Prometheus reporter (PyFlink's plugins/metrics-prometheus) serves it as
  ``flink_taskmanager_heliosdb_checkpoint_encryption_total``.
* The metered factory around RocksDB with incremental checkpoints: the run restores exactly from
  its retained incremental checkpoint.
* Changelog on: Flink wraps the metered backend in its changelog backend; the restore is exact.
"""
from __future__ import annotations

import glob
import json
import os
import re
import threading
import urllib.request

import pytest

import harness as h
from cluster import free_port
from heliosdb_flink_crypto.flink import METERED_STATE_BACKEND
from heliosdb_flink_crypto.flink.lib_ops import FLINK_GAUGES

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 64


def _job(**kw):
    return dict(records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True, **kw)


def _metered(crypto_conf, backend: str) -> dict:
    return dict(crypto_conf, **{"state.backend.type": METERED_STATE_BACKEND,
                                "heliosdb.crypto.state-backend": backend})


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return None
    return json.loads(body) if body[:1] in "[{" else body


def _tm_metrics(rest: int) -> dict[str, float]:
    tms = (_get(f"http://127.0.0.1:{rest}/taskmanagers") or {}).get("taskmanagers") or []
    if not tms:
        return {}
    got = _get(f"http://127.0.0.1:{rest}/taskmanagers/{tms[0]['id']}/metrics?get={','.join(FLINK_GAUGES)}") or []
    return {m["id"]: float(m["value"]) for m in got}


def _operator_metric_ids(rest: int) -> list[str]:
    jobs = (_get(f"http://127.0.0.1:{rest}/jobs") or {}).get("jobs") or []
    ids = []
    for job in jobs:
        detail = _get(f"http://127.0.0.1:{rest}/jobs/{job['id']}") or {}
        for v in detail.get("vertices", []):
            ids += [m["id"] for m in _get(f"http://127.0.0.1:{rest}/jobs/{job['id']}/vertices/{v['id']}/metrics") or []]
    return ids


def test_flink_rest_and_prometheus_reporter_show_the_crypto_metrics(tmp_path, crypto_conf):
    rest, prom = free_port(), free_port()
    conf = dict(_metered(crypto_conf, "hashmap"), **{
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": str(prom), "metrics.reporter.prom.host": "127.0.0.1"})
    # a MiniCluster loads reporters from its class path only (no plugins): put PyFlink's on it
    import pyflink
    reporter = glob.glob(os.path.join(os.path.dirname(pyflink.__file__), "plugins", "metrics-prometheus", "*.jar"))
    stop = tmp_path / "stop"
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("run", h.run_job(
        str(tmp_path), "metered", f"enc+file://{tmp_path}/checkpoints", mode="hold", stop_file=str(stop),
        rest_port=rest, conf=conf, timeout=170, env={"HADOOP_CLASSPATH": os.pathsep.join(reporter)},
        **_job(throttle_ms=5))), daemon=True)
    t.start()
    try:
        tm = h.wait_for(lambda: (lambda m: m if m.get("heliosdb_checkpoint_encryption_total", 0) >= 2 else None)(
            _tm_metrics(rest)), 130, "TaskManager metric heliosdb_checkpoint_encryption_total > 0", interval=1)
        operator_ids = _operator_metric_ids(rest)
        scraped = _get(f"http://127.0.0.1:{prom}/") or ""
    finally:
        stop.touch()
        t.join(180)
    run = box.get("run")
    assert run is not None and run.ok, run.describe() if run else "the job did not end"
    # every gauge is on the TaskManager, named exactly like the Prometheus metric
    assert set(tm) == set(FLINK_GAUGES), sorted(tm)
    assert tm["heliosdb_checkpoint_encrypted_bytes_total"] > 0
    assert tm["heliosdb_checkpoint_encryption_duration_seconds_count"] >= tm["heliosdb_checkpoint_encryption_total"] - 5
    assert tm["heliosdb_checkpoint_encryption_duration_seconds_sum"] > 0
    assert tm["heliosdb_kms_calls_total"] >= 1
    assert tm["heliosdb_auth_failures_total"] == 0 and tm["heliosdb_encryption_errors_total"] == 0
    # the keyed operator lists them too (web UI: task metrics), e.g. "0.count.heliosdb_..."
    assert any(i.endswith(".heliosdb_checkpoint_encryption_total") for i in operator_ids), operator_ids[:20]
    # Flink's Prometheus reporter: flink_taskmanager_<name>
    values = [float(m.group(1)) for m in re.finditer(
        r"^flink_taskmanager_heliosdb_checkpoint_encryption_total(?:\{[^}]*\})? (\S+)$", scraped, re.M)]
    assert values and max(values) > 0, scraped[:2000]
    # no label or value carries the keyring path
    assert crypto_conf["heliosdb.crypto.kms.uri"].split("://", 1)[1] not in scraped


def test_metered_rocksdb_incremental_restores_exactly(tmp_path, crypto_conf):
    conf = _metered(crypto_conf, "rocksdb")
    first = h.run_job(str(tmp_path), "first", f"enc+file://{tmp_path}/checkpoints", mode="cancel", conf=conf,
                      stop_after=3, **_job(backend="rocksdb", incremental=True, throttle_ms=2))
    assert first.ok, first.describe()
    shared = [p for p in h.all_files(f"{tmp_path}/checkpoints") if f"{os.sep}shared{os.sep}" in p]
    assert shared, "no shared (incremental) SST files were written"
    assert h.files_with(f"{tmp_path}/checkpoints") == [], "plaintext state on disk"
    flink_log = "".join(open(p, errors="replace").read() for p in h.all_files(f"{tmp_path}/first-flink-log"))
    assert "metered state backend delegating to EmbeddedRocksDBStateBackend" in flink_log
    again = h.run_job(str(tmp_path), "restored", f"enc+file://{tmp_path}/restored-checkpoints",
                      restore=first.result["checkpoints"][-1], conf=conf,
                      **_job(backend="rocksdb", incremental=True))
    assert again.ok, again.describe()
    h.assert_continued(again.out_dir, RECORDS, KEYS)


def test_changelog_wraps_the_metered_backend_and_restores_exactly(tmp_path, crypto_conf):
    """Flink wraps the metered backend in its changelog backend (it would refuse a DelegatingStateBackend);
    changelog files are ciphertext; a restore (CLAIM mode: Flink's changelog backend cannot restore in
    NO_CLAIM mode, with or without the metered backend) continues every key exactly."""
    conf = dict(_metered(crypto_conf, "rocksdb"), **{
        "state.changelog.enabled": "true", "state.changelog.storage": "filesystem",
        "state.changelog.dstl.dfs.base-path": f"enc+file://{tmp_path}/changelog",
        "state.changelog.periodic-materialize.interval": "2 s", "execution.state-recovery.claim-mode": "CLAIM"})
    first = h.run_job(str(tmp_path), "first", f"enc+file://{tmp_path}/checkpoints", mode="cancel", conf=conf,
                      stop_after=3, **_job(backend="rocksdb", throttle_ms=2))
    assert first.ok, first.describe()
    flink_log = "".join(open(p, errors="replace").read() for p in h.all_files(f"{tmp_path}/first-flink-log"))
    assert "ChangelogStateBackend is used, delegating MeteredStateBackend" in flink_log
    changelog = h.all_files(f"{tmp_path}/changelog")
    assert changelog, "no changelog files were written"
    assert h.not_encrypted(f"{tmp_path}/changelog") == [] and h.files_with(f"{tmp_path}/changelog") == []
    again = h.run_job(str(tmp_path), "restored", f"enc+file://{tmp_path}/restored-checkpoints",
                      restore=first.result["checkpoints"][-1], conf=conf, **_job(backend="rocksdb"))
    assert again.ok, again.describe()
    h.assert_continued(again.out_dir, RECORDS, KEYS)

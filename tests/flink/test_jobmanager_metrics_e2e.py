"""The crypto figures of a small-state job on a standalone cluster, as a new user meets them.

The cluster is configured as docs/flink.md says: the distribution's own ``config.yaml``, then
``heliosdb-flink-crypto flink install --write-config --flink-metrics --python-jobs``. A keyed PyFlink
job whose state stays below ``execution.checkpointing.data-inline-threshold`` keeps it inline in
``_metadata``, which the JobManager writes: its TaskManager encrypts nothing. The lib
jar's JobManager reporter (``metrics.reporter.heliosdb.factory.class``) puts the gauges on the
JobManager's metric group: the REST API (``/jobmanager/metrics``) and Flink's Prometheus reporter
(``flink_jobmanager_heliosdb_...``) show every ``_metadata`` the JobManager encrypted.

The web UI, in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which ``./dev``
installs), as docs/metrics.md describes it: Jobs -> Running Jobs -> the job -> the keyed vertex
(``KEYED PROCESS -> ...``) -> Metrics -> Add Metric lists ``0.KEYED_PROCESS.heliosdb_...``, and
choosing one shows it.
"""
from __future__ import annotations

import glob
import os
import re
import sys
import urllib.parse

import pytest

import harness as h
import webdriver
from cluster import StandaloneCluster, free_port, make_distribution, prom_value, scrape
from heliosdb_flink_crypto.flink import JOBMANAGER_METRICS_REPORTER, METERED_STATE_BACKEND
from heliosdb_flink_crypto.flink.lib_ops import FLINK_GAUGES

pytestmark = pytest.mark.slow

JOB = os.path.join(h.HERE, "jobs", "small_state_job.py")


def _jobmanager_metrics(cluster) -> dict[str, float]:
    q = urllib.parse.quote(",".join(FLINK_GAUGES), safe=",")
    return {m["id"]: float(m["value"]) for m in cluster.get(f"/jobmanager/metrics?get={q}")}


def test_jobmanager_reports_the_metadata_it_encrypts(tmp_path, keyring, monkeypatch):
    for var in ("FLINK_PLUGINS_DIR", "FLINK_LIB_DIR", "FLINK_OPT_DIR", "FLINK_HOME"):
        monkeypatch.delenv(var, raising=False)  # a PyFlink gateway of this process may have set them
    home = make_distribution(str(tmp_path / "flink"), with_config=True)  # the distribution's own config.yaml
    cp = f"enc+file://{tmp_path}/checkpoints"
    r = h.cli("flink", "install", home, "--write-config", "--kms-uri", keyring, "--checkpoint-dir", cp,
              "--python", sys.executable, "--python-jobs", "--flink-metrics")
    assert r.returncode == 0, r.stderr
    assert f"set state.backend.type: {METERED_STATE_BACKEND}" in r.stdout, r.stdout
    assert f"set metrics.reporter.heliosdb.factory.class: {JOBMANAGER_METRICS_REPORTER}" in r.stdout, r.stdout
    jm_prom, tm_prom = free_port(), free_port()
    conf = {  # the cluster's ports and addresses, and what the docs' PyFlink checklist asks for
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.host": "127.0.0.1",
        "python.fn-execution.bundle.size": "100", "python.fn-execution.bundle.time": "100",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }
    with StandaloneCluster(home, conf, edit_conf=True, jm_conf={"metrics.reporter.prom.port": str(jm_prom)},
                           tm_conf={"metrics.reporter.prom.port": str(tm_prom)}) as cluster:
        run = cluster.flink("run", "-d", "-py", JOB)
        m = re.search(r"JobID ([0-9a-f]{32})", run.stdout)
        assert run.returncode == 0 and m, run.stdout + run.stderr + cluster.logs()
        job = m.group(1)
        h.wait_for(lambda: cluster.completed_checkpoints(job) >= 3 or
                   cluster.job_status(job) in ("FAILED", "FINISHED"), 180, "three checkpoints")
        assert cluster.job_status(job) == "RUNNING", cluster.job_exceptions(job)[:4000]
        done = cluster.completed_checkpoints(job)
        jm = h.wait_for(lambda: (lambda v: v if v.get("heliosdb_checkpoint_encryption_total", 0) >= done else None)(
            _jobmanager_metrics(cluster)), 60, f"JobManager heliosdb_checkpoint_encryption_total >= {done}", interval=1)
        tm_id = cluster.taskmanager_ids()[0]
        tm = {k: float(v) for k, v in cluster.taskmanager_metrics(tm_id, list(FLINK_GAUGES)).items()}
        jm_scraped, tm_scraped = scrape(f"http://127.0.0.1:{jm_prom}/"), scrape(f"http://127.0.0.1:{tm_prom}/")
        listed, shown = _web_ui_click_path(cluster.url, job, str(tmp_path))
        cluster.flink("cancel", job)
        cluster.wait_status(job, {"CANCELED"})
    # the state is inline: the checkpoints hold _metadata files only, which the JobManager wrote
    files = h.all_files(str(tmp_path / "checkpoints"))
    assert files and all(os.path.basename(p) == "_metadata" for p in files), files
    assert h.files_with(str(tmp_path / "checkpoints")) == [] and h.not_encrypted(str(tmp_path / "checkpoints")) == []
    assert set(jm) == set(FLINK_GAUGES), sorted(jm)
    assert jm["heliosdb_checkpoint_encrypted_bytes_total"] > 0 and jm["heliosdb_kms_calls_total"] >= 1
    assert jm["heliosdb_checkpoint_encryption_duration_seconds_count"] >= done
    assert jm["heliosdb_encryption_errors_total"] == 0 and jm["heliosdb_auth_failures_total"] == 0
    assert tm["heliosdb_checkpoint_encryption_total"] == 0, "the TaskManager encrypted state: not a small-state job"
    assert prom_value(jm_scraped, "flink_jobmanager_heliosdb_checkpoint_encryption_total") >= done, jm_scraped[:3000]
    assert "flink_jobmanager_heliosdb" not in tm_scraped
    assert keyring.split("://", 1)[1] not in jm_scraped
    # the web UI: the keyed vertex's Metrics tab lists the gauges under the operator's real name
    assert "0.KEYED_PROCESS.heliosdb_checkpoint_encryption_total" in listed, listed
    assert "0.KEYED_PROCESS.heliosdb_checkpoint_encryption_duration_seconds_sum" in listed, listed
    assert shown


def _web_ui_click_path(url: str, job: str, shots: str) -> tuple[list[str], bool]:
    """Jobs -> Running Jobs -> the job -> the keyed vertex -> Metrics -> Add Metric, typing
    ``heliosdb_checkpoint`` into the metric picker: the names it offers, and whether choosing
    ``..._encryption_total`` shows it. A screenshot of each step goes to ``shots``."""
    assert webdriver.available(), "headless Chromium is missing: ./dev setup installs chromium and chromium-driver"
    with webdriver.Browser() as b:
        b.open(url + "/")
        b.click_on("//*[normalize-space(.)='Running Jobs']")
        b.click_on("//tr[contains(@class,'ant-table-row')][contains(., 'small state')]")
        b.wait(f"//*[contains(., '{job}')]")
        b.click_on("//tr[contains(@class,'ant-table-row')]//a[contains(., 'KEYED PROCESS')]")
        b.click_on("//*[contains(@class,'ant-tabs-tab')][normalize-space(.)='Metrics']")
        b.screenshot(os.path.join(shots, "ui-1-vertex-metrics.png"))
        b.click_on("//nz-select[.//*[contains(., 'Select Metric Name')]]")
        for attempt in range(3):  # the picker re-renders with the page's refresh: type again if it did
            try:
                b.type(b.wait("//nz-select//input"), "heliosdb_checkpoint")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        options = h.wait_for(lambda: [b.text(o) for o in b.find_all("//nz-option-item")], 20, "metric names")
        b.screenshot(os.path.join(shots, "ui-2-add-metric.png"))
        want = "0.KEYED_PROCESS.heliosdb_checkpoint_encryption_total"
        b.click_on(f"//nz-option-item[normalize-space(.)='{want}']")
        shown = bool(b.wait(f"//flink-job-chart//*[@title='{want}']", 20))
        b.screenshot(os.path.join(shots, "ui-3-metric-shown.png"))
    return options, shown

"""One standalone session cluster (a JobManager and a TaskManager with two slots, separate processes,
the plugin and the lib jar installed with ``heliosdb-flink-crypto flink install``, Flink's Prometheus
reporter on), shared by every test of this module (it starts once):

1. Flink metrics: jobs checkpointing to ``enc+file://`` through the metered state backend show the
   nine metrics of docs/metrics.md on the TaskManager in Flink's REST API and through Flink's Prometheus reporter;
   files encrypted grow across checkpoints; no keyring path or key appears in any metric text.
2. Tenants in one session cluster: jobs of tenants acme and globex (own path prefix, own keyring)
   checkpoint at the same time; a globex job started from acme's retained checkpoint is refused
   before it reads any state (the tenant guard on the JobManager); acme's job restored from its own
   checkpoint continues exactly; acme's checkpoint copied under globex's prefix is refused by the
   file-level tenant check.
3. KMS calls per checkpoint per process, counted on the TaskManager's and the JobManager's own
   heliosdb Prometheus endpoints (``heliosdb.crypto.metrics.port``, one port per process) over N >= 3
   checkpoints of the running jobs: at most one per checkpoint (a warm DEK cache makes none).

The jobs are ``jobs/counter_job.py`` submitted with ``flink run -d -py``; their options (checkpoint
directory, state backend, checkpoint storage) are job configuration (``flink run -D...``, and the
job's own ``--conf`` for keys the job sets itself), which wins over the cluster's config.yaml.
Every port is on 127.0.0.1; the cluster and every client stop at the end.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error

import pytest

import harness as h
from cluster import StandaloneCluster, free_port, make_distribution, prom_value, scrape
from heliosdb_flink_crypto.format import parse

pytestmark = pytest.mark.slow

METERED = "io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory"
TENANT_STORAGE = "io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory"
SEED = ("heliosdb_checkpoint_encryption_total", "heliosdb_checkpoint_decryption_total",
        "heliosdb_checkpoint_encryption_duration_seconds_sum", "heliosdb_checkpoint_decryption_duration_seconds_sum",
        "heliosdb_kms_call_duration_seconds_sum", "heliosdb_key_rotation_total", "heliosdb_encryption_errors_total",
        "heliosdb_decryption_errors_total", "heliosdb_auth_failures_total")
TENANTS = ("acme", "globex")
RECORDS, KEYS, PAD = 30000, 200, 200
INTERVAL_MS = 500
THROTTLE_MS = 4  # run 1 holds for ~RECORDS*THROTTLE_MS (cancelled long before); the restore is unthrottled


class Session:
    """The cluster, its tenants (prefix and keyring each) and the two running jobs of part 2."""

    def __init__(self, root):
        self.root = root
        self.rings = {t: self._keyring(t) for t in (*TENANTS, "default")}
        self.prefix = {t: root / t for t in TENANTS}
        self.ports = {k: free_port() for k in ("jm_prom", "tm_prom", "jm_helios", "tm_helios")}
        self.jobs: dict[str, str] = {}  # tenant -> job id of its first (running, then cancelled) job
        self.cluster: StandaloneCluster | None = None
        self.clients: list[subprocess.Popen] = []  # every flink run client (none outlives the module)

    def _keyring(self, name: str) -> str:
        uri = "local://" + str(self.root / f"keyring-{name}" / "keyring.json")
        r = h.cli("keyring", "init", uri)
        assert r.returncode == 0, r.stdout + r.stderr
        return uri

    def checkpoint_dir(self, tenant: str, name: str = "checkpoints") -> str:
        return f"enc+file://{self.prefix[tenant]}/{name}"

    def launch(self) -> StandaloneCluster:
        home = make_distribution(str(self.root / "flink"))
        r = h.cli("flink", "install", home, "--kms-uri", self.rings["default"], "--python", sys.executable,
                  "--checkpoint-dir", f"enc+file://{self.root}/default-checkpoints")
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.isfile(os.path.join(home, "lib", "heliosdb-flink-crypto-lib.jar")), "lib jar not installed"
        conf = {"metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
                "heliosdb.crypto.tenants.require-match": "true",
                # 2 slots x (2 Python workers per job): the managed memory they share
                "taskmanager.memory.managed.size": "256m", "taskmanager.memory.process.size": "1800m"}
        for t in TENANTS:
            conf[f"heliosdb.crypto.tenants.{t}.path-prefix"] = f"file://{self.prefix[t]}"
            conf[f"heliosdb.crypto.tenants.{t}.kms.uri"] = self.rings[t]
        p = self.ports
        self.cluster = StandaloneCluster(
            home, conf, slots=2, extra_yaml=r.stdout,
            jm_conf={"metrics.reporter.prom.port": p["jm_prom"], "heliosdb.crypto.metrics.port": p["jm_helios"]},
            tm_conf={"metrics.reporter.prom.port": p["tm_prom"], "heliosdb.crypto.metrics.port": p["tm_helios"]})
        self.cluster.launch()
        return self.cluster

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.ports[key]}/metrics"

    def job_args(self, tenant: str, name: str, cp: str | None = None, throttle: float = 0) -> list[str]:
        """``flink run`` options (per-job configuration with -D) and the counter job's arguments;
        state.backend.type goes through the job's --conf because the job sets that key itself."""
        args = [f"-Dexecution.checkpointing.storage={TENANT_STORAGE}", "-Dheliosdb.crypto.state-backend=hashmap",
                "-py", h.JOB, "--mode", "submit", "--checkpoint-dir", cp or self.checkpoint_dir(tenant),
                "--out-dir", str(self.root / f"{name}-out"), "--records", str(RECORDS), "--keys", str(KEYS),
                "--pad", str(PAD), "--interval-ms", str(INTERVAL_MS), "--conf", f"state.backend.type={METERED}"]
        return args + (["--throttle-ms", str(throttle)] if throttle else [])

    def submit(self, runs: dict[str, list[str]]) -> dict[str, subprocess.Popen]:
        """Start ``flink run -d [flink opts] <job args>`` for every entry at once (each client is a
        JVM and a Python process, slow to start); collect them with :meth:`submitted`."""
        procs = {name: subprocess.Popen([os.path.join(self.cluster.home, "bin", "flink"), "run", "-d", *args],
                                        env=self.cluster.env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
                 for name, args in runs.items()}
        self.clients += procs.values()
        return procs

    @staticmethod
    def submitted(procs: dict[str, subprocess.Popen]) -> dict[str, "Submission"]:
        out = {}
        for name, proc in procs.items():
            try:
                text, _ = proc.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                _kill(proc)
                text, _ = proc.communicate()
            m = re.search(r"JobID ([0-9a-f]{32})", text)
            out[name] = Submission(proc.returncode, m.group(1) if m else None, text)
        return out


def _kill(proc: subprocess.Popen) -> None:
    """A flink client still running, with its Python driver (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Submission:
    def __init__(self, rc: int, job_id: str | None, text: str):
        self.rc, self.job_id, self.text = rc, job_id, text


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = Session(tmp_path_factory.mktemp("session"))
    cluster = s.launch()
    try:
        procs = s.submit({t: s.job_args(t, f"{t}-1", throttle=THROTTLE_MS) for t in TENANTS})
        cluster.wait_ready()
        subs = s.submitted(procs)
        for t, sub in subs.items():
            assert sub.rc == 0 and sub.job_id, f"flink run ({t}) failed:\n{sub.text}\n{cluster.logs()}"
            s.jobs[t] = sub.job_id
        yield s
    finally:
        for p in s.clients:
            _kill(p)
        cluster.stop()


def _checkpoints(cluster, job_id: str) -> int:
    return cluster.completed_checkpoints(job_id)


def _wait_checkpoints(cluster, jobs: dict[str, str], at_least: dict[str, int], timeout: float = 150):
    def done():
        for t, j in jobs.items():
            status = cluster.job_status(j)
            assert status in ("RUNNING", "CREATED", "INITIALIZING"), \
                f"job of {t} is {status}:\n{cluster.job_exceptions(j)[:4000]}\n{cluster.logs()}"
        return all(_checkpoints(cluster, j) >= at_least[t] for t, j in jobs.items())
    h.wait_for(done, timeout, f"checkpoints {at_least}", interval=0.3)
    return {t: _checkpoints(cluster, j) for t, j in jobs.items()}


def _float(v) -> float:
    return float(v) if v not in (None, "") else float("nan")


def _secrets(s: Session) -> list[str]:
    """Keyring paths and every key (as stored, base64) of every keyring of the session."""
    out = []
    for uri in s.rings.values():
        path = h.local_path(uri)
        out += [path, os.path.dirname(path)]
        with open(path) as f:
            ring = json.load(f)
        out += [v["key"] for v in ring["versions"].values()]
    return out


# -- 1. Flink's own metric system ----------------------------------------------------------------
def test_flink_rest_and_prometheus_reporter_show_the_crypto_metrics(session):
    cluster = session.cluster
    first = _wait_checkpoints(cluster, session.jobs, {t: 2 for t in TENANTS})
    (tm,) = cluster.taskmanager_ids()

    def rest_values():
        got = cluster.taskmanager_metrics(tm, list(SEED))
        return got if set(SEED) <= set(got) and _float(got[SEED[0]]) > 0 else None
    before = h.wait_for(rest_values, 30, "the crypto metrics on the TaskManager (REST)", interval=0.5)
    assert _float(before["heliosdb_auth_failures_total"]) == 0
    assert _float(before["heliosdb_encryption_errors_total"]) == 0
    assert _float(before["heliosdb_checkpoint_encryption_duration_seconds_sum"]) > 0

    # growing across checkpoints (the gauges refresh at most once a second)
    _wait_checkpoints(cluster, session.jobs, {t: first[t] + 2 for t in TENANTS})
    after = h.wait_for(lambda: (v := cluster.taskmanager_metrics(tm, list(SEED))) and
                       _float(v[SEED[0]]) > _float(before[SEED[0]]) and v, 20,
                       "heliosdb_checkpoint_encryption_total growing")
    assert _float(after[SEED[0]]) > _float(before[SEED[0]]) > 0

    # the web UI's task metrics tab: the keyed operator's metric group lists them too
    job = session.jobs["acme"]
    (vertex,) = [v["id"] for v in cluster.get(f"/jobs/{job}")["vertices"] if v["name"].startswith("count")]
    ids = [m["id"] for m in cluster.get(f"/jobs/{job}/vertices/{vertex}/metrics")]
    assert any(i.endswith("." + SEED[0]) for i in ids), f"{SEED[0]} not among the task's metrics: {ids[:20]}"

    # Flink's Prometheus reporter on the TaskManager: flink_taskmanager_<metric name>
    prom = h.wait_for(lambda: (t := scrape(session.url("tm_prom"))) and
                      prom_value(t, "flink_taskmanager_" + SEED[0]) > 0 and t, 20,
                      "the crypto metrics in Flink's Prometheus reporter")
    for name in SEED:
        assert re.search(rf"^flink_taskmanager_{name}(\{{[^}}]*\}})? \S+$", prom, re.M), \
            f"flink_taskmanager_{name} missing from Flink's Prometheus reporter"
    assert prom_value(prom, "flink_taskmanager_heliosdb_auth_failures_total") == 0

    # no keyring path, no key in any metric text (REST, both reporters, both heliosdb endpoints)
    texts = {"rest": json.dumps(cluster.taskmanager_metrics(tm, list(cluster.taskmanager_metrics(tm))))}
    for key in session.ports:
        texts[key] = scrape(session.url(key))
    assert texts["tm_helios"] and texts["jm_helios"], "a heliosdb endpoint did not answer"
    for where, text in texts.items():
        for secret in _secrets(session):
            assert secret not in text, f"{where} metrics show a keyring path or key"


# -- 3. KMS calls per checkpoint per process ------------------------------------------------------
def _kms_calls(text: str) -> float:
    return prom_value(text, "heliosdb_kms_calls_total")


def test_kms_calls_per_checkpoint_per_process(session, capsys):
    cluster = session.cluster
    jobs = session.jobs
    # warm: both jobs have checkpointed (every process has made its tenants' data keys)
    ck0 = _wait_checkpoints(cluster, jobs, {t: 2 for t in TENANTS})
    tm0, jm0 = scrape(session.url("tm_helios")), scrape(session.url("jm_helios"))
    assert tm0 and jm0, "a heliosdb endpoint did not answer"
    assert _kms_calls(tm0) > 0, "the TaskManager made no data key (its checkpoints are not encrypted?)"
    enc0 = prom_value(tm0, "heliosdb_checkpoint_encryption_total")
    ck1 = _wait_checkpoints(cluster, jobs, {t: ck0[t] + 3 for t in TENANTS})
    n = sum(ck1[t] - ck0[t] for t in TENANTS)
    # the shim tells Python a file is finished without waiting for the answer, so the count of files
    # encrypted may trail the completed checkpoints by a moment: scrape until it has caught up (any
    # checkpoint completed meanwhile only adds KMS calls to the n counted: conservative)
    tm1 = h.wait_for(lambda: (t := scrape(session.url("tm_helios"))) and
                     prom_value(t, "heliosdb_checkpoint_encryption_total") - enc0 >= n and t, 20,
                     f"the TaskManager's count of files encrypted to reach the {n} checkpoints", interval=0.2)
    jm1 = scrape(session.url("jm_helios"))
    ck2 = {t: _checkpoints(cluster, j) for t, j in jobs.items()}  # counted after the scrape: conservative
    tm_calls, jm_calls = _kms_calls(tm1) - _kms_calls(tm0), _kms_calls(jm1) - _kms_calls(jm0)
    files = prom_value(tm1, "heliosdb_checkpoint_encryption_total") - enc0
    with capsys.disabled():
        print(f"\nKMS calls over {n} checkpoints ({sum(ck2.values()) - sum(ck0.values())} by the second "
              f"count) of 2 jobs: TaskManager {tm_calls:g} ({tm_calls / n:.3f}/checkpoint, {files:g} files "
              f"encrypted), JobManager {jm_calls:g} ({jm_calls / n:.3f}/checkpoint); since each process "
              f"started: TaskManager {_kms_calls(tm1):g}, JobManager {_kms_calls(jm1):g} (the first data key "
              f"of each tenant)")
    assert n >= 6 and files >= n, (n, files)
    assert tm_calls / n <= 1, f"TaskManager: {tm_calls} KMS calls over {n} checkpoints"
    assert jm_calls / n <= 1, f"JobManager: {jm_calls} KMS calls over {n} checkpoints"
    assert prom_value(tm1, "heliosdb_dek_cache_hits_total") > prom_value(tm0, "heliosdb_dek_cache_hits_total")


# -- 2. tenants in one session cluster ------------------------------------------------------------
def _headers(root) -> dict[str, object]:
    out = {}
    for p in h.all_files(str(root)):
        if os.path.getsize(p):
            with open(p, "rb") as f:
                out[p] = parse(f.read(), p)
    assert out, f"no files under {root}"
    return out


def _refused(cluster, sub: Submission) -> str:
    """The error text of a submission that must fail: the client's output, and the job's failure
    (REST) when it was submitted and failed at its start."""
    if not sub.job_id:
        assert sub.rc != 0, f"no job id, yet flink run succeeded:\n{sub.text}"
        return sub.text
    status = cluster.wait_status(sub.job_id, {"FAILED", "FINISHED", "CANCELED"}, 120)
    assert status == "FAILED", f"job {sub.job_id} ended {status}, not refused:\n{sub.text}"
    return sub.text + cluster.job_exceptions(sub.job_id)


def test_tenants_in_one_session_cluster(session):
    cluster, jobs, prefix = session.cluster, session.jobs, session.prefix
    _wait_checkpoints(cluster, jobs, {t: 1 for t in TENANTS})
    assert cluster.job_status(jobs["acme"]) == cluster.job_status(jobs["globex"]) == "RUNNING"
    for t in TENANTS:  # each tenant's files are sealed under its own keyring with its id in the header
        headers = _headers(prefix[t] / "checkpoints")
        assert {hd.tenant for hd in headers.values()} == {t}
        assert {s.kms_uri for hd in headers.values() for s in hd.slots} == {session.rings[t]}
        assert h.files_with(str(prefix[t])) == [] and h.not_encrypted(str(prefix[t] / "checkpoints")) == []

    # cancel both (REST, back to back): cancelling a PyFlink job can kill the TaskManager (Beam's
    # reference-count bug, cluster.py), which fails the other job; its checkpoint is retained as well
    for t in TENANTS:
        try:
            cluster.patch(f"/jobs/{jobs[t]}?mode=cancel")
        except urllib.error.HTTPError as e:
            assert t != "acme", f"cancelling acme's job: {e}"
    retained = {}
    assert cluster.wait_status(jobs["acme"], {"CANCELED", "FAILED"}) == "CANCELED"
    for t in TENANTS:
        cluster.wait_status(jobs[t], {"CANCELED", "FAILED"})
        retained[t] = h.retained_checkpoint(cluster, prefix[t] / "checkpoints", jobs[t])

    acme_chk = h.local_path(retained["acme"])
    copied = prefix["globex"] / "copied" / os.path.relpath(acme_chk, prefix["acme"])
    shutil.copytree(os.path.dirname(acme_chk), copied.parent)  # the job's folder: chk-N and shared/
    procs = session.submit({
        # globex's job pointed at acme's checkpoint: refused by the tenant guard before any state is read
        "cross": ["-s", retained["acme"],
                  *session.job_args("globex", "cross", session.checkpoint_dir("globex", "cross"))],
        # acme's checkpoint copied under globex's prefix: the file-level check refuses it
        "copied": ["-s", f"enc+file://{copied}",
                   *session.job_args("globex", "copied", session.checkpoint_dir("globex", "copied-cp"))],
        # acme resumes from its own checkpoint and runs to the end
        "resume": ["-s", retained["acme"],
                   *session.job_args("acme", "acme-2", session.checkpoint_dir("acme", "resumed"))],
    })
    if cluster.ensure_taskmanager():  # while the clients start (the jobs wait for slots)
        print("the TaskManager died while cancelling (Beam reference-count bug); restarted it")
    subs = session.submitted(procs)
    resume = subs["resume"]
    assert resume.rc == 0 and resume.job_id, resume.text + cluster.logs()

    cross = _refused(cluster, subs["cross"])
    assert re.search(r"restore refused: the checkpoint belongs to tenant 'acme' but this job's checkpoint "
                     r"directory \S*" + re.escape(str(prefix["globex"] / "cross")) + r" belongs to tenant 'globex'",
                     cross) and acme_chk in cross, cross[:6000]
    copied_err = _refused(cluster, subs["copied"])
    assert "belongs to tenant 'acme' but its path belongs to tenant 'globex'" in copied_err, copied_err[:6000]
    jm = scrape(session.url("jm_helios"))
    assert prom_value(jm, "heliosdb_crypto_operations_total", op="tenant_mismatch", outcome="denied") > 0, \
        "the JobManager's endpoint did not count the refused restore"
    for name in ("cross", "copied"):
        assert not h.read_outputs(str(session.root / f"{name}-out")), f"the refused {name} job processed records"

    assert cluster.wait_status(resume.job_id, {"FINISHED", "FAILED", "CANCELED"}, 240) == "FINISHED", \
        cluster.job_exceptions(resume.job_id)[:4000] + cluster.logs()
    restored = cluster.get(f"/jobs/{resume.job_id}/checkpoints")["latest"]["restored"]
    assert restored and h.local_path(restored["external_path"]) == acme_chk, restored
    h.assert_continued(str(session.root / "acme-2-out"), RECORDS, KEYS)
    # the refused jobs left no checkpoint of globex behind that holds acme's state
    for name in ("cross", "copied-cp"):
        d = prefix["globex"] / name
        assert not d.exists() or not [p for p in h.all_files(str(d)) if os.path.getsize(p)], h.all_files(str(d))

"""Flink 1.20 LTS on a standalone cluster: a JobManager and a TaskManager (two slots) of the Flink 1.20
distribution PyFlink 1.20 ships, the jars installed with the 1.20 venv's ``heliosdb-flink-crypto
flink install`` (it picks the Flink 1.20 jars, the lib jar included), jobs submitted with
``flink run -py``. Every job runs through the lib jar: the metered state backend around HashMap or
RocksDB (incremental), and the tenant checkpoint storage.

1. Two jobs (HashMap; RocksDB incremental) checkpoint to ``enc+file://`` under tenant acme's prefix;
   the crypto metrics show in Flink's REST API on the TaskManager; a savepoint to a plain ``file://``
   target is refused (the job runs on); a savepoint each; cancelled.
2. No plaintext marker in any file; every file authenticates.
3. Restores from the retained checkpoint and from the savepoint of each continue every key exactly.
4. One flipped byte in a state file (RocksDB's checkpoint) or in ``_metadata`` (HashMap's) fails the
   restore naming the file; a job of tenant globex started from acme's checkpoint is refused by
   the tenant guard.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

import harness as h
from cluster import StandaloneCluster, make_distribution, pyflink_home

pytestmark = pytest.mark.slow

METERED = "io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory"
TENANT_STORAGE = "io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory"
BACKENDS = ("hashmap", "rocksdb")
RECORDS, KEYS, PAD = 12000, 400, 128


class Cluster120:
    def __init__(self, root, python: str):
        self.root, self.python = root, python
        self.rings = {t: self._keyring(t) for t in ("acme", "globex", "default")}
        self.cluster: StandaloneCluster | None = None
        self.first: dict[str, dict] = {}  # backend -> job id, retained checkpoint, savepoint
        self.metrics: dict[str, str] = {}
        self.plain_savepoint: tuple = ()  # the CLI's exit code and output, whether the target exists, the job's status

    def _keyring(self, name: str) -> str:
        uri = f"local://{self.root}/keyring-{name}/keyring.json"
        r = h.cli("keyring", "init", uri)
        assert r.returncode == 0, r.stderr
        return uri

    def cp(self, tenant: str, name: str) -> str:
        return f"enc+file://{self.root}/{tenant}/{name}"

    def launch(self) -> StandaloneCluster:
        source = pyflink_home(self.python)
        home = make_distribution(str(self.root / "flink"), source)
        r = h.cli("flink", "install", home, "--kms-uri", self.rings["default"], "--python", self.python,
                  python=self.python)
        assert r.returncode == 0, r.stderr
        assert "the jars built for Flink 1.20" in r.stderr, r.stderr
        conf = {"heliosdb.crypto.tenants.require-match": "true",
                "taskmanager.memory.managed.size": "256m", "taskmanager.memory.process.size": "1800m"}
        for t in ("acme", "globex"):
            conf[f"heliosdb.crypto.tenants.{t}.path-prefix"] = f"file://{self.root}/{t}"
            conf[f"heliosdb.crypto.tenants.{t}.kms.uri"] = self.rings[t]
        self.cluster = StandaloneCluster(home, conf, slots=2, extra_yaml=r.stdout, python=self.python, source=source)
        self.cluster.launch()
        return self.cluster

    def job_args(self, backend: str, name: str, cp: str, restore: str = "", throttle: float = 0) -> list[str]:
        args = (["-s", restore] if restore else []) + [
            f"-Dexecution.checkpointing.storage={TENANT_STORAGE}", f"-Dheliosdb.crypto.state-backend={backend}",
            "-py", h.JOB, "--mode", "submit", "--checkpoint-dir", cp, "--out-dir", str(self.root / name),
            "--records", str(RECORDS), "--keys", str(KEYS), "--pad", str(PAD), "--conf", f"state.backend.type={METERED}"]
        if backend == "rocksdb":
            args.append("--incremental")
        return args + (["--throttle-ms", str(throttle)] if throttle else [])

    def submit(self, runs: dict[str, list[str]]) -> dict[str, tuple[str | None, str]]:
        """``flink run -d`` of every entry at once (each client is slow to start): name -> (job id, output)."""
        procs = {n: subprocess.Popen([os.path.join(self.cluster.home, "bin", "flink"), "run", "-d", *a],
                                     env=self.cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True) for n, a in runs.items()}
        out = {}
        for n, p in procs.items():
            try:
                text, _ = p.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                text, _ = p.communicate()
            m = re.search(r"JobID ([0-9a-f]{32})", text)
            out[n] = (m.group(1) if m else None, text)
        return out

    def finished(self, job: str, text: str) -> str:
        assert job, text + self.cluster.logs()
        return self.cluster.wait_status(job, {"FINISHED", "FAILED", "CANCELED"}, 300)


@pytest.fixture(scope="module")
def c120(tmp_path_factory, flink120_python):
    s = Cluster120(tmp_path_factory.mktemp("flink120-cluster"), flink120_python)
    cluster = s.launch()
    try:
        cluster.wait_ready()
        # slow enough (12000 records x 10 ms: 2 minutes or more) to be running still after 3 checkpoints,
        # the metrics and the savepoints; cancelled right after them, so the test waits no longer for it
        subs = s.submit({b: s.job_args(b, f"{b}-1", s.cp("acme", b), throttle=10) for b in BACKENDS})
        jobs = {b: subs[b][0] for b in BACKENDS}
        for b in BACKENDS:
            assert jobs[b], subs[b][1] + cluster.logs()
        h.wait_for(lambda: all(cluster.completed_checkpoints(j) >= 3 or cluster.job_status(j) != "RUNNING"
                               for j in jobs.values()), 240, "three checkpoints of each job")
        for b, j in jobs.items():
            assert cluster.job_status(j) == "RUNNING", cluster.job_exceptions(j)[:4000]
        (tm,) = cluster.taskmanager_ids()
        s.metrics = h.wait_for(lambda: (v := cluster.taskmanager_metrics(tm, ["heliosdb_checkpoint_encryption_total"]))
                               and float(v.get("heliosdb_checkpoint_encryption_total") or 0) > 0 and v, 30,
                               "the lib jar's metrics on the TaskManager")
        # a savepoint of encrypted checkpoints to a plain target: refused by the tenant storage, nothing written
        plain = s.root / "acme" / "plain-savepoints"
        r = cluster.flink("savepoint", jobs["hashmap"], f"file://{plain}")
        s.plain_savepoint = (r.returncode, r.stdout + r.stderr, plain.exists(), cluster.job_status(jobs["hashmap"]))
        for b, j in jobs.items():
            r = cluster.flink("savepoint", j, s.cp("acme", f"savepoints-{b}"))
            m = re.search(r"Path: (\S+)", r.stdout)
            assert r.returncode == 0 and m, r.stdout + r.stderr
            s.first[b] = {"job": j, "savepoint": m.group(1)}
        for j in jobs.values():
            try:
                cluster.patch(f"/jobs/{j}?mode=cancel")
            except OSError:
                pass  # the other job's cancel may have taken the TaskManager down (cluster.py): it fails
        for b, j in jobs.items():
            cluster.wait_status(j, {"CANCELED", "FAILED"})
            s.first[b]["checkpoint"] = h.retained_checkpoint(cluster, s.root / "acme" / b, j)
        cluster.ensure_taskmanager()
        yield s
    finally:
        cluster.stop()


def test_a_savepoint_to_a_plain_target_is_refused_and_the_job_runs_on(c120):
    code, out, made, status = c120.plain_savepoint
    assert code != 0, out
    assert (f"savepoint refused: its target file://{c120.root}/acme/plain-savepoints is not encrypted, but the job's "
            f"checkpoints (enc+file:{c120.root}/acme/hashmap) are") in out, out
    assert f"Take it to enc+file://{c120.root}/acme/plain-savepoints" in out, out
    assert not made, "nothing written to the plain target"
    assert status == "RUNNING"


def test_the_lib_jars_metrics_show_in_flinks_rest_api(c120):
    assert float(c120.metrics["heliosdb_checkpoint_encryption_total"]) > 0


def test_checkpoint_and_savepoint_files_are_ciphertext(c120):
    root = str(c120.root / "acme")
    files = h.all_files(root)
    assert [p for p in files if f"{os.sep}shared{os.sep}" in p], "no incremental (shared) RocksDB files"
    assert h.files_with(root) == [] and h.not_encrypted(root) == []
    r = h.cli("verify", "--kms", c120.rings["acme"], root)
    assert r.returncode == 0 and f"verified {len(files)} of {len(files)} files; 0 failed" in r.stdout, r.stdout


def test_restores_from_checkpoint_and_savepoint_continue_exactly(c120):
    runs = {f"{b}-{src}": c120.job_args(b, f"{b}-{src}", c120.cp("acme", f"{b}-{src}"), restore=c120.first[b][src])
            for b in BACKENDS for src in ("checkpoint", "savepoint")}
    for name, (job, text) in c120.submit(runs).items():
        assert c120.finished(job, text) == "FINISHED", c120.cluster.job_exceptions(job)[:4000]
        h.assert_continued(str(c120.root / name), RECORDS, KEYS)


def test_tampering_fails_the_restore_naming_the_file_and_another_tenant_is_refused(c120):
    state = h.checkpoint_state_file(h.local_path(c120.first["rocksdb"]["checkpoint"]))
    metadata = os.path.join(h.local_path(c120.first["hashmap"]["checkpoint"]), "_metadata")
    with h.flipped(state), h.flipped(metadata):
        subs = c120.submit({
            "tampered-state": c120.job_args("rocksdb", "tampered-state", c120.cp("acme", "t1"),
                                            restore=c120.first["rocksdb"]["checkpoint"]),
            "tampered-metadata": c120.job_args("hashmap", "tampered-metadata", c120.cp("acme", "t2"),
                                               restore=c120.first["hashmap"]["checkpoint"]),
            "cross-tenant": c120.job_args("hashmap", "cross-tenant", c120.cp("globex", "cross"),
                                          restore=c120.first["rocksdb"]["savepoint"])})
        errors = {}
        for name, (job, text) in subs.items():
            assert job is None or c120.finished(job, text) == "FAILED", f"{name} was not refused"
            errors[name] = text + (c120.cluster.job_exceptions(job) if job else "")
    # RocksDB downloads a checkpoint's files in parallel and closes the other transfers when one fails,
    # so the job's error may be another transfer's "stream is closed"; the TaskManager's log names the
    # file at fault, and no other
    faults = re.findall(r"AuthenticationError: (\S+): authentication failed",
                        errors["tampered-state"] + c120.cluster.logs(tail=None, part="taskexecutor"))
    assert faults and all(f.endswith("/" + os.path.basename(state)) for f in faults), \
        (faults, h.causes(errors["tampered-state"]))
    assert os.path.basename(metadata) in errors["tampered-metadata"] and \
        "authentication failed" in errors["tampered-metadata"], h.causes(errors["tampered-metadata"])
    assert "restore refused: the checkpoint belongs to tenant 'acme'" in errors["cross-tenant"], \
        h.causes(errors["cross-tenant"])
    for name in subs:
        assert not h.read_outputs(str(c120.root / name)), f"{name} processed records"

"""Checkpoint duration and restore time with ``file://`` and ``enc+file://``, side by side.

One real PyFlink job (tests/flink/jobs/counter_job.py in PyFlink's local MiniCluster) keeps
``--keys`` keyed values of ``--value-mib`` MiB each (incompressible random text; 256 x 1 MiB =
256 MiB by default) and keeps updating them. For each state backend (HashMap and RocksDB, full
snapshots so every checkpoint writes the whole state) and each scheme it:

1. runs until ``--checkpoints`` checkpoints holding the whole state have completed, and takes their
   end-to-end durations and sizes from Flink's REST API (``/jobs/:id/checkpoints``);
2. cancels (the last checkpoint is retained), restores a new job from it (``--restores`` times), and
   takes the restore time of the keyed operator from the REST API (INITIALIZING -> RUNNING in
   ``/subtasktimes``; the fastest restore counts);
3. with ``enc+file://``, scrapes the package's Prometheus endpoint in the Flink process
   (``heliosdb.crypto.metrics.port``) for KMS calls (``heliosdb_kms_calls_total``) per checkpoint and
   during the restore. A MiniCluster runs JobManager and TaskManager in one JVM: the counts are per
   Flink process.

Storage: ``--storage file`` (default) writes to the local disk (``TMPDIR=/dev/shm``: tmpfs);
``--storage s3`` compares ``s3://`` with ``enc+s3://`` through Flink's real S3 FileSystem
(flink-s3-fs-presto) against moto's S3 server behind ``bench/link.py``, a TCP proxy that lets
``--link-mb-per-s`` MB/s through each way: a TaskManager writing to object storage over a network.

Run: ``.venv/bin/python bench/flink_checkpoint_bench.py`` (about 15 minutes on 2 cores, 30 with
``--storage s3``; needs the shim jar, see docs/flink.md). ``--quick`` runs a small state to check the setup.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "flink"))

import harness  # noqa: E402
import s3_plugin  # noqa: E402
from cluster import free_port  # noqa: E402
import vm_memory  # noqa: E402  (bench/ is on sys.path)

MIB = 1 << 20


def rest(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.load(r)


def kms_calls(port: int | None) -> dict[str, float]:
    """op -> calls so far, from the process's Prometheus endpoint (empty before it is up)."""
    if not port:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except (OSError, urllib.error.URLError):
        return {}
    out: dict[str, float] = {}
    for m in re.finditer(r'^heliosdb_kms_calls_total\{([^}]*)\}\s+([0-9.e+]+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[labels.get("op", "?")] = out.get(labels.get("op", "?"), 0) + float(m.group(2))
    return out


def diff(a: dict, b: dict) -> dict:
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b) if b.get(k, 0) - a.get(k, 0)}


RUNNING: list["Job"] = []  # stopped on any exit, so no job outlives an interrupted benchmark


class Job:
    """The counter job in ``hold`` mode in a background thread; :meth:`stop` cancels it."""

    def __init__(self, work, name, cp_uri, args, conf, restore="", env=None):
        RUNNING.append(self)
        self.rest_port = free_port()
        self.stop_file = os.path.join(work, name + ".stop")
        self.run = None
        kw = dict(mode="hold", rest_port=self.rest_port, stop_file=self.stop_file, conf=conf,
                  restore=restore, local_crypto=True, timeout=1800, env=env, **args)
        self.thread = threading.Thread(target=self._run, args=(work, name, cp_uri, kw), daemon=True)
        self.thread.start()

    def _run(self, work, name, cp_uri, kw):
        self.run = harness.run_job(work, name, cp_uri, **kw)

    def job_id(self, timeout=180) -> str:
        def running():
            if not self.thread.is_alive():
                raise RuntimeError(f"job process ended: {self.run.describe() if self.run else ''}")
            try:
                jobs = rest(self.rest_port, "/jobs")["jobs"]
            except OSError:
                return None
            return next((j["id"] for j in jobs if j["status"] == "RUNNING"), None)
        return harness.wait_for(running, timeout, "job running", 0.5)

    def stop(self):
        open(self.stop_file, "w").close()
        self.thread.join(300)
        if self in RUNNING:
            RUNNING.remove(self)


def measure_checkpoints(job: Job, jid: str, state_bytes: int, n: int, metrics_port, timeout=900):
    """Durations of the first ``n`` completed checkpoints that hold the whole state, and the KMS
    calls made while they were taken."""
    deadline = time.monotonic() + timeout
    seen, calls_at = {}, {}
    while time.monotonic() < deadline:
        stats = rest(job.rest_port, f"/jobs/{jid}/checkpoints")
        for c in stats.get("history", []):
            if c["status"] == "COMPLETED" and c["id"] not in seen:
                seen[c["id"]] = c
                calls_at[c["id"]] = kms_calls(metrics_port)
        full = sorted(i for i, c in seen.items() if c["state_size"] >= state_bytes)
        if len(full) >= n + 1:  # the first full one only opens the KMS-call window
            window = full[: n + 1]
            cps = [dict(seen[i], phases=phases(job, jid, seen[i])) for i in window[1:]]
            calls = diff(calls_at[window[0]], calls_at[window[-1]])
            return cps, {op: v / n for op, v in calls.items()}, seen
        if stats["counts"]["failed"] > 3:
            raise RuntimeError(f"checkpoints failing: {stats['counts']}")
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {n + 1} full checkpoints within {timeout}s: {sorted(seen)}")


PHASES = ("delay", "sync", "async", "align", "final")


def phases(job: Job, jid: str, cp: dict, vid: str | None = None) -> dict:
    """The MiB checkpoint ``cp`` wrote and where its time went, for the slowest subtask of the keyed
    ("count") operator: start delay (barrier travel), sync and async parts, alignment, and ``final``,
    from that subtask's acknowledgement to the checkpoint's completion (the JobManager's
    ``_metadata``, other operators' acks); seconds. ``vid``: that operator's vertex id, when the caller
    has it (else looked up)."""
    out = {"mib": cp["checkpointed_size"] / MIB}
    try:
        vid = vid or next(v["id"] for v in rest(job.rest_port, f"/jobs/{jid}")["vertices"] if "count" in v["name"])
        subs = rest(job.rest_port, f"/jobs/{jid}/checkpoints/details/{cp['id']}/subtasks/{vid}")["subtasks"]
    except (OSError, KeyError, StopIteration):
        return out
    s = max(subs, key=lambda x: x.get("end_to_end_duration", 0))
    ms = {"delay": s.get("start_delay", 0), "sync": s.get("checkpoint", {}).get("sync", 0),
          "async": s.get("checkpoint", {}).get("async", 0), "align": s.get("alignment", {}).get("duration", 0),
          "final": cp["end_to_end_duration"] - s.get("end_to_end_duration", 0)}
    return dict(out, **{k: v / 1000.0 for k, v in ms.items()})


def measure_restore(job: Job, jid: str, timeout=600) -> float:
    vid = next(v["id"] for v in rest(job.rest_port, f"/jobs/{jid}")["vertices"] if "count" in v["name"])

    def restored():
        st = rest(job.rest_port, f"/jobs/{jid}/vertices/{vid}/subtasktimes")["subtasks"]
        ts = st[0]["timestamps"]
        if ts.get("RUNNING") and ts.get("INITIALIZING"):
            return (ts["RUNNING"] - ts["INITIALIZING"]) / 1000.0
        return None
    return harness.wait_for(restored, timeout, "the keyed operator restored", 0.5)


def bench_one(work, backend, scheme, a, keyring, round_=0) -> dict:
    """``scheme``: file, enc+file, or enc+file@baseline (the shim jar of ``--baseline-jar`` and/or the
    JVM options of ``--baseline-opts``)."""
    name = f"{backend}-{scheme.replace('+', '-').replace('@', '-')}-{round_}"
    env = None
    if scheme.endswith("@baseline"):
        env = {"HELIOSDB_SHIM_JAR": a.baseline_jar} if a.baseline_jar else {}
        if a.baseline_opts:  # e.g. the shim's knobs: -Dheliosdb.crypto.write-batch-bytes=4194304
            env["JAVA_TOOL_OPTIONS"] = a.baseline_opts
    scheme_label, scheme = scheme, scheme.split("@")[0]
    cp_uri = storage_uri(scheme, work, name, "checkpoints")
    metrics_port = free_port() if scheme.startswith("enc+") else None
    conf = {**a.storage_conf, "heliosdb.crypto.kms.uri": keyring, "execution.checkpointing.incremental": "false",
            "execution.checkpointing.min-pause": "1 s",
            # a barrier waits for the Python worker's current bundle: one record per bundle keeps that wait
            # (the same with either scheme, up to ~0.2 s with bigger bundles) out of the comparison
            "python.fn-execution.bundle.size": "1", "python.fn-execution.bundle.time": "20"}
    if metrics_port:
        conf["heliosdb.crypto.metrics.port"] = str(metrics_port)
    args = dict(backend=backend, keys=a.keys, pad=a.value_mib * MIB, random_pad=True,
                records=10 ** 9, throttle_ms=a.throttle_ms, interval_ms=a.interval_ms)
    state_bytes = a.keys * a.value_mib * MIB
    print(f"  {name}: building {state_bytes / MIB:.0f} MiB of keyed state ...", flush=True)
    job = Job(work, name + "-run", cp_uri, args, conf, env=env)
    try:
        jid = job.job_id()
        jfr = a.jfr and jfr_start(a.jfr, name)
        cps, calls, seen = measure_checkpoints(job, jid, state_bytes, a.checkpoints, metrics_port)
        if jfr:
            jfr_dump(*jfr)
        run_calls = kms_calls(metrics_port)
    finally:
        job.stop()
    retained = job.run.result.get("checkpoints", [])[-1]
    # the size of what each restore reads: RocksDB's full snapshots differ from one checkpoint to the next
    restored = seen.get(int(retained.rstrip("/").rsplit("chk-", 1)[1]))
    restores, restore_calls = [], {}
    for i in range(a.restores):
        print(f"  {name}: restore {i + 1}/{a.restores} from .../{retained.rsplit('/', 1)[-1]} ...", flush=True)
        job2 = Job(work, f"{name}-restore{i}", storage_uri(scheme, work, name, f"checkpoints-r{i}"),
                   dict(args, interval_ms=600000), conf, restore=retained, env=env)
        try:
            jid2 = job2.job_id()
            restores.append(measure_restore(job2, jid2))
            restore_calls = kms_calls(metrics_port)
        finally:
            job2.stop()
    durations = [c["end_to_end_duration"] / 1000.0 for c in cps]
    return {"backend": backend, "scheme": scheme_label, "checkpoint_s": statistics.median(durations),
            "checkpoint_min_s": min(durations), "checkpoint_all_s": durations,
            "phases": [c.get("phases", {}) for c in cps], "state_mib": statistics.median(c["state_size"] for c in cps) / MIB,
            "checkpointed_mib": statistics.median(c["checkpointed_size"] for c in cps) / MIB,
            "restore_s": min(restores), "restore_all_s": restores,
            "restore_s_per_gib": [t / (restored["checkpointed_size"] / (1 << 30)) for t in restores] if restored else [],
            "kms_per_checkpoint": calls, "kms_whole_run": run_calls,
            "kms_restore": restore_calls}


BUCKET = "bench"


def storage_uri(scheme: str, work: str, name: str, leaf: str) -> str:
    """``file://<work>/<name>/<leaf>``, or with ``s3``/``enc+s3`` an object prefix in the bench bucket."""
    if scheme.endswith("s3"):
        return f"{scheme}://{BUCKET}/{name}/{leaf}"
    return f"{scheme}://{os.path.join(work, name, leaf)}"


class S3Link:
    """moto's S3 server behind a link of ``mb_per_s`` MB/s each way (bench/link.py), both in their own
    processes (their CPU is the machine's, as a real object store's is not: keep the link slow enough
    to leave CPU free, or the run measures a CPU-bound machine again). Flink reaches it with its real
    S3 FileSystem (flink-s3-fs-presto, fetched once with Maven as the end-to-end tests do)."""

    def __init__(self, mb_per_s: float):
        import subprocess
        s3_plugin.plugins_dir()  # fetched now, not inside a job's timeout
        moto_port, port = free_port(), free_port()
        self.procs = [subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        link = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "link.py"), str(port), str(moto_port),
                                 str(mb_per_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(link)
        if link.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("bench/link.py did not start")
        self.endpoint = f"http://127.0.0.1:{port}"
        harness.wait_for(self._bucket, 60, "moto's S3 server", 0.5)
        self.conf = {"s3.endpoint": self.endpoint, "s3.path.style.access": "true",
                     "s3.access-key": "testing", "s3.secret-key": "testing"}

    def _bucket(self) -> bool:
        try:
            s3_plugin.s3_client(self.endpoint).create_bucket(Bucket=BUCKET)
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def close(self) -> None:
        for p in self.procs:
            if p.stdin:
                p.stdin.close()  # the link stops when its input closes
            else:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except Exception:  # noqa: BLE001
                p.kill()


def flink_jvm(name: str) -> str | None:
    """The pid of the Flink JVM running job ``name`` (its command line names the job's work dir)."""
    import subprocess
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "java" in args.split(" ", 1)[0] and "pyflink" in args:
            kids = subprocess.run(["ps", "-o", "args=", "-p", subprocess.run(
                ["ps", "-o", "ppid=", "-p", pid], capture_output=True, text=True).stdout.strip()],
                capture_output=True, text=True).stdout
            if name in kids:
                return pid
    return None


def jfr_start(directory: str, name: str):
    """Starts a Java Flight Recording (profile settings) in the run's Flink JVM."""
    import subprocess
    pid = flink_jvm(name + "-run")
    if not pid:
        print(f"  {name}: no Flink JVM found for --jfr", flush=True)
        return None
    subprocess.run(["jcmd", pid, "JFR.start", "name=bench", "settings=profile"], capture_output=True, check=True)
    return pid, os.path.join(os.path.abspath(directory), name + ".jfr")


def jfr_dump(pid: str, path: str) -> None:
    import subprocess
    subprocess.run(["jcmd", pid, "JFR.dump", "name=bench", f"filename={path}"], capture_output=True, check=True)
    print(f"  profile: {path}", flush=True)


def merge(rows: list[dict]) -> list[dict]:
    """One row per (backend, scheme) over all rounds: medians and minimums of every checkpoint and
    restore measured, KMS calls per checkpoint averaged."""
    out = []
    for key in dict.fromkeys((r["backend"], r["scheme"]) for r in rows):
        rs = [r for r in rows if (r["backend"], r["scheme"]) == key]
        durations = [d for r in rs for d in r["checkpoint_all_s"]]
        restores = [d for r in rs for d in r["restore_all_s"]]
        per_gib = [d for r in rs for d in r["restore_s_per_gib"]]
        calls = {op: statistics.mean(r["kms_per_checkpoint"].get(op, 0) for r in rs)
                 for op in {op for r in rs for op in r["kms_per_checkpoint"]}}
        out.append(dict(rs[-1], checkpoint_s=statistics.median(durations), checkpoint_min_s=min(durations),
                        checkpoint_all_s=durations, restore_s=min(restores), restore_all_s=restores,
                        restore_s_per_gib=per_gib,
                        kms_per_checkpoint=calls, phases=[p for r in rs for p in r["phases"]], rounds=len(rs)))
    return out


def s_per_gib(row: dict) -> float:
    """Median over the row's checkpoints of duration over size (RocksDB's differ from one to the next)."""
    return statistics.median(d / (p["mib"] / 1024) for d, p in zip(row["checkpoint_all_s"], row["phases"]))


def report(rows: list[dict]) -> str:
    def calls(d):
        return ", ".join(f"{k} {v:g}" for k, v in sorted(d.items())) or "0"
    out = [f"{'backend':8} {'scheme':18} {'state MiB':>9} {'ckpt s median':>13} {'ckpt s min':>10} "
           f"{'restore s':>9}  {'KMS calls/ckpt':15} {'KMS calls, whole run':21} KMS calls, restore"]
    for r in rows:
        enc = r["scheme"].startswith("enc+")
        out.append(f"{r['backend']:8} {r['scheme']:18} {r['state_mib']:9.0f} {r['checkpoint_s']:13.2f} "
                   f"{r['checkpoint_min_s']:10.2f} "
                   f"{r['restore_s']:9.2f}  {calls(r['kms_per_checkpoint']) if enc else '-':15} "
                   f"{calls(r['kms_whole_run']) if enc else '-':21} {calls(r['kms_restore']) if enc else '-'}")
    out.append("")
    out.append("where the time went (keyed operator, per checkpoint: delay/sync/async/alignment/final s, MiB "
               "written; final: from its acknowledgement to the checkpoint's completion):")
    for r in rows:
        out.append(f"  {r['backend']:8} {r['scheme']:18} " + "  ".join(
            "/".join(f"{p.get(k, 0):.2f}" for k in PHASES)
            + f" {p.get('mib', 0):.0f}"
            for p in r.get("phases", [])))
    out.append("  medians of the same:")
    for r in rows:
        ps = r.get("phases") or [{}]
        out.append(f"  {r['backend']:8} {r['scheme']:18} " + "/".join(
            f"{statistics.median(p.get(k, 0) for p in ps):.3f}" for k in PHASES))
    out.append("")
    out.append(f"{'backend':8} {'enc/plain ckpt (median)':>23} {'enc/plain ckpt (min)':>20} "
               f"{'enc/plain restore':>18} {'enc/plain s per GiB written (median)':>36} {'restore s per GiB read (fastest)':>33}")
    for backend in sorted({r["backend"] for r in rows}):
        p = next((r for r in rows if r["backend"] == backend and not r["scheme"].startswith("enc+")), None)
        for e in (r for r in rows if r["backend"] == backend and r["scheme"].startswith("enc+")):
            if p:
                out.append(f"{backend + (' ' + e['scheme'].partition('@')[2] if '@' in e['scheme'] else ''):8} "
                           f"{e['checkpoint_s'] / p['checkpoint_s']:23.2f} "
                           f"{e['checkpoint_min_s'] / p['checkpoint_min_s']:20.2f} "
                           f"{e['restore_s'] / p['restore_s']:18.2f} "
                           f"{s_per_gib(e) / s_per_gib(p):36.2f} "
                           + (f"{min(e['restore_s_per_gib']) / min(p['restore_s_per_gib']):33.2f}"
                              if e["restore_s_per_gib"] and p["restore_s_per_gib"] else f"{'n/a':>33}"))
    out.append("s per GiB written: each checkpoint's duration over its size (RocksDB's full snapshots "
               "differ in size from one checkpoint to the next)")
    out.append("restore s: the fastest of the restores (INITIALIZING -> RUNNING of the keyed operator, "
               "Python worker start included); per GiB read: over the size of the checkpoint restored")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keys", type=int, default=256)
    p.add_argument("--value-mib", type=int, default=1)
    p.add_argument("--checkpoints", type=int, default=3, help="full checkpoints measured per run")
    p.add_argument("--restores", type=int, default=2, help="restores per run (the fastest counts)")
    p.add_argument("--rounds", type=int, default=2,
                   help="runs per scheme, alternating file:// and enc+file:// (all their checkpoints count)")
    p.add_argument("--interval-ms", type=int, default=3000)
    p.add_argument("--throttle-ms", type=float, default=20.0)
    p.add_argument("--backends", default="hashmap,rocksdb")
    p.add_argument("--quick", action="store_true", help="16 keys x 1 MiB, 2 checkpoints")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--baseline-jar", help="also run enc+file:// with this (e.g. an older) shim jar, interleaved")
    p.add_argument("--baseline-opts", help="also run enc+file:// with these JVM options (JAVA_TOOL_OPTIONS), e.g. "
                   "--baseline-opts=-Dheliosdb.crypto.write-batch-bytes=4194304 (with =); with --baseline-jar, that jar")
    p.add_argument("--jfr", metavar="DIR", help="record a Java Flight Recording of each run's checkpoints here "
                   "(jfr print --events jdk.ExecutionSample DIR/NAME.jfr)")
    p.add_argument("--storage", choices=["file", "s3"], default="file",
                   help="file: the local disk (TMPDIR=/dev/shm for tmpfs); s3: moto's S3 server behind a link "
                   "of --link-mb-per-s (Flink's S3 FileSystem; enc+s3:// against s3://)")
    p.add_argument("--link-mb-per-s", type=float, default=100.0, help="with --storage s3: the link's MB/s each way")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--hold-page-reporting", action="store_true", help="hold the VM's free page reporting off "
                   "while measuring (root; restored after), as bench/overhead_bench.py does (bench/vm_memory.py)")
    a = p.parse_args(argv)
    if a.quick:
        a.keys, a.checkpoints = 16, 2
    work = tempfile.mkdtemp(prefix="heliosdb-flink-bench-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on kill too
    s3, a.storage_conf = None, {}
    try:
        if a.storage == "s3":
            s3 = S3Link(a.link_mb_per_s)
            a.storage_conf = s3.conf  # the s3.* options, for every job
            harness.JOB = s3_plugin.__file__  # the counter job with the S3 plugin and the s3.* options
            print(f"storage: S3 (moto) behind a link of {a.link_mb_per_s:g} MB/s each way, {s3.endpoint}")
        keyring = f"local://{work}/keyring.json"
        r = harness.cli("keyring", "init", keyring)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            return 2
        print(f"state {a.keys} x {a.value_mib} MiB, {a.checkpoints} checkpoints per run, work dir {work}")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(other work on the machine shows up as noise in every figure)")
        rows = []
        with vm_memory.held(a.hold_page_reporting):
            for backend in a.backends.split(","):
                for r in range(a.rounds):  # plain and encrypted runs alternate: both see the same load
                    plain = a.storage
                    for scheme in (plain, "enc+" + plain) + ((f"enc+{plain}@baseline",) if a.baseline_jar or a.baseline_opts else ()):
                        rows.append(bench_one(work, backend, scheme, a, keyring, r))
        rows = merge(rows)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}\n")
        print(report(rows))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(rows, f, indent=1)
    finally:
        for job in list(RUNNING):
            job.stop()
        if s3:
            s3.close()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Target 2 of bench/overhead_bench.py: what a running job loses to encryption.

The counter job (tests/flink/jobs/counter_job.py, PyFlink's local MiniCluster, one JVM per run) keeps
``keys`` keyed values of ``value_mib`` MiB each (incompressible; 256 x 1 MiB = 256 MiB of state) and
updates them as fast as it can, checkpointing every ``interval`` seconds to the local disk (the work
directory follows TMPDIR), unaligned (a job at full speed has full channels, behind which aligned
barriers queue for tens of seconds whatever the scheme). Once every key holds its value and ``settle`` checkpoints have completed,
the records the keyed operator took in are counted over ``minutes`` (Flink's ``numRecordsIn``,
from the REST API), with the durations of the checkpoints completed meanwhile. ``file://`` and
``enc+file://`` runs alternate, the order mirrored from round to round (plain, enc, enc, plain, ...),
so a slow drift of the machine's load weighs on both alike. Each run also prints where the cores went
(the JVM, PyFlink's Python process, idle: CPU seconds per second of the window; the JVM's busiest
threads by name, a pool's threads as one), the records/s while a checkpoint ran against between
checkpoints, and the median phases of its checkpoints (the keyed operator's slowest subtask: barrier
delay, sync and async parts; ``final`` from its acknowledgement to completion). The job's processes
get the MALLOC_* settings of docs/flink.md (harness.run_job gives them to every job), and each run
prints PyFlink's Python process's page faults.
"""
from __future__ import annotations

import os
import re
import statistics
import time

import flink_checkpoint_bench as fcb  # noqa: E402  (bench/ is on sys.path)
import vm_memory  # noqa: E402

BACKENDS = {"hashmap": ("hashmap", False), "rocksdb-full": ("rocksdb", False), "rocksdb-incremental": ("rocksdb", True)}


def records_in(job: "fcb.Job", jid: str, vid: str) -> float | None:
    try:
        got = fcb.rest(job.rest_port, f"/jobs/{jid}/vertices/{vid}/subtasks/metrics?get=numRecordsIn")
    except OSError:
        return None
    for m in got:
        if m.get("id") == "numRecordsIn":
            return float(m.get("sum", m.get("value", 0)))
    return None


def fresh_records_in(job: "fcb.Job", jid: str, vid: str) -> tuple[float, float]:
    """(count, when): the REST API answers from its cache and refreshes it in the background when
    asked, so the answer to a second request shows the count as of the first."""
    t = time.monotonic()
    records_in(job, jid, vid)
    time.sleep(1.5)
    return records_in(job, jid, vid), t


def completed(job: "fcb.Job", jid: str) -> list[dict]:
    return [c for c in fcb.rest(job.rest_port, f"/jobs/{jid}/checkpoints").get("history", [])
            if c["status"] == "COMPLETED"]


def cpu_s(fields: list[str], tick: int) -> float:
    """CPU seconds so far (utime + stime) from a /proc stat line's fields after the name."""
    return (int(fields[11]) + int(fields[12])) / tick


def jvm_threads(pid: str, tick: int) -> dict[str, float]:
    """CPU seconds so far of one JVM's threads, by name (digits folded: the pool's threads as one)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = re.sub(r"\d+", "#", stat[stat.index("(") + 1:stat.rindex(")")])
        out[name] = out.get(name, 0.0) + cpu_s(stat.rsplit(")", 1)[1].split(), tick)
    return out


def cpu_by_role() -> tuple[dict[str, float], float, dict[str, float]]:
    """(CPU seconds so far by role, minor page faults so far of PyFlink's Python process, the JVM's
    CPU seconds by thread name). The roles:
    the job's JVM and PyFlink's Python process (the job's client, which runs the Python functions in
    PyFlink's loopback mode), found as the processes of the job's session (harness.run_job starts each
    job in its own session; one job runs at a time), and the whole machine's idle time: where a run's
    cores went. Other processes on the machine count as neither."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                procs[pid] = (cmd, f.read().rsplit(")", 1)[1].split())
        except OSError:
            continue
    job = fcb.harness.JOB.encode()
    sessions = {fields[3] for cmd, fields in procs.values() if job in cmd.split(b"\0")}
    out, faults, threads = {"jvm": 0.0, "udf": 0.0}, 0.0, {}
    for pid, (cmd, fields) in procs.items():
        if fields[3] in sessions:
            role = "jvm" if cmd.split(b"\0", 1)[0].endswith(b"java") else "udf"
            if role == "jvm":
                threads.update(jvm_threads(pid, tick))
            out[role] += cpu_s(fields, tick)
            if role == "udf":
                faults += int(fields[7])  # minor page faults
    with open("/proc/stat") as f:
        out["idle"] = int(f.readline().split()[4]) / tick
    return out, faults, threads


def run_one(work: str, keyring: str, backend: str, scheme: str, a, name: str) -> dict:
    """One job: records/s over the window and the checkpoints completed in it."""
    kind, incremental = BACKENDS[backend]
    conf = {"heliosdb.crypto.kms.uri": keyring, "execution.checkpointing.incremental": str(incremental).lower(),
            "web.checkpoints.history": "1000", "python.fn-execution.bundle.size": str(a.bundle),
            "python.fn-execution.bundle.time": "100",
            # the counts are fresh to half a second (the REST API caches metrics 10 s by default)
            "metrics.fetcher.update-interval": "500"}
    env = {}  # harness.run_job gives the job's processes the MALLOC_* settings (both schemes)
    if scheme.endswith("@baseline"):  # another shim build, or the JVM options given
        env.update({k: v for k, v in (("HELIOSDB_SHIM_JAR", a.baseline_jar), ("JAVA_TOOL_OPTIONS", a.baseline_opts)) if v})
    scheme = scheme.split("@")[0]
    metrics_port = fcb.free_port() if scheme.startswith("enc+") else None  # KMS calls, from the package's endpoint
    if metrics_port:
        conf["heliosdb.crypto.metrics.port"] = str(metrics_port)
    cp_uri = f"{scheme}://{os.path.join(work, name, 'checkpoints')}"
    # unaligned: the job runs at full speed, so its channels are full (backpressure); aligned barriers
    # would queue behind that data for tens of seconds, whatever the scheme
    args = dict(backend=kind, unaligned=True, keys=a.keys, pad=a.value_mib * fcb.MIB, random_pad=True, records=10 ** 9,
                throttle_ms=0, interval_ms=int(a.interval * 1000))
    job = fcb.Job(work, name, cp_uri, args, conf, env=env)
    try:
        jid = job.job_id()
        vid = next(v["id"] for v in fcb.rest(job.rest_port, f"/jobs/{jid}")["vertices"] if "count" in v["name"])
        # every key holds its value, and the first checkpoints (the largest, for RocksDB) are behind
        fcb.harness.wait_for(lambda: (records_in(job, jid, vid) or 0) >= a.keys and len(completed(job, jid)) >= a.settle,
                             600, "the state built and the first checkpoints", 1.0)
        n0, t0 = fresh_records_in(job, jid, vid)
        before = {c["id"] for c in completed(job, jid)}
        failed0 = fcb.rest(job.rest_port, f"/jobs/{jid}/checkpoints")["counts"]["failed"]
        kms0 = fcb.kms_calls(metrics_port)
        cpu0, faults0, threads0 = cpu_by_role()
        reported0 = vm_memory.reported_mib()
        samples, asked = [], time.time()  # (when, records in) once a second
        records_in(job, jid, vid)
        while time.monotonic() < t0 + a.minutes * 60:
            time.sleep(1.0)
            now, n = time.time(), records_in(job, jid, vid)
            if n is not None:
                samples.append((asked, n))  # the REST cache answers with the count as of the request before
            asked = now
        cpu1, faults1, threads1 = cpu_by_role()
        reported1 = vm_memory.reported_mib()
        n1, t1 = fresh_records_in(job, jid, vid)
        cps = [c for c in completed(job, jid) if c["id"] not in before]
        kms = sum(fcb.diff(kms0, fcb.kms_calls(metrics_port)).values())
        failed = fcb.rest(job.rest_port, f"/jobs/{jid}/checkpoints")["counts"]["failed"] - failed0
        parts = [fcb.phases(job, jid, c, vid) for c in cps]
    finally:
        job.stop()
    durations = sorted(c["end_to_end_duration"] / 1000.0 for c in cps)
    return {"backend": backend, "scheme": scheme, "records_per_s": (n1 - n0) / (t1 - t0), "checkpoints": durations,
            "state_mib": statistics.median(c["state_size"] for c in cps) / fcb.MIB if cps else 0.0,
            "failed": failed, "kms_calls": kms, "load": os.getloadavg()[0],
            "cpu": {k: (cpu1[k] - cpu0[k]) / (t1 - t0) for k in cpu0},
            "threads": sorted((((v - threads0.get(k, 0.0)) / (t1 - t0), k) for k, v in threads1.items()), reverse=True)[:8],
            "udf_faults_per_s": (faults1 - faults0) / (t1 - t0),
            "reported_mib": reported1 - reported0 if reported0 is not None else None,
            "phases": {k: statistics.median(p.get(k, 0.0) for p in parts) if parts else float("nan")
                       for k in ("delay", "sync", "async", "final")}, "during_between": during_and_between(samples, cps)}


def during_and_between(samples: list[tuple[float, float]], cps: list[dict]) -> tuple[float, float]:
    """Records/s while a checkpoint ran (from its trigger to its completion) and between checkpoints:
    whether a scheme's loss comes with its checkpoints or stays between them."""
    spans = [(c["trigger_timestamp"] / 1000.0, (c["trigger_timestamp"] + c["end_to_end_duration"]) / 1000.0) for c in cps]
    acc = {True: [0.0, 0.0], False: [0.0, 0.0]}
    for (ta, na), (tb, nb) in zip(samples, samples[1:]):
        inside = any(s <= (ta + tb) / 2 <= e for s, e in spans)
        acc[inside][0] += nb - na
        acc[inside][1] += tb - ta
    return tuple(n / t if t else float("nan") for n, t in (acc[True], acc[False]))


def p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")


def measure(a, work: str, keyring: str, say=print) -> list[dict]:
    rows = []
    schemes = ["file", "enc+file"] + (["enc+file@baseline"] if a.baseline_jar or a.baseline_opts else [])
    for backend in a.backends.split(","):
        for r in range(a.job_rounds):
            order = schemes if r % 2 == 0 else schemes[::-1]
            for scheme in order:
                name = f"{backend}-{scheme.replace('+', '-').replace('@', '-')}-{r}"
                say(f"  {name}: {a.keys} x {a.value_mib} MiB of state, {a.minutes:g} min measured ...")
                row = run_one(work, keyring, backend, scheme, a, name)
                row["scheme"] = scheme
                say(f"    {row['records_per_s']:.1f} records/s, {len(row['checkpoints'])} checkpoints, "
                    f"p99 {p99(row['checkpoints']):.2f} s, state {row['state_mib']:.0f} MiB, "
                    f"{row['failed']} failed, {row['kms_calls']:g} KMS calls, load {row['load']:.1f}; "
                    f"cores busy: JVM {row['cpu']['jvm']:.2f}, PyFlink's Python {row['cpu']['udf']:.2f}, "
                    f"idle {row['cpu']['idle']:.2f} (Python's page faults/s {row['udf_faults_per_s']:.0f}); records/s during checkpoints {row['during_between'][0]:.1f}, "
                    f"between {row['during_between'][1]:.1f}")
                say("    checkpoint phases, median s: " + ", ".join(f"{k} {v:.2f}" for k, v in row["phases"].items())
                    + ("" if row["reported_mib"] is None else
                       f"; free memory the VM handed back to its host meanwhile: {row['reported_mib']:.0f} MiB"))
                say("    JVM threads (cores busy): " + ", ".join(f"{k} {v:.2f}" for v, k in row["threads"]))
                rows.append(row)
    return rows


def report(rows: list[dict]) -> list[str]:
    out = [f"  {'backend':20} {'scheme':18} {'records/s':>10} {'ckpts':>6} {'ckpt p50 s':>10} {'ckpt p99 s':>10} "
           f"{'KMS calls/ckpt':>14}"]
    merged = {}
    for r in rows:
        m = merged.setdefault((r["backend"], r["scheme"]), {"rates": [], "cps": [], "kms": 0})
        m["rates"].append(r["records_per_s"])
        m["cps"] += r["checkpoints"]
        m["kms"] += r["kms_calls"]
    for (b, s), m in merged.items():
        out.append(f"  {b:20} {s:18} {statistics.mean(m['rates']):10.1f} {len(m['cps']):6d} "
                   f"{statistics.median(m['cps']) if m['cps'] else float('nan'):10.2f} {p99(m['cps']):10.2f} "
                   f"{m['kms'] / max(1, len(m['cps'])) if s.startswith('enc') else float('nan'):14.2f}")
    out.append(f"  {'backend':20} {'enc/plain records/s':>20} {'(target >= 0.97)':>17} {'p99 ckpt enc/plain':>19}")
    for b in dict.fromkeys(r["backend"] for r in rows):
        p = merged.get((b, "file"))
        for s in ("enc+file", "enc+file@baseline"):
            e = merged.get((b, s))
            if p and e:
                ratio = statistics.mean(e["rates"]) / statistics.mean(p["rates"])
                out.append(f"  {b + ('' if s == 'enc+file' else ' (baseline)'):20} {ratio:20.3f} "
                           f"{'ok' if ratio >= 0.97 else 'UNDER':>17} {p99(e['cps']) / p99(p['cps']):19.2f}")
    return out

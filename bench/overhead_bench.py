"""What encryption costs Flink: the CPU it adds per GiB against AES-GCM's own, and what a running job loses.

    .venv/bin/python bench/overhead_bench.py            # both parts, ~75 minutes on 2 cores
    .venv/bin/python bench/overhead_bench.py --only fs  # the file-system part, ~20 minutes
    .venv/bin/python bench/overhead_bench.py --only job --backends hashmap

1. File system (bench/fs_cost.py): writes and reads through Flink's FileSystem API on tmpfs
   (``--dir``, default /dev/shm), ``file://`` against ``enc+file://``, with Flink's call sizes (4-64 KiB;
   RocksDB's 4 MiB transfer buffers), and AES-GCM alone in the same run. Per run and size:
   (enc - plain CPU s/GiB) / AES-GCM CPU s/GiB (targets: write <= 2.0, read <= 1.5) and the median
   enc/plain write time (<= 1.3). Then where the added CPU goes (bench/cpu_profile.py: per-thread run
   time, and ``perf`` samples when perf is installed).
2. A running job (bench/job_throughput.py): a keyed PyFlink job with >= 256 MiB of state,
   checkpointing every 10 s to local disk, ``file://`` and ``enc+file://`` alternating: records per
   second (target >= 0.97) and the p99 checkpoint duration, for HashMap and RocksDB (full, incremental),
   with where the cores went (the JVM, PyFlink's Python process) and the records/s during and between
   checkpoints.

``--baseline-jar OLD.jar`` adds a second shim build to every rotation (A/B a change before keeping it),
``--baseline-opts=-D...`` the same shim with other JVM options (both parts), ``--baseline-python`` the
same shim over another Python environment (the file-system part).
The machine's load average is printed with each part: other work shows up as noise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import bench_jvm  # noqa: E402
import cpu_profile  # noqa: E402
import fs_cost  # noqa: E402
import job_throughput  # noqa: E402
import vm_memory  # noqa: E402
from heliosdb_flink_crypto import DEFAULT_SEGMENT_SIZE  # noqa: E402
from heliosdb_flink_crypto.config import parse_size  # noqa: E402
from heliosdb_flink_crypto.kms.local import LocalKeyring  # noqa: E402

SIZES = {"4k": 4096, "16k": 16384, "64k": 65536, "4m": 4 << 20}
TARGET = {"write": 2.0, "read": 1.5}


def load() -> str:
    mib = vm_memory.reported_mib()
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs" + (
        "" if mib is None else f", {mib:.0f} MiB handed back to the host so far")


def fs_part(a, uri: str, seg: int) -> list[dict]:
    directory = tempfile.mkdtemp(prefix="heliosdb-fs-bench-", dir=a.dir)
    jvms = {"main": fs_cost.FsJvm(uri, seg, a.mib, os.path.join(directory, "main"), java_opts=a.java_opts)}
    if a.baseline_jar or a.baseline_opts or a.baseline_python:
        jvms["base"] = fs_cost.FsJvm(uri, seg, a.mib, os.path.join(directory, "base"), a.baseline_jar,
                                     java_opts=f"{a.java_opts} {a.baseline_opts or ''}", python=a.baseline_python)
    aes = fs_cost.AesAlone(seg, a.mib)
    sizes = [SIZES[s] for s in a.sizes.split(",")]
    results = []
    try:
        def one_pass():
            for call in sizes:
                for jvm in jvms.values():
                    for scheme in ("plain", "enc"):  # both: the JIT compiles each path
                        jvm.run("write", scheme, call)
                        jvm.run("read", scheme, call)
                    if a.piped:
                        jvm.run("write", "piped", call)
        print(f"warming up (JIT): {a.warmup_gib} GiB per JVM, then until the JIT compilers rest ...", flush=True)
        n, jit = bench_jvm.warm_up([j.pid for j in jvms.values()], one_pass,
                                   max(1, (a.warmup_gib << 10) // a.mib // (2 * len(sizes))), a.warmup_passes)
        print(f"warmed up: {n} passes, the JIT compilers ran {jit * 1000:.0f} ms in the last", flush=True)
        for run in range(1, a.runs + 1):
            print(f"run {run}/{a.runs}: {load()}", flush=True)
            for call in sizes:
                for op in a.ops.split(","):
                    rows = fs_cost.measure(jvms, aes, op, call, a.rounds, piped=a.piped)
                    s = fs_cost.summary(rows)
                    results.append(dict(s, run=run, op=op, call=call, rows=rows))
                    print(line(results[-1]), flush=True)
        print("\n".join(targets(results)), flush=True)
        if a.profile_rounds:
            breakdown(a, jvms["main"])
    finally:
        for jvm in jvms.values():
            jvm.close()
        shutil.rmtree(directory, ignore_errors=True)
    return results


def targets(results: list[dict]) -> list[str]:
    """Target 1 per call size: the ratio of every run (each must hold) and the median time ratio."""
    out = [f"\ntarget 1: (enc+file:// - file:// CPU s/GiB) / AES-GCM CPU s/GiB, every run "
           f"(write <= {TARGET['write']}, read <= {TARGET['read']}); median enc/plain write time <= 1.3"]
    for op in dict.fromkeys(r["op"] for r in results):
        for call in dict.fromkeys(r["call"] for r in results):
            rs = [r for r in results if r["op"] == op and r["call"] == call]
            ratios = [r["enc_ratio"] for r in rs]
            ok = max(ratios) <= TARGET[op]
            times = [t for r in rs for t in (e["wall"] / p["wall"] for e, p in zip(r["rows"]["enc"], r["rows"]["plain"]))]
            out.append(f"  {op:5} {size_name(call):>7} calls: " + " ".join(f"{x:.2f}" for x in ratios)
                       + f"  max {max(ratios):.2f} {'ok' if ok else 'MISSED'}"
                       + f"  | time enc/plain median {statistics.median(times):.2f}"
                       + (f" {'ok' if statistics.median(times) <= 1.3 else 'MISSED'}" if op == "write" else ""))
    return out


def job_part(a, uri: str) -> None:
    work = tempfile.mkdtemp(prefix="heliosdb-job-bench-")
    print(f"\nrunning job: checkpoints every {a.interval:g} s to {work} (TMPDIR), {load()}", flush=True)
    try:
        rows = job_throughput.measure(a, work, uri, say=lambda m: print(m, flush=True))
    finally:
        for job in list(job_throughput.fcb.RUNNING):
            job.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nrunning job, {load()}:")
    print("\n".join(job_throughput.report(rows)), flush=True)


def breakdown(a, jvm: fs_cost.FsJvm) -> None:
    """Where the CPU goes, enc+file:// against file://, per category (bench/cpu_profile.py)."""
    call = SIZES[a.profile_size]
    print(f"\nwhere the CPU goes, {size_name(call)} calls ({a.profile_rounds} rounds per side; CPU s/GiB):", flush=True)
    if not cpu_profile.available():
        print("  perf (or jcmd) not installed: per-thread figures above only")
        return
    for op in ("write", "read"):
        cols = {}
        for scheme in ("plain", "enc"):
            cpu = []
            counts, n = cpu_profile.record(jvm.pid, lambda: cpu.extend(
                jvm.run(op, scheme, call)["all"] for _ in range(a.profile_rounds)))
            per = sum(cpu) / len(cpu) / max(1, n)
            cols[scheme] = {k: counts.get(k, 0) * per for k in cpu_profile.CATEGORIES}
        print(f"  {op:5} {'category':26} {'file://':>8} {'enc+file://':>12} {'added':>7}")
        for k in cpu_profile.CATEGORIES:
            p_, e_ = cols["plain"][k], cols["enc"][k]
            print(f"  {'':5} {k:26} {p_:8.3f} {e_:12.3f} {e_ - p_:7.3f}")
        tp, te = sum(cols["plain"].values()), sum(cols["enc"].values())
        print(f"  {'':5} {'total':26} {tp:8.3f} {te:12.3f} {te - tp:7.3f}", flush=True)


def size_name(call: int) -> str:
    return next(k for k, v in SIZES.items() if v == call).upper().replace("K", " KiB").replace("M", " MiB")


def line(r: dict) -> str:
    m = r["med"]
    out = (f"  {r['op']:5} {size_name(r['call']):>7} calls  CPU s/GiB plain {m['plain']['all']:.3f}  "
           f"enc {m['enc']['all']:.3f} (caller {m['enc']['caller']:.3f}, workers {m['enc']['workers']:.3f}, "
           f"jvm {m['enc']['jvm']:.3f}; {m['enc']['switches']:.0f} switches/GiB vs {m['plain']['switches']:.0f})  "
           f"AES {r['aes']:.3f}  added/AES {r['enc_ratio']:.2f}"
           f"{' ok' if r['enc_ratio'] <= TARGET[r['op']] else ' OVER'}  time enc/plain {r['enc_time']:.2f}")
    if "base_ratio" in r:
        out += f"  | baseline: added/AES {r['base_ratio']:.2f}, time {r['base_time']:.2f}"
    if "piped_ratio" in r:  # the pipeline's two threads alone, and what sealing adds on top of them
        out += (f"  | piped {r['med']['piped']['all']:.3f}: added/AES {r['piped_ratio']:.2f}, "
                f"enc over piped {r['enc_ratio'] - r['piped_ratio']:.2f}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["fs", "job"])
    p.add_argument("--dir", default="/dev/shm", help="where the file-system part writes (tmpfs: storage hides no CPU)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=9, help="rounds per run, size and side (the median of 9 paired rounds: a round of 512 MiB alone moves by +-15%% on a VM)")
    p.add_argument("--mib", type=int, default=512, help="MiB per round")
    p.add_argument("--sizes", default="4k,16k,64k,4m")
    p.add_argument("--ops", default="write,read", help="file system: write, read or both (reads read the warm-up's files)")
    p.add_argument("--warmup-gib", type=int, default=8, help="GiB each JVM writes and reads per scheme before measuring (JIT)")
    p.add_argument("--warmup-passes", type=int, default=30, help="at most this many warm-up passes (every size, "
                   "side and operation once): after --warmup-gib, warming goes on until a pass in which the JIT "
                   "compilers ran under 10 ms")
    p.add_argument("--segment-size", default=str(DEFAULT_SEGMENT_SIZE))
    p.add_argument("--baseline-jar", help="also run this shim jar's enc+file://, in the same rotation")
    p.add_argument("--profile-size", default="64k", choices=list(SIZES), help="call size of the CPU breakdown")
    p.add_argument("--profile-rounds", type=int, default=6)
    p.add_argument("--baseline-opts", help="JVM options of the baseline (with or without --baseline-jar; the running job too), e.g. "
                   "--baseline-opts=-Dheliosdb.crypto.python-workers=1 (note the =)")
    p.add_argument("--baseline-python", help="file system part: the baseline's Python hooks run by this interpreter "
                   "(another environment, e.g. another cryptography release)")
    p.add_argument("--backends", default=",".join(job_throughput.BACKENDS), help="running job: state backends")
    p.add_argument("--job-rounds", type=int, default=4, help="running job: rounds per backend (plain, enc; then enc, plain)")
    p.add_argument("--minutes", type=float, default=3.0, help="running job: minutes measured per run")
    p.add_argument("--interval", type=float, default=10.0, help="running job: checkpoint interval, seconds")
    p.add_argument("--keys", type=int, default=256)
    p.add_argument("--value-mib", type=int, default=1)
    p.add_argument("--settle", type=int, default=2, help="running job: checkpoints completed before measuring")
    p.add_argument("--bundle", type=int, default=100, help="running job: records per Python bundle")
    p.add_argument("--java-opts", default="", help="extra JVM options for the file-system part's JVMs")
    p.add_argument("--hold-page-reporting", action="store_true", help="hold the VM's free page reporting off "
                   "while measuring (root; restored after): the host faulting freed memory back in costs the "
                   "next writes up to 3 times their CPU, whichever side meets it (bench/vm_memory.py)")
    p.add_argument("--piped", action="store_true", help="writes: also file:// through the shim's write pipeline "
                   "without sealing (its two threads' cost apart from AES-GCM and the Python call)")
    a = p.parse_args(argv)
    for name, given, known in (("--sizes", a.sizes, SIZES), ("--ops", a.ops, ("write", "read"))):
        if not given or not set(given.split(",")) <= set(known):  # before any JVM or folder is made
            p.error(f"{name} {given!r}: a comma-separated list of {', '.join(known)}")
    seg = parse_size(a.segment_size)
    keys = tempfile.mkdtemp(prefix="heliosdb-bench-keys-")
    uri = f"local://{keys}/keyring.json"
    LocalKeyring.create(uri)
    try:
        with vm_memory.held(a.hold_page_reporting):
            if a.only in (None, "fs"):
                print(f"file system: {a.mib} MiB per round, {a.rounds} rounds per run and size, segment {seg} B, "
                      f"files in {a.dir}", flush=True)
                fs_part(a, uri, seg)
            if a.only in (None, "job"):
                job_part(a, uri)
    finally:
        shutil.rmtree(keys, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

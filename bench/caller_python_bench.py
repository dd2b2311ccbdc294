"""What a thread calling Python itself costs (the shim's CallerPython: one interpreter per thread that
seals its own batches or opens its own segments): memory and time per interpreter, against threads
without one, side by side in one run.

    .venv/bin/python bench/caller_python_bench.py [--threads 60] [--rounds 3]

A JVM (bench/CallerPythonBench.java) starts N threads one after the other. Side ``interpreter``:
each makes its interpreter as CallerPython does (which asks the package its bridge protocol and
version) and calls the package twice more, then stays alive until
all have; side ``thread``: each only waits. Then all end. Sides alternate from round to round.
Printed: resident memory added per thread while alive and after the threads ended (median of the
rounds, per side), one interpreter's share (the difference), and the time to make an interpreter
and its first and second call. CallerPython makes one for at most 64 threads alive at a time and
1024 per JVM; an interpreter whose thread ended stays (it cannot be closed from another thread).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import bench_jvm  # noqa: E402

SIDES = ("interpreter", "thread")


def run(cp: list[str], work: str, threads: int, side: str) -> dict[str, float]:
    cmd, env = bench_jvm.launch(cp, "io.heliosdb.flink.crypto.CallerPythonBench",
                                [sys.executable, str(threads), side], os.path.join(work, "tmp"))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"CallerPythonBench failed:\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
    return {k: float(v) for k, v in (line.split() for line in p.stdout.splitlines() if line.count(" ") == 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="caller-python-bench-")
    try:
        cp = bench_jvm.compile_bench("CallerPythonBench.java", os.path.join(work, "classes"))
        rows = {side: [] for side in SIDES}
        for r in range(a.rounds):
            for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
                rows[side].append(run(cp, work, a.threads, side))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = a.threads
    grown = {side: {k: statistics.median((r[k] - r["rss_before_kib"]) / n for r in rs)
                    for k in ("rss_alive_kib", "rss_after_kib")} for side, rs in rows.items()}
    print(f"{n} threads started one after the other; {a.rounds} rounds, medians; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"  resident KiB per thread, while alive / after they ended: with an interpreter "
          f"{grown['interpreter']['rss_alive_kib']:.0f} / {grown['interpreter']['rss_after_kib']:.0f}, "
          f"without {grown['thread']['rss_alive_kib']:.0f} / {grown['thread']['rss_after_kib']:.0f}")
    print(f"  an interpreter: {grown['interpreter']['rss_alive_kib'] - grown['thread']['rss_alive_kib']:.0f} KiB "
          f"while its thread lives, {grown['interpreter']['rss_after_kib'] - grown['thread']['rss_after_kib']:.0f} "
          f"KiB after it ended")
    med = lambda k: statistics.median(r[k] for r in rows["interpreter"])  # noqa: E731
    print(f"  making one {med('make_us'):.0f} us, its first call {med('first_call_us'):.0f} us, "
          f"the second {med('second_call_us'):.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

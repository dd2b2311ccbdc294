"""What the threads that call Python themselves (the shim's CallerPython) cost: memory and time per
interpreter, against threads writing ``file://``, side by side in one run.

    .venv/bin/python bench/caller_python_bench.py [--threads 32] [--rounds 3]

A JVM (bench/CallerPythonBench.java) starts N threads one after the other; each writes two 2 MiB
files through Flink's FileSystem API (its first sealed batch makes its own interpreter), and stays
alive until all have; then all end. A first such phase fills the shim's pool of idle buffers; the
second is measured. Sides: ``enc`` (``enc+file://``), ``enc/bridge`` (the same with
``heliosdb.crypto.caller-python=false``: no thread makes an interpreter, the bridge's workers seal)
and ``plain`` (``file://``), rotating from round to round. Printed per side: resident memory added
per thread while alive and after the threads ended (median of the rounds), a thread's first and
second write, the interpreters made; and what one interpreter adds (enc less enc/bridge).
``--threads 72`` shows the limit: past 64 live threads, a thread's batches are sealed through the
bridge's workers. ``--arenas`` sets MALLOC_ARENA_MAX (default 1: glibc's per-thread arenas keep
the direct buffers a thread freed, which would hide the interpreters; 0 leaves glibc's default).
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

from heliosdb_flink_crypto.kms.local import LocalKeyring  # noqa: E402

import bench_jvm  # noqa: E402


SIDES = {"plain": ("plain", []), "enc": ("enc", []),
         "enc/bridge": ("enc", ["-Dheliosdb.crypto.caller-python=false"])}


def run(cp: list[str], work: str, uri: str, threads: int, side: str, arenas: int) -> dict[str, float]:
    scratch = os.path.join(work, "tmp")
    files = os.path.join(work, "files")
    os.makedirs(files, exist_ok=True)
    scheme, options = SIDES[side]
    p = subprocess.run(bench_jvm.java(cp, "io.heliosdb.flink.crypto.CallerPythonBench",
                                      [sys.executable, uri, files, str(threads), scheme], scratch, options),
                       capture_output=True, text=True, timeout=600,
                       env=dict(bench_jvm.env(scratch), **({"MALLOC_ARENA_MAX": str(arenas)} if arenas else {})))
    if p.returncode != 0:
        raise RuntimeError(f"CallerPythonBench failed:\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
    shutil.rmtree(files, ignore_errors=True)
    return {k: float(v) for k, v in (line.split() for line in p.stdout.splitlines() if line.count(" ") == 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arenas", type=int, default=1,
                    help="MALLOC_ARENA_MAX of the JVMs (0: glibc's default, 8 per core). With one arena, the "
                         "direct buffers a thread frees are reused by the next: only the interpreters remain")
    a = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="caller-python-bench-")
    try:
        uri = f"local://{work}/keyring.json"
        LocalKeyring.create(uri)
        cp = bench_jvm.compile_bench("CallerPythonBench.java", os.path.join(work, "classes"))
        rows = {side: [] for side in SIDES}
        for r in range(a.rounds):
            order = list(SIDES)[r % len(SIDES):] + list(SIDES)[:r % len(SIDES)]  # rotate who goes first
            for side in order:
                rows[side].append(run(cp, work, uri, a.threads, side, a.arenas))
        n = a.threads
        print(f"{n} threads, one after the other, each writing 2 x 2 MiB; {a.rounds} rounds, medians; "
              f"MALLOC_ARENA_MAX {a.arenas or 'unset'}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'':10} {'KiB/thread alive':>17} {'after they ended':>17} {'1st write ms':>13} {'2nd write ms':>13} "
              f"{'interpreters':>13} {'holding one':>12}")
        for scheme, rs in rows.items():
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            print(f"{scheme:10} {(med('rss_alive_kib') - med('rss_before_kib')) / n:17.0f} "
                  f"{(med('rss_after_kib') - med('rss_before_kib')) / n:17.0f} {med('first_write_ms'):13.1f} "
                  f"{med('second_write_ms'):13.1f} {med('interpreters_made'):13.0f} "
                  f"{med('threads_holding_one_alive'):12.0f}")
        grown = {side: {k: statistics.median(r[k] - r["rss_before_kib"] for r in rs)
                        for k in ("rss_alive_kib", "rss_after_kib")} for side, rs in rows.items()}
        made = a.threads  # the measured phase's threads each made one (below CallerPython's limit of 64 live)
        if made < 64:
            per = {k: (grown["enc"][k] - grown["enc/bridge"][k]) / made for k in ("rss_alive_kib", "rss_after_kib")}
            print(f"an interpreter (enc - enc/bridge, per interpreter made): {per['rss_alive_kib']:.0f} KiB while "
                  f"its thread lives, {per['rss_after_kib']:.0f} KiB after it ended")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

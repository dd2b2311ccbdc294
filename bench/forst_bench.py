"""ForSt state access with its primary directory on ``enc+file://`` against ``file://``, side by side.

    .venv/bin/python bench/forst_bench.py [--keys 1000000] [--updates 1000000] [--rounds 3]
        [--sides plain,enc:4kb,enc:16kb,enc:256kb] [--file-cache off|on] [--dir /tmp/x]

A keyed Java job (bench/ForStBench.java, compiled against PyFlink's jars and the built shim jar) runs
in a local MiniCluster with ``state.backend.type: forst``, ``state.backend.forst.sync.enforce-local:
false`` and ``state.backend.forst.primary-dir`` on the side's scheme, so ForSt keeps its live SST
files there and reads them through the FileSystem. It writes one value per key (the load: state
writes only), then reads and rewrites the value of a pseudo-random key per record (the updates: one
state read and one state write each). The block cache is 16 MiB (``memory.fixed-per-slot: 32mb``)
against about 130 MB of state, so most reads miss it. ``--file-cache off`` (the default) also turns
ForSt's local file cache off, so every miss reads the primary directory (through the shim for
``enc``); ``on`` keeps ForSt's default (the cache may use the local disk down to 256 MiB free).

Sides: ``plain`` (``file://``) and ``enc:<size>`` (``enc+file://`` with
``heliosdb.crypto.forst.segment-size: <size>``), followed by ``/bridge`` to send every Python call
through the bridge's worker threads (``-Dheliosdb.crypto.caller-python=false``); ``/slot=<size>``
on any side sets ForSt's memory per slot (``memory.fixed-per-slot``, default here 32mb). Each run is its own JVM; the order of the sides
rotates from round to round. Printed per side: load writes/s and update reads (= writes) per second,
best and median, their ratio to plain, the plaintext bytes the shim decrypted per byte ForSt read
(read amplification), decrypting Python calls per update (all of the run's calls, compactions
included), files opened per run, and threads that called Python themselves (CallerPython); the
1-minute load average is printed for every run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from heliosdb_flink_crypto.kms.local import LocalKeyring  # noqa: E402

import bench_jvm  # noqa: E402

LOG4J = """rootLogger.level = ERROR
rootLogger.appenderRef.console.ref = C
appender.console.name = C
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d %-5p %c{1} - %m%n
"""


def flink_options(side: str, data: str, keyring: str, file_cache: bool) -> list[str]:
    scheme = "file" if side.startswith("plain") else "enc+file"
    opts = {"state.backend.type": "forst", "state.backend.forst.sync.enforce-local": "false",
            "state.backend.forst.primary-dir": f"{scheme}://{data}",
            "state.backend.forst.memory.managed": "false", "state.backend.forst.memory.fixed-per-slot": "32mb",
            "heliosdb.crypto.kms.uri": keyring, "heliosdb.crypto.python.executable": sys.executable}
    if not file_cache:
        opts["state.backend.forst.cache.reserve-size"] = "0"
    if side.startswith("enc:"):
        opts["heliosdb.crypto.forst.segment-size"] = side.split(":", 1)[1].split("/")[0]
    for part in side.split("/")[1:]:
        if part.startswith("slot="):  # ForSt's memory (write buffers and block cache) per slot
            opts["state.backend.forst.memory.fixed-per-slot"] = part[5:]
    return [f"{k}={v}" for k, v in opts.items()] + (["--async"] if "/async" in side else [])


def jvm_options(side: str) -> list[str]:
    """``/bridge``: every Python call through the bridge's workers (heliosdb.crypto.caller-python=false)."""
    out = []
    for part in side.split("/")[1:]:
        if part == "bridge":
            out.append("-Dheliosdb.crypto.caller-python=false")
        elif not part.startswith("slot=") and part != "async":
            raise ValueError(f"unknown side option {part!r} in {side!r}")
    return out


def run(cp: list[str], work: str, side: str, a, keyring: str) -> dict:
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    result = os.path.join(work, "result")
    if os.path.exists(result):
        os.remove(result)
    load0 = os.getloadavg()[0]
    cmd, env = bench_jvm.launch(cp, "io.heliosdb.flink.crypto.ForStBench",
                                [result, str(a.keys), str(a.updates), str(a.value_bytes)]
                                + flink_options(side, data, keyring, a.file_cache == "on"), os.path.join(work, "tmp"),
                                [*jvm_options(side), f"-Dlog4j.configurationFile={os.path.join(work, 'log4j2.properties')}"])
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0 or not os.path.exists(result):
        raise RuntimeError(f"{side}: the bench job failed:\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    load_s, update_s, decrypted, delivered, opened, calls, threads = open(result).read().split()
    return {"load": a.keys / float(load_s), "update": a.updates / float(update_s),
            "decrypted": int(decrypted), "delivered": int(delivered), "opened": int(opened),
            "calls": int(calls), "threads": int(threads),
            "loadavg": (load0, os.getloadavg()[0])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--updates", type=int, default=1_000_000)
    p.add_argument("--value-bytes", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sides", default="plain,enc:4kb,enc:16kb,enc:256kb")
    p.add_argument("--file-cache", choices=["off", "on"], default="off")
    p.add_argument("--dir", help="work folder (default: a temporary one)")
    a = p.parse_args(argv)
    sides = a.sides.split(",")
    work = a.dir or tempfile.mkdtemp(prefix="forst-bench-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "log4j2.properties"), "w") as f:
        f.write(LOG4J)
    keyring = f"local://{work}/keyring.json"
    if not os.path.exists(keyring[len("local://"):]):
        LocalKeyring.create(keyring)
    classes = tempfile.mkdtemp(prefix="forst-bench-classes-")
    results: dict[str, list[dict]] = {s: [] for s in sides}
    try:
        cp = bench_jvm.compile_bench("ForStBench.java", classes)
        for r in range(a.rounds):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for side in order:
                t = time.monotonic()
                res = run(cp, work, side, a, keyring)
                results[side].append(res)
                print(f"round {r + 1} {side:>10}: load {res['load']:>9,.0f} writes/s, updates "
                      f"{res['update']:>9,.0f} reads/s + writes/s, {time.monotonic() - t:5.1f} s, "
                      f"load average {res['loadavg'][0]:.2f} -> {res['loadavg'][1]:.2f}", flush=True)
    finally:
        shutil.rmtree(classes, ignore_errors=True)
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    report(results, sides, a)
    return 0


def report(results: dict[str, list[dict]], sides: list[str], a) -> None:
    print(f"\n{a.keys:,} keys x {a.value_bytes} B, {a.updates:,} updates, {a.rounds} rounds, ForSt file cache "
          f"{a.file_cache}, {os.cpu_count()} CPUs")
    print(f"{'side':>10}{'load w/s best':>15}{'(median)':>10}{'updates r/s best':>18}{'(median)':>10}"
          f"{'ratio best':>12}{'(median)':>10}{'decrypted/read':>16}{'calls/update':>14}{'files':>7}"
          f"{'threads':>9}")
    plain = results.get("plain") or next((r for s, r in results.items() if s.startswith("plain")), None)
    for s in sides:
        rs = results[s]
        lb, lm = max(x["load"] for x in rs), statistics.median(x["load"] for x in rs)
        ub, um = max(x["update"] for x in rs), statistics.median(x["update"] for x in rs)
        ratio = ratio_m = ""
        if plain and not s.startswith("plain"):
            ratio = f"{ub / max(x['update'] for x in plain):.2f}"
            ratio_m = f"{um / statistics.median(x['update'] for x in plain):.2f}"
        dec, dlv = sum(x["decrypted"] for x in rs), sum(x["delivered"] for x in rs)
        amp = f"{dec / dlv:.2f}" if dlv else "-"
        calls = sum(x["calls"] for x in rs) / (a.updates * len(rs))
        files = sum(x["opened"] for x in rs) // len(rs)
        threads = max(x["threads"] for x in rs)
        print(f"{s:>10}{lb:>15,.0f}{lm:>10,.0f}{ub:>18,.0f}{um:>10,.0f}{ratio:>12}{ratio_m:>10}{amp:>16}"
              f"{calls:>14.2f}{files:>7}{threads:>9}")


if __name__ == "__main__":
    sys.exit(main())

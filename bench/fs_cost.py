"""Target 1 of bench/overhead_bench.py: the CPU that ``enc+file://`` adds to ``file://``, per GiB,
held against AES-GCM's own, measured side by side in one run.

A JVM (bench/FsBench.java) writes and reads through Flink's FileSystem API with Flink's call sizes;
this process times AES-GCM alone (``cryptography``'s ``encrypt_into``/``decrypt_into`` on reused
buffers, one segment per call, the segment size of the files) between the JVM's rounds, so every
figure sees the same machine. Per run and call size: rounds rotate between ``file://``,
``enc+file://`` (and a baseline jar's ``enc+file://``) and AES; the ratio is the median over rounds
of (enc - plain CPU s/GiB, paired within a round) over the median AES CPU s/GiB.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import bench_jvm  # noqa: E402

ROLES = ("all", "caller", "workers", "jvm", "switches")


class FsJvm:
    """One FsBench JVM (the shim jar given, or this checkout's) over files in ``directory``, its
    Python hooks run by ``python`` (this interpreter's environment by default)."""

    def __init__(self, uri: str, seg: int, mib: int, directory: str, jar: str | None = None,
                 java_opts: str = "", python: str | None = None):
        self.classes = tempfile.mkdtemp(prefix="fs-bench-classes-")
        cp = bench_jvm.compile_bench("FsBench.java", self.classes, jar)
        os.makedirs(directory, exist_ok=True)
        self.dir, self.mib = directory, mib
        cmd, env = bench_jvm.launch(cp, "io.heliosdb.flink.crypto.FsBench",
                                    [python or sys.executable, uri, str(seg), str(mib), directory],
                                    os.path.join(self.classes, "tmp"), java_opts.split())
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError("bench/FsBench.java did not start")
        self.pid = int(line.split("pid=")[1])

    def run(self, op: str, scheme: str, call: int) -> dict[str, float]:
        """One round: wall seconds and CPU seconds per role, both per GiB."""
        self.p.stdin.write(f"{op} {scheme} {call}\n")
        self.p.stdin.flush()
        wall, *cpu = (float(x) for x in self.p.stdout.readline().split())
        per_gib = 1024 / self.mib
        return {"wall": wall * per_gib, **{k: v * per_gib for k, v in zip(ROLES, cpu)}}

    def close(self) -> None:
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
            self.p.wait(30)
        finally:
            shutil.rmtree(self.classes, ignore_errors=True)
            shutil.rmtree(self.dir, ignore_errors=True)


class AesAlone:
    """AES-256-GCM through ``cryptography`` alone: one segment per call into reused buffers (a ring
    of four, as a pipeline's), the floor any encrypting file system pays per byte."""

    def __init__(self, seg: int, mib: int):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.aead, self.nonce, self.seg = AESGCM(os.urandom(32)), os.urandom(12), seg
        self.calls = (mib << 20) // seg
        self.plain = [bytearray(os.urandom(seg)) for _ in range(4)]
        self.sealed = [bytearray(seg + 16) for _ in range(4)]
        for p, s in zip(self.plain, self.sealed):
            self.aead.encrypt_into(self.nonce, p, None, s)
        self.per_gib = (1 << 30) / (self.calls * seg)

    def run(self, op: str) -> dict[str, float]:
        fn = self.aead.encrypt_into if op == "write" else self.aead.decrypt_into
        src, dst = (self.plain, self.sealed) if op == "write" else (self.sealed, self.plain)
        t, c = time.perf_counter(), time.thread_time()
        for i in range(self.calls):
            fn(self.nonce, src[i & 3], None, dst[i & 3])
        cpu = (time.thread_time() - c) * self.per_gib
        return {"wall": (time.perf_counter() - t) * self.per_gib, "all": cpu}


def measure(jvms: dict[str, FsJvm], aes: AesAlone, op: str, call: int, rounds: int, warmup: int = 1,
            piped: bool = False) -> dict:
    """``rounds`` rounds (after ``warmup``) of ``op`` at ``call`` bytes per call, the order of the
    sides rotating from round to round (the position in a round biases a side on this kind of VM).
    Sides: ``plain`` (file://), ``enc`` (enc+file://), ``base`` (a baseline jar's enc+file://), ``aes``;
    with ``piped``, writes also ``piped`` (file:// through the shim's write pipeline, not sealed)."""
    sides = {"plain": lambda: jvms["main"].run(op, "plain", call),
             "enc": lambda: jvms["main"].run(op, "enc", call),
             "aes": lambda: aes.run(op)}
    if "base" in jvms:
        sides["base"] = lambda: jvms["base"].run(op, "enc", call)
    if piped and op == "write":
        sides["piped"] = lambda: jvms["main"].run(op, "piped", call)
    order = list(sides)
    out = {s: [] for s in order}
    for r in range(warmup + rounds):
        k = r % len(order)
        for s in order[k:] + order[:k]:
            res = sides[s]()
            if r >= warmup:
                out[s].append(res)
    return out


def summary(rows: dict) -> dict:
    """Medians and the target's ratios from one measure() result."""
    med = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in rows.items()}
    aes = med["aes"]["all"]
    out = {"med": med, "aes": aes}
    for side in ("enc", "base", "piped"):
        if side in rows:
            added = [e["all"] - p["all"] for e, p in zip(rows[side], rows["plain"])]
            out[side + "_added"] = statistics.median(added)
            out[side + "_ratio"] = out[side + "_added"] / aes
            out[side + "_time"] = statistics.median(e["wall"] / p["wall"] for e, p in zip(rows[side], rows["plain"]))
    return out

"""Java->Python bridge throughput vs the Python engine alone, side by side.

    .venv/bin/python bench/bridge_bench.py [--segment-size 1mb] [--mib 1024] [--rounds 7] [--chunk 65536]

Both sides encrypt (then decrypt) the same data at the same segment size, in memory, one caller
thread: the Python engine's EncryptingWriter/DecryptingReader, and the shim's
EncryptingOutputStream/DecryptingInputStream calling that engine through pemja (compiled against the
built jar; run scripts/build-shim.sh first; the JVM gets the MALLOC_* settings of docs/flink.md).
Rounds alternate between the two sides so both see the same machine load; the best round of each
side is compared (the median is printed too), and the CPU seconds each side spends per GiB (the Java
process's CPU includes its in-process Python workers).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from heliosdb_flink_crypto import DEFAULT_SEGMENT_SIZE, CheckpointCrypto  # noqa: E402
from heliosdb_flink_crypto.config import parse_size  # noqa: E402
from heliosdb_flink_crypto.kms.local import LocalKeyring  # noqa: E402

import bench_jvm  # noqa: E402


class Null(io.RawIOBase):
    def writable(self):
        return True

    def write(self, b):
        return len(b)


class PythonSide:
    def __init__(self, uri: str, seg: int, total: int, chunk: int, directory: str | None = None):
        self.c = CheckpointCrypto([uri], segment_size=seg)
        self.data, self.n = os.urandom(chunk), total // chunk
        self.path = os.path.join(directory, "python.enc") if directory else None
        buf = io.BytesIO()
        with self.c.writer(buf) as w:
            for _ in range(self.n):
                w.write(self.data)
        self.raw = buf.getvalue()
        self.out = bytearray(chunk)

    def encrypt(self) -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        sink = open(self.path, "wb") if self.path else Null()
        with self.c.writer(sink) as w:
            for _ in range(self.n):
                w.write(self.data)
        sink.close()
        return time.perf_counter() - t, time.process_time() - c

    def decrypt(self) -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        source = open(self.path, "rb") if self.path else io.BytesIO(self.raw)
        with self.c.reader(source, close_source=True) as rd:
            while rd.readinto(self.out):
                pass
        return time.perf_counter() - t, time.process_time() - c


class JavaSide:
    def __init__(self, uri: str, seg: int, mib: int, chunk: int, directory: str | None = None,
                 jar: str | None = None):
        self.classes = out = tempfile.mkdtemp(prefix="bridge-bench-classes-")
        cp = bench_jvm.compile_bench("BridgeBench.java", out, jar)
        cmd, env = bench_jvm.launch(cp, "io.heliosdb.flink.crypto.BridgeBench",
                                    [sys.executable, uri, str(seg), str(mib), str(chunk)]
                                    + ([directory] if directory else []), os.path.join(out, "tmp"))
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env)
        line = ""
        while not line.startswith("ready"):
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("the Java bench did not start")
        self.zero_copy = line.strip().endswith("true")

    def run(self, op: str) -> tuple[float, float]:
        self.p.stdin.write(op + "\n")
        self.p.stdin.flush()
        wall, cpu = self.p.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait(30)
        shutil.rmtree(self.classes, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segment-size", default=str(DEFAULT_SEGMENT_SIZE))
    p.add_argument("--mib", type=int, default=1024,
                   help="MiB per round, at most 1024 (a Java array); rounds much shorter than a second are mostly noise")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup-passes", type=int, default=15, help="at most this many warm-up passes of the JVM (an "
                   "encryption and a decryption): it warms up until a pass in which its JIT compilers ran under 10 ms")
    p.add_argument("--chunk", type=int, default=65536, help="bytes per write/read call (Flink writes 4-64 KiB)")
    p.add_argument("--baseline-jar", help="also run this (e.g. an older) shim jar, interleaved, and compare")
    p.add_argument("--dir", help="write and read real files in this folder (Flink's local file system on the "
                   "Java side) instead of memory")
    a = p.parse_args(argv)
    if not 0 < a.mib <= 1024:
        p.error("--mib must be 1 to 1024")
    seg = parse_size(a.segment_size)
    d = tempfile.mkdtemp(prefix="bridge-bench-")
    uri = f"local://{d}/keyring.json"
    LocalKeyring.create(uri)
    py = PythonSide(uri, seg, a.mib << 20, a.chunk, a.dir)
    jv = JavaSide(uri, seg, a.mib, a.chunk, a.dir)
    base = JavaSide(uri, seg, a.mib, a.chunk, a.dir and os.path.join(a.dir, "baseline"),
                    a.baseline_jar) if a.baseline_jar else None
    times = {(side, op): [] for side in ("py", "java", "plain", "base") for op in ("encrypt", "decrypt")}
    try:
        jvms = [j for j in (jv, base) if j]

        def one_pass():
            for j in jvms:
                j.run("encrypt")
                j.run("decrypt")
        passes, jit = bench_jvm.warm_up([j.p.pid for j in jvms], one_pass, 1, a.warmup_passes)
        for r in range(a.rounds + 1):  # round 0 warms up every side
            for op in ("encrypt", "decrypt"):
                runs = {"py": lambda: getattr(py, op)(), "java": lambda: jv.run(op)}
                if base:
                    runs["base"] = lambda: base.run(op)
                if a.dir:
                    runs["plain"] = lambda: jv.run("plain" if op == "encrypt" else "plain-read")
                order = list(runs)
                k = r % len(order)  # rotate who goes first: the position in a round biases it
                for side in order[k:] + order[:k]:
                    t = runs[side]()
                    if r:
                        times[side, op].append(t)
    finally:
        jv.close()
        if base:
            base.close()
        shutil.rmtree(d, ignore_errors=True)
    print(f"segment {seg} B, {a.mib} MiB per round, {a.chunk} B per call, {a.rounds} rounds, one caller thread, "
          f"{'files in ' + a.dir if a.dir else 'in memory'}, zero-copy={jv.zero_copy}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; JVM warmed up in {passes} passes "
          f"(its JIT compilers ran {jit * 1000:.0f} ms in the last)")
    print(f"{'':9}{'python engine':>15}{'java->python':>15}{'ratio':>7}{'ratio (median)':>16}"
          f"{'CPU s/GiB py':>14}{'java':>7}")
    mib = a.mib
    for op in ("encrypt", "decrypt"):
        wall = {s: [w for w, _ in times[s, op]] for s in ("py", "java")}
        cpu = {s: statistics.median(c for _, c in times[s, op]) * 1024 / mib for s in ("py", "java")}
        x, y = mib / min(wall["py"]), mib / min(wall["java"])
        xm, ym = mib / statistics.median(wall["py"]), mib / statistics.median(wall["java"])
        print(f"{op:9}{x:>9.0f} MiB/s{y:>9.0f} MiB/s{y / x:>7.0%}{ym / xm:>16.0%}{cpu['py']:>14.2f}{cpu['java']:>7.2f}")
    if base:
        print(f"{'':9}{'baseline jar':>15}{'this jar':>15}{'time this/baseline':>20}{'(median)':>10}")
        for op in ("encrypt", "decrypt"):
            b_, j_ = ([w for w, _ in times[s, op]] for s in ("base", "java"))
            print(f"{op:9}{mib / min(b_):>9.0f} MiB/s{mib / min(j_):>9.0f} MiB/s{min(j_) / min(b_):>20.2f}"
                  f"{statistics.median(j_) / statistics.median(b_):>10.2f}")
    if a.dir:  # the shim against Flink's own local file system, same writes: what a checkpoint pays
        # CPU s/GiB: the whole JVM's CPU time (caller, Python workers, kernel) per GiB, median; what
        # encryption adds to a checkpoint whenever no core is idle to absorb it
        print(f"{'':9}{'file:// (Java)':>15}{'enc+file://':>15}{'time enc/plain':>16}{'(median)':>10}"
              f"{'CPU s/GiB plain':>17}{'enc':>6}")
        for op in ("encrypt", "decrypt"):
            p_, j_ = ([w for w, _ in times[s, op]] for s in ("plain", "java"))
            pc, jc = (statistics.median(c for _, c in times[s, op]) * 1024 / mib for s in ("plain", "java"))
            print(f"{op:9}{mib / min(p_):>9.0f} MiB/s{mib / min(j_):>9.0f} MiB/s{min(j_) / min(p_):>16.2f}"
                  f"{statistics.median(j_) / statistics.median(p_):>10.2f}{pc:>17.2f}{jc:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

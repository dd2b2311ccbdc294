"""The benchmarks' own JVMs: a ``bench/*.java`` program compiled against the shim jar and PyFlink's
Flink jars, and the environment and options it starts with: the ``MALLOC_*`` settings the job
processes get (docs/flink.md) and its scratch files (``java.io.tmpdir``, Python's ``TMPDIR``) in a
folder of the run, so a killed run leaves nothing in /tmp."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from heliosdb_flink_crypto.flink import jar_path  # noqa: E402
from heliosdb_flink_crypto.flink.local import MALLOC_ENV  # noqa: E402


def classpath(jar: str | None = None) -> list[str]:
    """The shim jar (``jar``, or this checkout's) and PyFlink's Flink jars."""
    import pyflink
    base = os.path.dirname(pyflink.__file__)
    return [jar or jar_path()] + sorted(glob.glob(os.path.join(base, "lib", "*.jar"))) + \
        glob.glob(os.path.join(base, "opt", "flink-python*.jar"))


def compile_bench(source: str, out: str, jar: str | None = None) -> list[str]:
    """Compiles ``bench/<source>`` into ``out``; the class path to run it with."""
    cp = classpath(jar)
    subprocess.run(["javac", "-nowarn", "-d", out, "-cp", os.pathsep.join(cp), os.path.join(HERE, source)],
                   check=True)
    return [out] + cp


def launch(cp: list[str], main: str, args: list[str], scratch: str, options=()) -> tuple[list[str], dict]:
    """The command line running ``main`` and its environment: the job processes' ``MALLOC_*``
    settings, its temporary files (the JVM's and its in-process Python's) in ``scratch`` (made here)."""
    os.makedirs(scratch, exist_ok=True)
    cmd = ["java", *options, f"-Djava.io.tmpdir={scratch}", "-cp", os.pathsep.join(cp), main, *args]
    return cmd, dict(os.environ, **MALLOC_ENV, TMPDIR=scratch)


def compiler_cpu(pid: int) -> float:
    """CPU seconds that the JIT compiler threads (C1, C2) of JVM ``pid`` have run so far, from the
    kernel's per-thread run time (``/proc/<pid>/task/*/schedstat``)."""
    ns = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(os.path.join(task, "comm")) as f:
                if not f.read().startswith(("C1 ", "C2 ")):
                    continue
            with open(os.path.join(task, "schedstat")) as f:
                ns += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended (the JVM stops idle compiler threads)
            pass
    return ns / 1e9


def warm_up(pids: list[int], one_pass, passes: int, most: int, quiet: float = 0.01) -> tuple[int, float]:
    """Runs ``one_pass()`` ``passes`` times, then again until a pass in which the JIT compilers of the
    JVMs ``pids`` ran under ``quiet`` CPU seconds, ``most`` passes at most. A TaskManager runs for hours
    with its hot paths compiled; a measured round should neither pay for the compiler threads (on 2
    cores they take the worker's core) nor run C1's profiling code, which the shim's per-batch methods
    (256-512 calls per 512 MiB) leave only after 10-20 rounds. Returns the passes run and the compilers' CPU
    seconds in the last one."""
    n, jit = 0, 0.0
    while n < most and (n < passes or jit >= quiet):
        before = sum(compiler_cpu(p) for p in pids)
        one_pass()
        jit = max(0.0, sum(compiler_cpu(p) for p in pids) - before)
        n += 1
    return n, jit

"""Where the CPU of an ``enc+file://`` round goes, measured: ``perf`` samples of the JVM (every thread,
kernel included, call stacks through the JIT's perf map), each sample put in one category by its
thread and its stack. Categories (first match wins, leaf to root):

* ``seal/open (AES-GCM)``: OpenSSL's AES-GCM code
* ``Python call``: CPython, pemja, ctypes around the cipher (argument conversion, dispatch, slicing)
* ``file write/read (kernel)``: the inner file's write/read system calls (page cache copy, tmpfs pages)
* ``thread hand-offs``: futex waits and wake-ups, the scheduler, park/unpark, monitor waits
* ``copy in/out (caller)``: the caller's own copying between Flink's ``byte[]`` and native buffers
* ``JVM (JIT, GC)``: the JVM's own threads
* ``other``
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

CATEGORIES = ("seal/open (AES-GCM)", "Python call", "file write/read (kernel)", "thread hand-offs",
              "copy in/out (caller)", "JVM (JIT, GC)", "other")

AES = re.compile(r"aes|gcm|ghash", re.I)
PYTHON = re.compile(r"libpython|pemja|_ctypes|libffi|_rust\.abi3|PythonInterpreter")
FILE_IO = re.compile(r"ksys_(p)?(write|read)|vfs_(write|read)|__x64_sys_(p)?(write|read)|filemap_read|"
                     r"shmem_file_(write|read)")
# a write round deletes its file first, outside the timed part but inside the recording: left out
DELETE = re.compile(r"do_unlinkat|shmem_undo_range|truncate_inode|shmem_evict_inode|do_sys_truncate")
HANDOFF = re.compile(r"futex|schedule|try_to_wake_up|Unsafe\.(un)?park|LockSupport|Object\.(wait|notify)|"
                     r"ObjectMonitor|Parker::|pthread_cond")


def available() -> bool:
    return shutil.which("perf") is not None and shutil.which("jcmd") is not None


def category(thread: str, frames: list[str]) -> str | None:
    """The category of one sample, or None for a file deletion (not part of a timed round)."""
    if thread.startswith(("C1 ", "C2 ", "G1", "GC ", "VM ")):
        return "JVM (JIT, GC)"
    stack = "\n".join(frames)
    if DELETE.search(stack):
        return None
    if frames and AES.search(frames[0].split(" (")[0]):
        return "seal/open (AES-GCM)"
    if FILE_IO.search(stack):
        return "file write/read (kernel)"
    if HANDOFF.search(stack):
        return "thread hand-offs"
    if PYTHON.search(stack):
        return "Python call"
    if thread == "java":
        return "copy in/out (caller)"
    return "other"


def record(pid: int, work, hz: int = 999) -> tuple[collections.Counter, int]:
    """Samples of process ``pid`` while ``work()`` runs: category -> count, and the sample count."""
    out = tempfile.mkdtemp(prefix="heliosdb-perf-")
    data = os.path.join(out, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(hz), "-g", "-p", str(pid), "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # perf attaches to every thread
        work()
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
    # the JIT's symbols, for Java frames (JDK 17+: written to /tmp/perf-<pid>.map)
    subprocess.run(["jcmd", str(pid), "Compiler.perfmap"], capture_output=True)
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"], capture_output=True,
                          text=True).stdout
    shutil.rmtree(out, ignore_errors=True)
    counts: collections.Counter = collections.Counter()
    for sample in text.split("\n\n"):
        lines = [ln.strip() for ln in sample.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        m = re.match(r"(.+?)\s+\d+\s*$", lines[0])
        c = m and category(m.group(1).strip(), lines[1:])
        if c:
            counts[c] += 1
    return counts, sum(counts.values())


def _debug(data: str, want: str) -> None:  # pragma: no cover - a developer's look at one category
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"], capture_output=True,
                          text=True).stdout
    leaves: collections.Counter = collections.Counter()
    for sample in text.split("\n\n"):
        lines = [ln.strip() for ln in sample.strip().splitlines() if ln.strip()]
        m = lines and re.match(r"(.+?)\s+\d+\s*$", lines[0])
        if m and category(m.group(1).strip(), lines[1:]) == want:
            leaves[" <- ".join(ln.split(" ", 1)[1][:60] for ln in lines[1:4])] += 1
    for k, v in leaves.most_common(25):
        print(v, k)

"""Helpers shared by the Flink end-to-end tests, the demo and the benchmark.

* :func:`run_job` runs ``jobs/counter_job.py`` as its own ``python`` process (a PyFlink local
  MiniCluster, one JVM per run) and returns its result.
* :func:`read_outputs` / :func:`assert_continued` check that a restored run continued every key's
  state exactly where the checkpoint or savepoint left it.
* :func:`files_with` greps raw bytes of every file under a directory.
"""
from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from heliosdb_flink_crypto.flink.local import MALLOC_ENV

HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "jobs", "counter_job.py")
MARKER = b"HELIOS-MARKER"
INFLIGHT = b"HELIOS-INFLIGHT"
MAGIC = b"HFCE"


@dataclass
class JobRun:
    result: dict
    out_dir: str
    log: str
    args: list = field(default_factory=list)
    flink_log: str = ""  # the folder of Flink's own logs (the MiniCluster's JobManager and TaskManager)

    @property
    def ok(self) -> bool:
        return self.result.get("status") not in ("ERROR", None)

    def log_text(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()

    def failure_text(self) -> str:
        """The job's error, its output and Flink's logs. ForSt restores files in parallel and cancels
        the other transfers when one fails, so the error Flink reports can be one of those, e.g.
        "stream is closed", while the TaskManager log holds the failure of the file at fault."""
        text = [self.result.get("error", ""), self.log_text()]
        for p in all_files(self.flink_log) if self.flink_log else []:
            with open(p, errors="replace") as f:
                text.append(f.read())
        return "\n".join(text)

    def describe(self) -> str:
        return f"args={self.args}\nresult={json.dumps(self.result, indent=1)}\n--- log tail ---\n" + \
            self.log_text()[-6000:]


def run_job(work: str, name: str, checkpoint_dir: str, *, mode: str = "run", restore: str = "",
            savepoint_dir: str = "", conf: dict | None = None, timeout: float = 300,
            env: dict | None = None, python: str | None = None, job: str | None = None, **opts) -> JobRun:
    """Run the counter job (``job``, default :data:`JOB`) with ``python`` (default: this interpreter;
    another venv's for another PyFlink); ``opts`` become ``--opt value`` flags (True -> bare flag)."""
    python, job = python or sys.executable, job or JOB
    # Flink's and PyFlink's scratch folders (the MiniCluster's working directory with RocksDB's and
    # ForSt's local state, blobs, Python archives) go with the work folder, also when the run is killed
    scratch = os.path.join(work, name + "-tmp")
    os.makedirs(scratch, exist_ok=True)
    conf = {"io.tmp.dirs": scratch, **(conf or {})}
    out_dir = os.path.join(work, name + "-out")
    result_path = os.path.join(work, name + "-result.json")
    log = os.path.join(work, name + ".log")
    args = [python, job, "--checkpoint-dir", checkpoint_dir, "--mode", mode,
            "--out-dir", out_dir, "--result", result_path, "--timeout", str(timeout - 30)]
    if restore:
        args += ["--restore", restore]
    if savepoint_dir:
        args += ["--savepoint-dir", savepoint_dir]
    for k, v in conf.items():
        args += ["--conf", f"{k}={v}"]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            args.append(flag)
        elif v not in (False, None):
            args += [flag, str(v)]
    # the job's processes (PyFlink's Python process, the JVM it starts) run with the MALLOC_* settings
    # docs/flink.md recommends for every Flink process; the caller's environment and ``env`` win
    penv = {**MALLOC_ENV, **os.environ, "TMPDIR": scratch, **(env or {})}
    penv.setdefault("FLINK_LOG_DIR", os.path.join(work, name + "-flink-log"))  # not PyFlink's shared log/
    penv["PATH"] = os.path.dirname(python) + os.pathsep + penv.get("PATH", "")
    with open(log, "wb") as lf:
        # its own process group: on a timeout the job's JVM and Python workers go with it
        proc = subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT, env=penv, cwd=work,
                                start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:  # nothing of the run outlives it (a timeout, an interrupt, a leftover worker)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = {"status": "ERROR", "error": "the job process wrote no result (see its log)"}
    return JobRun(result, out_dir, log, args[1:], penv["FLINK_LOG_DIR"])


def read_outputs(out_dir: str) -> dict[int, list[tuple[int, str]]]:
    """key -> [(count, previous marker), ...] in the order the job emitted them."""
    per_key: dict[int, list] = collections.defaultdict(list)
    if not os.path.isdir(out_dir):
        return per_key
    for name in sorted(os.listdir(out_dir)):
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                key, n, prev = json.loads(line)
                per_key[key].append((n, prev))
    return per_key


def assert_continued(out_dir: str, records: int, keys: int) -> dict[int, int]:
    """A restored run continued every key exactly: the first count of each key is one more than
    the restored count, the previous marker it saw names exactly that count (the marker state was
    restored too), counts then rise by one to ``records / keys`` (nothing lost, nothing twice),
    and the restored state is not empty. Returns key -> restored count."""
    out = read_outputs(out_dir)
    per_key_total = records // keys
    restored = {}
    for k in range(keys):
        seq = out.get(k)
        if not seq:  # every record of this key was before the checkpoint
            restored[k] = per_key_total
            continue
        first, prev = seq[0]
        counts = [n for n, _ in seq]
        assert counts == list(range(first, per_key_total + 1)), \
            f"key {k}: counts do not continue one by one to {per_key_total}: {counts[:5]}...{counts[-3:]}"
        c = first - 1
        expect_prev = f"HELIOS-MARKER-{k}-{c}-" if c else ""
        assert prev.startswith(expect_prev) and (c or prev == ""), \
            f"key {k}: restored marker {prev!r} does not match the restored count {c}"
        restored[k] = c
    assert sum(restored.values()) > 0, "the restored state was empty: the job started from scratch"
    assert sum(restored.values()) < records, "nothing was left to process after the restore"
    return restored


def all_files(root: str) -> list[str]:
    out = []
    for d, _, names in os.walk(root):
        out.extend(os.path.join(d, n) for n in names)
    return sorted(out)


def files_with(root: str, needles=(MARKER, INFLIGHT)) -> list[tuple[str, bytes]]:
    """(file, needle) for every file under ``root`` whose raw bytes contain a needle."""
    hits = []
    for p in all_files(root):
        with open(p, "rb") as f:
            data = f.read()
        hits.extend((p, n) for n in needles if n in data)
    return hits


def not_encrypted(root: str) -> list[str]:
    """Non-empty files under ``root`` that do not start with the encrypted format's magic."""
    bad = []
    for p in all_files(root):
        with open(p, "rb") as f:
            head = f.read(4)
        if head and head != MAGIC:
            bad.append(p)
    return bad


def cli(*args: str, env: dict | None = None, timeout: float = 120, python: str | None = None
        ) -> subprocess.CompletedProcess:
    """Run ``heliosdb-flink-crypto`` (the installed console script of this venv, or of ``python``'s)."""
    exe = os.path.join(os.path.dirname(python or sys.executable), "heliosdb-flink-crypto")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def local_path(uri: str) -> str:
    """file:///x, enc+file:///x, file:/x -> /x"""
    if "://" in uri:
        return uri.split("://", 1)[1]
    return uri.split(":", 1)[1] if uri.startswith(("file:", "enc+file:")) else uri


def flip_byte(path: str, offset: int | None = None) -> int:
    """XOR one byte of ``path`` (by default in the middle); returns the offset."""
    size = os.path.getsize(path)
    offset = size // 2 if offset is None else offset
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))
    return offset


@contextlib.contextmanager
def flipped(path: str):
    """One byte of ``path`` flipped for the block, flipped back after it (the file is whole again)."""
    offset = flip_byte(path)
    try:
        yield path
    finally:
        flip_byte(path, offset)


def checkpoint_state_file(chk_dir: str) -> str:
    """The largest state file a restore from the checkpoint at ``chk_dir`` reads: its own files and,
    for an incremental checkpoint, the job's shared/ files (Flink keeps only the referenced ones)."""
    files = [p for p in all_files(chk_dir) if os.path.basename(p) != "_metadata"]
    files += all_files(os.path.join(os.path.dirname(chk_dir), "shared"))
    assert files, f"{chk_dir}: all its state is inline in _metadata"
    return max(files, key=os.path.getsize)


def causes(text: str) -> str:
    """An error text (a log, or Flink's REST exceptions as JSON) without its stack frames: the
    exceptions and their "Caused by" chain, for a failing assertion to show."""
    lines = text.replace("\\n", "\n").replace("\\t", "\t").splitlines()
    return "\n".join(line for line in lines
                     if not re.match(r"\s+(at |\.\.\. \d+ more)", line))


def wait_for(pred, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s")


def decrypt_all(root: str, kms_uri: str) -> dict[str, bytes]:
    """Every non-empty file under ``root`` decrypted and authenticated with the engine (raises on
    the first file that does not open)."""
    from heliosdb_flink_crypto import CheckpointCrypto
    crypto = CheckpointCrypto([kms_uri])
    out = {}
    try:
        for p in all_files(root):
            if os.path.getsize(p) == 0:
                continue
            with open(p, "rb") as f, crypto.reader(f, p) as r:
                out[p] = r.read()
    finally:
        crypto.close()
    return out


def retained_checkpoint(cluster, cp_root, job_id: str) -> str:
    """The checkpoint a cancelled job retained: the newest chk-N holding a _metadata file (Flink keeps
    one), once the REST API reports the same one (its checkpoint statistics are cached for a few
    seconds, so right after the cancel it can still name a subsumed, deleted checkpoint)."""
    found = glob.glob(os.path.join(str(cp_root), job_id, "chk-*", "_metadata"))
    assert found, f"no retained checkpoint of {job_id} under {cp_root}"
    newest = max((os.path.dirname(p) for p in found), key=lambda d: int(d.rsplit("-", 1)[1]))
    wait_for(lambda: local_path(cluster.get(f"/jobs/{job_id}/checkpoints")["latest"]["completed"]
                                ["external_path"]) == newest, 20, f"REST naming {newest} as retained")
    return "enc+file://" + newest

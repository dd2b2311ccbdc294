"""Async state (State V2) through ``enc+file://``: a PyFlink SQL aggregation with
``table.exec.async-state.enabled`` on ForSt, whose live SST files then sit in the checkpoint folder's
``shared/op_*/db/`` and are written and read by ForSt's own threads through the shim, in PyFlink's
local MiniCluster (``jobs/sql_agg_job.py``):

* every file of the checkpoint folder, the live database's included, is ciphertext;
* restoring from the retained checkpoint (canceled mid-stream) finishes with every key's count and sum
  exactly those of the whole sequence: no row lost or counted twice;
* a live SST file with one byte flipped fails that restore, naming the file.
"""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pytest

import harness as h

pytestmark = pytest.mark.slow

JOB = os.path.join(h.HERE, "jobs", "sql_agg_job.py")
ROWS, KEYS = 200_000, 100


def _run(work: str, name: str, checkpoint_dir: str, kms_uri: str, **opts) -> tuple[dict, str]:
    """One run of the SQL job; its result and its output (stdout and stderr, then Flink's log)."""
    result, log = os.path.join(work, name + ".json"), os.path.join(work, name + ".log")
    args = [sys.executable, JOB, "--checkpoint-dir", checkpoint_dir, "--kms-uri", kms_uri, "--result", result,
            "--rows", str(ROWS), "--keys", str(KEYS)]
    for k, v in opts.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    # Flink's own log (the MiniCluster's TaskManager) into the work folder, not PyFlink's shared log/
    flink_log = os.path.join(work, name + "-flink-log")
    env = {**os.environ, **h.MALLOC_ENV, "TMPDIR": work, "FLINK_LOG_DIR": flink_log}
    with open(log, "wb") as out:
        subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=300, check=False, cwd=work)
    text = ""
    for path in [log] + sorted(glob.glob(os.path.join(flink_log, "*"))):
        with open(path, errors="replace") as f:
            text += f.read()
    assert os.path.exists(result), f"{name}: no result\n{text[-6000:]}"
    with open(result) as f:
        return json.load(f), text


def _last_values(text: str) -> dict[int, tuple[int, int]]:
    """Each key's last printed (count, sum)."""
    last = {}
    for m in re.finditer(r"^agg> \+[IU]\[(\d+), (\d+), (\d+)\]$", text, re.M):
        last[int(m[1])] = (int(m[2]), int(m[3]))
    return last


@pytest.fixture(scope="module")
def run(tmp_path_factory, keyring):
    """A run canceled after checkpoint 3, a restore from it, then the same restore with one live SST
    file tampered with (in that order: the tamper must not touch the first restore)."""
    work = str(tmp_path_factory.mktemp("async-state"))
    root = os.path.join(work, "ckpt")
    first, _ = _run(work, "first", f"enc+file://{root}", keyring, stop_at=3)
    assert first["status"] == "CANCELED", first
    checkpoint = first["checkpoint"]
    files = h.all_files(root)
    restore, restored_out = _run(work, "restore", f"enc+file://{work}/restored", keyring,
                                 restore=f"enc+file://{checkpoint}")
    live = [p for p in files if re.search(r"/shared/op_[^/]*Async[^/]*/db/[^/]+$", p)]
    assert live, f"no live database files of an async operator under {root}: {files}"
    sst = max(live, key=os.path.getsize)
    h.flip_byte(sst)
    tampered, tampered_out = _run(work, "tampered", f"enc+file://{work}/tampered", keyring,
                                  restore=f"enc+file://{checkpoint}")
    return {"root": root, "files": files, "live": live, "restore": restore, "restored_out": restored_out,
            "sst": sst, "tampered": tampered, "tampered_out": tampered_out}


def test_async_state_files_are_ciphertext(run):
    assert run["live"], "the async operator's live SST files are in the checkpoint folder"
    plain = [p for p in run["files"] if open(p, "rb").read(4) != h.MAGIC]
    assert plain == [], f"not encrypted: {plain}"


def test_async_state_restore_continues_exactly(run):
    assert run["restore"]["status"] == "FINISHED", run["restored_out"][-6000:]
    expected = {k: (sum(1 for i in range(1, ROWS + 1) if i % KEYS == k), sum(i for i in range(1, ROWS + 1) if i % KEYS == k))
                for k in range(KEYS)}
    assert _last_values(run["restored_out"]) == expected
    printed = len(re.findall(r"^agg> \+U", run["restored_out"], re.M))
    assert printed < ROWS - KEYS, f"the restored run started from the checkpoint, not from the first row ({printed} updates)"


def test_async_state_tampered_live_sst_fails_naming_it(run):
    """ForSt copies the checkpoint's files into the new job's folder in parallel and closes the other
    copies when one fails, so the job's error may be another copy's "stream is closed"
    (docs/flink.md, ForSt); Flink's log names the file at fault."""
    assert run["tampered"]["status"] == "ERROR", run["tampered"]
    faults = re.findall(r"AuthenticationError: (\S+): authentication failed", run["tampered_out"])
    assert faults and all(f.endswith("/" + os.path.basename(run["sst"])) for f in faults), \
        (faults, run["tampered_out"][-6000:])
    assert not glob.glob(os.path.join(os.path.dirname(run["root"]), "tampered", "*", "chk-*", "_metadata")), \
        "no checkpoint completed from tampered state"

"""Async state (State V2) through the encrypted schemes: a PyFlink SQL aggregation with
``table.exec.async-state.enabled`` on ForSt, whose live SST files then sit in the checkpoint folder's
``shared/op_*/db/`` and are written and read by ForSt's own threads through the shim, in PyFlink's
local MiniCluster (``jobs/sql_agg_job.py``), on ``enc+file://`` and on ``enc+s3://`` (moto's S3
behind Flink's own S3 plugin):

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
import s3_plugin

pytestmark = pytest.mark.slow

JOB = os.path.join(h.HERE, "jobs", "sql_agg_job.py")
ROWS, KEYS = 200_000, 100
LIVE = re.compile(r"/shared/op_[^/]*Async[^/]*/db/[^/]+$")


class Files:
    """The checkpoint folder on the local disk: file name -> bytes."""

    def __init__(self, work: str):
        self.root = os.path.join(work, "ckpt")
        self.uri = f"enc+file://{self.root}"

    def objects(self) -> dict[str, bytes]:
        out = {}
        for p in h.all_files(self.root):
            with open(p, "rb") as f:
                out[p] = f.read()
        return out

    def write(self, name: str, data: bytes) -> None:
        with open(name, "wb") as f:
            f.write(data)


class Bucket:
    """The checkpoint folder in moto's S3: object key -> bytes."""

    def __init__(self, endpoint: str):
        self.endpoint, self.client = endpoint, s3_plugin.s3_client(endpoint)
        self.uri = "enc+s3://bucket/async-state"

    def objects(self) -> dict[str, bytes]:
        return {k: self.client.get_object(Bucket="bucket", Key=k)["Body"].read()
                for k in s3_plugin.list_objects(self.endpoint, self.uri)}

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket="bucket", Key=name, Body=data)


def _run(work: str, name: str, checkpoint_dir: str, kms_uri: str, **opts) -> tuple[dict, str]:
    """One run of the SQL job; its result and its output (stdout and stderr, then Flink's log)."""
    result, log = os.path.join(work, name + ".json"), os.path.join(work, name + ".log")
    args = [sys.executable, JOB, "--checkpoint-dir", checkpoint_dir, "--kms-uri", kms_uri, "--result", result,
            "--rows", str(ROWS), "--keys", str(KEYS)]
    for k, v in opts.items():
        if v:
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


@pytest.fixture(scope="module", params=["file", "s3"])
def run(request, tmp_path_factory, keyring):
    """A run canceled after checkpoint 3, a restore from it, then the same restore with one live SST
    file tampered with (in that order: the tamper must not touch the first restore)."""
    work = str(tmp_path_factory.mktemp(f"async-state-{request.param}"))
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else ""
    store = Bucket(endpoint) if endpoint else Files(work)
    sibling = f"{store.uri}-" if endpoint else f"enc+file://{work}/"
    first, _ = _run(work, "first", store.uri, keyring, stop_at=3, s3_endpoint=endpoint)
    assert first["status"] == "CANCELED", first
    objects = store.objects()
    restore, restored_out = _run(work, "restore", sibling + "restored", keyring, restore=first["checkpoint"],
                                 s3_endpoint=endpoint)
    live = [n for n in objects if LIVE.search(n)]
    assert live, f"no live database files of an async operator under {store.uri}: {sorted(objects)}"
    sst = max(live, key=lambda n: len(objects[n]))
    data = bytearray(objects[sst])
    data[len(data) // 2] ^= 0x01
    store.write(sst, bytes(data))
    tampered, tampered_out = _run(work, "tampered", sibling + "tampered", keyring, restore=first["checkpoint"],
                                  s3_endpoint=endpoint)
    return {"objects": objects, "live": live, "restore": restore, "restored_out": restored_out, "sst": sst,
            "tampered": tampered, "tampered_out": tampered_out}


def test_async_state_files_are_ciphertext(run):
    assert run["live"], "the async operator's live SST files are in the checkpoint folder"
    plain = [n for n, data in run["objects"].items() if data[:4] != h.MAGIC]
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

"""Async state (State V2) through the encrypted schemes: a PyFlink SQL aggregation with
``table.exec.async-state.enabled`` on ForSt, whose live SST files then sit in the checkpoint folder's
``shared/op_*/db/`` and are written and read by ForSt's own threads through the shim, in PyFlink's
local MiniCluster (``jobs/sql_agg_job.py``), on ``enc+file://`` and on ``enc+s3://`` (moto's S3
behind Flink's own S3 plugin), and with ForSt's primary directory apart from the checkpoint directory
(``state.backend.forst.primary-dir``, its own ``enc+file://`` folder: the live files are there while
the job runs, and each checkpoint copies them into its ``chk-<n>/``):

* every file of the checkpoint folder, the live database's included, is ciphertext;
* restoring from the retained checkpoint (canceled mid-stream) finishes with every key's count and sum
  exactly those of the whole sequence: no row lost or counted twice;
* a live SST file (with a primary directory apart: the checkpoint's copy of one) with one byte flipped
  fails that restore, naming the file.
"""
from __future__ import annotations

import os
import re

import pytest

import harness as h
import stores

pytestmark = pytest.mark.slow

JOB = os.path.join(h.HERE, "jobs", "sql_agg_job.py")
ROWS, KEYS = 200_000, 100
LIVE = re.compile(r"(^|/)op_[^/]*Async[^/]*/db/[^/]+$")


def _last_values(text: str) -> dict[int, tuple[int, int]]:
    """Each key's last printed (count, sum)."""
    return {int(m[1]): (int(m[2]), int(m[3]))
            for m in re.finditer(r"^agg> \+[IU]\[(\d+), (\d+), (\d+)\]$", text, re.M)}


@pytest.fixture(scope="module", params=["file", "s3", "file-primary"])
def run(request, tmp_path_factory, crypto_conf):
    """A run canceled after checkpoint 3, a restore from it, then the same restore with one live SST
    file tampered with (in that order: the tamper must not touch the first restore). ``file-primary``:
    ForSt's primary directory apart from the checkpoint directory (its own enc+file:// folder)."""
    tmp = tmp_path_factory.mktemp(f"async-state-{request.param}")
    conf = dict(crypto_conf)
    primary = request.param == "file-primary"
    if primary:
        conf["state.backend.forst.primary-dir"] = f"enc+file://{tmp}/primary"
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        conf.update({"s3.endpoint": endpoint, "s3.path.style.access": "true",
                     "s3.access-key": "testing", "s3.secret-key": "testing"})
        store = stores.Bucket(endpoint, "async-state")
    else:
        store = stores.Files(tmp)
    job = dict(job=JOB, conf=conf, rows=ROWS, keys=KEYS)
    snapshot = dict(snapshot=f"{tmp}/primary={tmp}/primary-snapshot") if primary else {}
    first = h.run_job(str(tmp), "first", store.uri(""), mode="cancel", stop_after=3, **job, **snapshot)
    assert first.result.get("status") == "CANCELED", first.describe()
    objects = store.objects()
    restore = h.run_job(str(tmp), "restore", store.sibling("restored"), restore=first.result["checkpoint"], **job)
    if primary:  # the live database as it was before the cancel; the checkpoint holds copies of its files
        objects |= {"primary/" + n: data for n, data in stores.Files(tmp, "primary-snapshot").objects().items()}
    live = [n for n in objects if LIVE.search(n)]
    assert live, f"no live database files of an async operator under {store.uri('')}: {sorted(objects)}"
    restored_from = [n for n in objects if "/chk-" in n and not n.endswith("/_metadata")] if primary else live
    sst = max(restored_from, key=lambda n: len(objects[n]))
    data = bytearray(objects[sst])
    data[len(data) // 2] ^= 0x01
    store.write(sst, bytes(data))
    tampered = h.run_job(str(tmp), "tampered", store.sibling("tampered"), restore=first.result["checkpoint"], **job)
    return {"objects": objects, "live": live, "restore": restore, "sst": sst, "tampered": tampered}


def test_async_state_files_are_ciphertext(run):
    assert run["live"], "the async operator's live SST files are in the checkpoint folder"
    plain = [n for n, data in run["objects"].items() if data[:4] != h.MAGIC]
    assert plain == [], f"not encrypted: {plain}"


def test_async_state_restore_continues_exactly(run):
    restore = run["restore"]
    assert restore.result.get("status") == "FINISHED", restore.describe()
    expected = {k: [0, 0] for k in range(KEYS)}
    for i in range(1, ROWS + 1):
        expected[i % KEYS][0] += 1
        expected[i % KEYS][1] += i
    assert _last_values(restore.log_text()) == {k: tuple(v) for k, v in expected.items()}
    printed = len(re.findall(r"^agg> \+U", restore.log_text(), re.M))
    assert printed < ROWS - KEYS, f"the restored run started from the checkpoint, not from the first row ({printed} updates)"


def test_async_state_tampered_live_sst_fails_naming_it(run):
    """ForSt copies the checkpoint's files into the new job's folder in parallel and closes the other
    copies when one fails, so the job's error may be another copy's "stream is closed"
    (docs/flink.md, ForSt); Flink's log names the file at fault."""
    tampered = run["tampered"]
    assert tampered.result.get("status") == "ERROR", tampered.describe()
    faults = re.findall(r"AuthenticationError: (\S+): authentication failed", tampered.failure_text())
    assert faults and all(f.endswith("/" + os.path.basename(run["sst"])) for f in faults), \
        (faults, tampered.describe())

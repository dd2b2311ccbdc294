"""Failure paths with a real Flink job: tampering and an unreachable KMS fail closed.

* One flipped byte in a state file or in ``_metadata`` of an encrypted savepoint makes the restore
  fail, with an error naming that file; the job processes no record (never silently wrong state).
* With the keyring gone while the job runs (and a DEK cache that must ask the KMS for every file),
  checkpoints fail, none completes, and nothing plaintext is left under the checkpoint directory.
"""
from __future__ import annotations

import os
import shutil

import pytest

import harness as h
from cluster import free_port

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128


@pytest.fixture(scope="module")
def savepoint(tmp_path_factory, crypto_conf):
    tmp = tmp_path_factory.mktemp("tamper")
    run = h.run_job(str(tmp), "first", f"enc+file://{tmp}/checkpoints", mode="savepoint-cancel",
                    savepoint_dir=f"enc+file://{tmp}/savepoints", conf=crypto_conf, records=RECORDS,
                    keys=KEYS, pad=PAD, throttle_ms=2, stop_after=3, local_crypto=True)
    assert run.ok, run.describe()
    return tmp, h.local_path(run.result["savepoint"])


def _restore_tampered(tmp, savepoint_dir, name, pick, crypto_conf):
    # savepoints are relocatable as a folder (its name is part of _metadata's binding): the copy restores too
    copy = os.path.join(str(tmp), name, os.path.basename(savepoint_dir))
    shutil.copytree(savepoint_dir, copy)
    files = [p for p in h.all_files(copy) if pick(os.path.basename(p))]
    assert len(files) == 1, files
    h.flip_byte(files[0])
    run = h.run_job(str(tmp), name + "-restore", f"enc+file://{tmp}/{name}-checkpoints",
                    restore=f"enc+file://{copy}", conf=crypto_conf, records=RECORDS, keys=KEYS, pad=PAD,
                    local_crypto=True, timeout=180)
    return files[0], run


def test_untouched_copy_of_the_savepoint_restores(savepoint, crypto_conf):
    """The control for the two tamper tests: the same copy, unmodified, restores and continues."""
    tmp, sp = savepoint
    copy = os.path.join(str(tmp), "untouched", os.path.basename(sp))
    shutil.copytree(sp, copy)
    run = h.run_job(str(tmp), "untouched-restore", f"enc+file://{tmp}/untouched-checkpoints",
                    restore=f"enc+file://{copy}", conf=crypto_conf, records=RECORDS, keys=KEYS, pad=PAD,
                    local_crypto=True)
    assert run.ok, run.describe()
    h.assert_continued(run.out_dir, RECORDS, KEYS)


@pytest.mark.parametrize("target", ["state-file", "_metadata"])
def test_one_flipped_byte_fails_the_restore_naming_the_file(savepoint, crypto_conf, target):
    tmp, sp = savepoint
    pick = (lambda n: n == "_metadata") if target == "_metadata" else (lambda n: n != "_metadata")
    tampered, run = _restore_tampered(tmp, sp, f"tampered-{target}", pick, crypto_conf)
    assert run.result["status"] == "ERROR", run.describe()
    error = run.result.get("error", "") + run.result.get("traceback", "") + run.log_text()
    assert os.path.basename(tampered) in error, f"the error does not name {tampered}:\n{run.describe()}"
    assert "authentication failed" in error.lower() or "AuthenticationError" in error, run.describe()
    assert not any(h.read_outputs(run.out_dir).values()), "records were processed on tampered state"


def test_kms_gone_while_running_fails_checkpoints_closed(tmp_path, keyring):
    """A keyring of its own, removed after the first checkpoints; every new file needs a new data
    key (cache.max-files 1), so every later checkpoint must fail and write nothing readable."""
    ring = tmp_path / "ring" / "keyring.json"
    ring.parent.mkdir()
    shutil.copy(h.local_path(keyring), ring)
    conf = {"heliosdb.crypto.kms.uri": f"local://{ring}", "heliosdb.crypto.cache.max-files": "1",
            "heliosdb.crypto.cache.outage-grace": "0 s",
            "execution.checkpointing.tolerable-failed-checkpoints": "100"}
    cp = tmp_path / "checkpoints"
    run = h.run_job(str(tmp_path), "kms-gone", f"enc+file://{cp}", mode="observe", conf=conf,
                    records=RECORDS, keys=KEYS, pad=PAD, throttle_ms=2, stop_after=2, local_crypto=True,
                    rest_port=free_port(), remove_file=str(ring), observe_seconds=60, observe_failed=3,
                    timeout=400)
    assert run.ok, run.describe()
    before, after = run.result["counts_before"], run.result["counts_after"]
    assert before["completed"] >= 1
    assert after["failed"] >= before["failed"] + 3, run.describe()
    # only a checkpoint already in progress at the removal could still have had all its keys
    assert after["completed"] <= before["completed"] + before["in_progress"], \
        f"a checkpoint completed without the KMS: {before} -> {after}"
    assert h.files_with(str(cp)) == [], "plaintext state written while the KMS was gone"
    assert h.not_encrypted(str(cp)) == [], "a file without the encrypted header was written"


def test_plaintext_state_next_to_encrypted_checkpoints_is_refused(tmp_path, crypto_conf):
    """An enc+ checkpoint directory with a plain savepoint directory and a plain changelog: the
    MiniCluster's enc+ file systems refuse to start, the error names both keys and their enc+ form,
    and nothing is written anywhere (not a checkpoint, not a changelog file)."""
    conf = dict(crypto_conf, **{"state.changelog.enabled": "true",
                                "state.changelog.dstl.dfs.base-path": f"file://{tmp_path}/dstl"})
    run = h.run_job(str(tmp_path), "leaky", f"enc+file://{tmp_path}/checkpoints", conf=conf,
                    savepoint_dir=f"file://{tmp_path}/savepoints", records=RECORDS, keys=KEYS, pad=PAD,
                    local_crypto=True, timeout=180)
    assert not run.ok, run.describe()
    error = run.failure_text()
    assert (f"execution.checkpointing.dir is enc+file://{tmp_path}/checkpoints (encrypted), but Flink would write "
            f"state unencrypted to: execution.checkpointing.savepoint-dir = file://{tmp_path}/savepoints (point it "
            f"at enc+file://{tmp_path}/savepoints); state.changelog.dstl.dfs.base-path = file://{tmp_path}/dstl "
            f"(point it at enc+file://{tmp_path}/dstl)") in error, run.describe()
    assert not any(h.read_outputs(run.out_dir).values()), "records were processed"
    for d in ("checkpoints", "savepoints", "dstl"):
        assert not os.path.exists(tmp_path / d) or h.all_files(str(tmp_path / d)) == [], d

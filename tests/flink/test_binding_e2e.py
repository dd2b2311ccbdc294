"""Whole files swapped or rolled back in a real Flink job's retained checkpoints (format rule F-24).

A HashMap job keeps its last three checkpoints. An attacker with storage access (no KEK) overwrites a
state file of the newest checkpoint chk-N with the same operator's state file of chk-(N-1) (every
byte of which authenticates on its own), or chk-(N-1)'s ``_metadata`` over chk-N's: restoring from
chk-N must fail naming the file, and no record may be processed on the older state. The same
checkpoint, untouched, restores and continues exactly (the control).
"""
from __future__ import annotations

import os
import shutil

import pytest

import harness as h

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128


@pytest.fixture(scope="module")
def retained(tmp_path_factory, crypto_conf):
    """(work dir, [chk-(N-1), chk-N] local paths) of a cancelled job that retained three checkpoints."""
    tmp = tmp_path_factory.mktemp("binding")
    conf = dict(crypto_conf, **{"execution.checkpointing.num-retained": "3"})
    run = h.run_job(str(tmp), "first", f"enc+file://{tmp}/checkpoints", mode="cancel", conf=conf,
                    records=RECORDS, keys=KEYS, pad=PAD, throttle_ms=2, stop_after=3, local_crypto=True)
    assert run.ok, run.describe()
    chks = [h.local_path(c) for c in run.result["checkpoints"]]
    assert len(chks) >= 2, run.describe()
    return tmp, chks[-2:]


def _state_file(chk: str) -> str:
    """The keyed state file of a checkpoint (parallelism 1: the largest file besides _metadata)."""
    files = [p for p in h.all_files(chk) if os.path.basename(p) != "_metadata"]
    assert files, f"no state file in {chk} (state inlined into _metadata?)"
    return max(files, key=os.path.getsize)


def _restore(tmp, name, chk, crypto_conf):
    return h.run_job(str(tmp), name, f"enc+file://{tmp}/{name}-checkpoints", restore=f"enc+file://{chk}",
                     conf=crypto_conf, records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True, timeout=180)


def _swapped_restore_fails(tmp, chks, crypto_conf, name, victim, donor):
    original = victim + ".orig"
    shutil.copy2(victim, original)
    try:
        shutil.copy(donor, victim)
        run = _restore(tmp, name, chks[1], crypto_conf)
    finally:
        os.replace(original, victim)  # the next test starts from the genuine checkpoint
    assert run.result["status"] == "ERROR", run.describe()
    error = run.result.get("error", "") + run.result.get("traceback", "") + run.log_text()
    assert victim in error, f"the error does not name {victim}:\n{run.describe()}"
    assert "MisplacedFileError" in error and "sealed for another place" in error, run.describe()
    assert not any(h.read_outputs(run.out_dir).values()), "records were processed on rolled-back state"


def test_the_untouched_newest_checkpoint_restores_and_continues(retained, crypto_conf):
    tmp, chks = retained
    run = _restore(tmp, "untouched", chks[1], crypto_conf)
    assert run.ok, run.describe()
    h.assert_continued(run.out_dir, RECORDS, KEYS)


def test_an_older_state_file_over_the_newer_one_fails_the_restore_naming_it(retained, crypto_conf):
    tmp, chks = retained
    _swapped_restore_fails(tmp, chks, crypto_conf, "state-swapped", _state_file(chks[1]), _state_file(chks[0]))


def test_an_older_metadata_over_the_newer_one_fails_the_restore_naming_it(retained, crypto_conf):
    tmp, chks = retained
    _swapped_restore_fails(tmp, chks, crypto_conf, "metadata-swapped", os.path.join(chks[1], "_metadata"),
                           os.path.join(chks[0], "_metadata"))

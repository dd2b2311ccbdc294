"""Restoring an encrypted checkpoint or savepoint from a path without the ``enc+`` scheme
(``flink run -s /data/ckpt/<job>/chk-3``, ``execution.state-recovery.path: file:///...``), in PyFlink's
local MiniCluster with the lib jar's checkpoint storage
(``execution.checkpointing.storage: io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory``):
the JobManager finds the format's magic in ``_metadata`` and restores through the ``enc+`` twin of the
path, and every key continues exactly. (Without that storage Flink reads the ciphertext itself and
fails with "Unexpected magic number": docs/flink.md, troubleshooting.)
"""
from __future__ import annotations

import pytest

import harness as h
from heliosdb_flink_crypto.flink import TENANT_CHECKPOINT_STORAGE

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128


def _job(**kw):
    return dict(records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True, **kw)


@pytest.fixture(scope="module")
def first(tmp_path_factory, crypto_conf):
    tmp = tmp_path_factory.mktemp("bare")
    run = h.run_job(str(tmp), "first", f"enc+file://{tmp}/checkpoints", mode="savepoint-cancel",
                    savepoint_dir=f"enc+file://{tmp}/savepoints", conf=crypto_conf,
                    **_job(throttle_ms=2, stop_after=2))
    assert run.ok, run.describe()
    return {"tmp": tmp, "checkpoint": run.result["checkpoints"][-1], "savepoint": run.result["savepoint"]}


def _restore(first, crypto_conf, name: str, pointer: str) -> h.JobRun:
    conf = {**crypto_conf, "execution.checkpointing.storage": TENANT_CHECKPOINT_STORAGE}
    run = h.run_job(str(first["tmp"]), name, f"enc+file://{first['tmp']}/{name}-checkpoints", restore=pointer,
                    conf=conf, **_job())
    assert run.ok, run.describe()
    h.assert_continued(run.out_dir, RECORDS, KEYS)
    return run


def test_checkpoint_path_without_scheme_restores_through_enc(first, crypto_conf):
    assert first["checkpoint"].startswith("enc+file://")
    _restore(first, crypto_conf, "bare-checkpoint", h.local_path(first["checkpoint"]))


def test_savepoint_file_uri_restores_through_enc(first, crypto_conf):
    assert first["savepoint"].startswith("enc+file:")
    _restore(first, crypto_conf, "file-savepoint", "file://" + h.local_path(first["savepoint"]))

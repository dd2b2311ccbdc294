"""End to end in PyFlink's local MiniCluster (``python job.py``) with ``enc+file://`` checkpoints.

For each state backend: the job checkpoints (and takes a savepoint) into ``enc+file://``; no byte of
any file there shows the marker that fills the keyed state (or the records in flight); every file
decrypts and authenticates (``heliosdb-flink-crypto verify``) and its plaintext does hold the state;
restoring from the retained checkpoint and from the savepoint continues every key's counter exactly.
"""
from __future__ import annotations

import os

import pytest

import harness as h

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128


def _job(**kw):
    return dict(records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True, **kw)


def _first_run(tmp, crypto_conf, **kw) -> dict:
    cp, sp = f"enc+file://{tmp}/checkpoints", f"enc+file://{tmp}/savepoints"
    run = h.run_job(str(tmp), "first", cp, mode="savepoint-cancel", savepoint_dir=sp,
                    conf=crypto_conf, **_job(**kw))
    assert run.ok, run.describe()
    return {"tmp": tmp, "run": run, "kw": kw, "cp_dir": f"{tmp}/checkpoints", "sp_dir": f"{tmp}/savepoints",
            "checkpoint": run.result["checkpoints"][-1], "savepoint": run.result["savepoint"]}


def _restore(first, crypto_conf, name, source):
    run = h.run_job(str(first["tmp"]), name, f"enc+file://{first['tmp']}/{name}-checkpoints",
                    restore=source, conf=crypto_conf, **_job(**{k: v for k, v in first["kw"].items()
                                                                   if k not in ("throttle_ms", "slow_ms")}))
    assert run.ok, run.describe()
    return h.assert_continued(run.out_dir, RECORDS, KEYS)


def _assert_ciphertext(first, kms_uri, checkpoint_needles=(h.MARKER,)):
    for root, needles in ((first["cp_dir"], checkpoint_needles), (first["sp_dir"], (h.MARKER,))):
        files = h.all_files(root)
        assert any(os.path.basename(p) == "_metadata" for p in files)
        assert any(os.path.basename(p) != "_metadata" for p in files), "all state was inline"
        assert h.files_with(root) == [], "plaintext state on disk"
        assert h.not_encrypted(root) == []
        r = h.cli("verify", "--kms", kms_uri, root)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"verified {len(files)} of {len(files)} files; 0 failed" in r.stdout
        # the control: decrypted, the same files do hold the state
        plain = h.decrypt_all(root, kms_uri)
        for needle in needles:
            assert any(needle in data for data in plain.values()), f"{needle!r} not in decrypted {root}"


# -- HashMap (full snapshots) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def hashmap(tmp_path_factory, crypto_conf):
    return _first_run(tmp_path_factory.mktemp("hashmap"), crypto_conf, backend="hashmap", throttle_ms=2,
                      stop_after=3)


def test_hashmap_checkpoint_and_savepoint_files_are_ciphertext(hashmap, keyring):
    _assert_ciphertext(hashmap, keyring)


def test_hashmap_restore_from_retained_checkpoint_continues_exactly(hashmap, crypto_conf):
    assert hashmap["checkpoint"].startswith("enc+file://")
    _restore(hashmap, crypto_conf, "from-checkpoint", hashmap["checkpoint"])


def test_hashmap_restore_from_savepoint_continues_exactly(hashmap, crypto_conf):
    assert hashmap["savepoint"].startswith("enc+file:")
    _restore(hashmap, crypto_conf, "from-savepoint", hashmap["savepoint"])


# -- RocksDB incremental (shared SST files reused across checkpoints) ---------------------------
@pytest.fixture(scope="module")
def rocksdb(tmp_path_factory, crypto_conf):
    return _first_run(tmp_path_factory.mktemp("rocksdb"), crypto_conf, backend="rocksdb",
                      incremental=True, stop_after=3, throttle_ms=2)


def test_rocksdb_incremental_files_are_ciphertext(rocksdb, keyring):
    shared = [p for p in h.all_files(rocksdb["cp_dir"]) if f"{os.sep}shared{os.sep}" in p]
    assert shared, "no shared (incremental) SST files were written"
    _assert_ciphertext(rocksdb, keyring)


def test_rocksdb_incremental_restore_from_retained_checkpoint(rocksdb, crypto_conf):
    _restore(rocksdb, crypto_conf, "from-checkpoint", rocksdb["checkpoint"])


def test_rocksdb_restore_from_savepoint(rocksdb, crypto_conf):
    _restore(rocksdb, crypto_conf, "from-savepoint", rocksdb["savepoint"])


# -- unaligned checkpoints (records in flight are part of the checkpoint) -----------------------
@pytest.fixture(scope="module")
def unaligned(tmp_path_factory, crypto_conf):
    # a slow keyed operator backs records up in the network: barriers overtake them
    return _first_run(tmp_path_factory.mktemp("unaligned"), crypto_conf, backend="hashmap",
                      unaligned=True, slow_ms=2, stop_after=3)


def test_unaligned_channel_state_is_ciphertext(unaligned, keyring):
    # savepoints are always aligned: only the checkpoint holds channel state
    _assert_ciphertext(unaligned, keyring, checkpoint_needles=(h.MARKER, h.INFLIGHT))


def test_unaligned_restore_replays_in_flight_records_exactly_once(unaligned, crypto_conf):
    _restore(unaligned, crypto_conf, "from-checkpoint", unaligned["checkpoint"])

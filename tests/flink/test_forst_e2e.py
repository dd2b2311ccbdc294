"""ForSt (Flink 2.x disaggregated state) through the encrypted schemes, in PyFlink's local MiniCluster.

For ``enc+file://`` and ``enc+s3://`` (moto's S3 behind Flink's own S3 plugin), each with ForSt's
default (``state.backend.forst.sync.enforce-local: true``: live SST files on the local disk,
incremental checkpoints upload them) and with ``enforce-local: false`` (the live SST files are in
the primary directory, which is the checkpoint directory's ``shared/op_*/db/``, written and read at
random offsets through the shim):

* every remote file is ciphertext (magic, no marker of the keyed state in its bytes), while decrypted
  the SST files do hold the state; in the remote mode the live database files are there and use
  ``heliosdb.crypto.forst.segment-size``;
* restoring from the retained incremental checkpoint continues every key exactly;
* a remote SST file with one byte flipped fails the restore, naming the file.

And ForSt's savepoints (native: Flink 2.3's ForSt refuses canonical ones, "does not support CANONICAL
savepoints"), on ``enc+file://`` with the live database remote: every file of the savepoint is
ciphertext that decrypts to the keyed state, restoring from it continues every key exactly, and a
savepoint file with one byte flipped fails the restore, naming the file.
"""
from __future__ import annotations

import os

import pytest

import harness as h
import s3_plugin
import stores
from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.format import PREFIX_LEN, binding_name, parse_prefix

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128
FORST_SEGMENT = 4096  # heliosdb.crypto.forst.segment-size's default


def _decrypt(kms_uri: str, uri: str, data: bytes) -> bytes:
    """``data``, the file at ``uri``, decrypted: authenticated and bound to its place."""
    crypto = CheckpointCrypto([kms_uri])
    try:
        return crypto.decrypt_bytes(data, uri, name=binding_name(uri))
    finally:
        crypto.close()


def _segment_size(data: bytes) -> int:
    return parse_prefix(data[:PREFIX_LEN], "")[2]


@pytest.fixture(scope="module", params=[("file", "true"), ("file", "false"), ("s3", "true"), ("s3", "false")],
                ids=["file-local", "file-remote", "s3-local", "s3-remote"])
def forst(request, tmp_path_factory, crypto_conf, keyring):
    """One checkpointed run, a restore from its retained checkpoint, then the same restore with one
    remote SST file tampered with (in that order: the tamper must not touch the first restore)."""
    fs, enforce_local = request.param
    tmp = tmp_path_factory.mktemp(f"forst-{fs}-{enforce_local}")
    # no compression: SST files of this small state stay above the 20 KiB below which Flink inlines
    # them into _metadata, and a plaintext marker could not hide in compressed bytes
    conf = {**crypto_conf, "state.backend.forst.sync.enforce-local": enforce_local,
            "state.backend.forst.compression.per.level": "NO_COMPRESSION"}
    with pytest.MonkeyPatch.context() as mp:
        if fs == "s3":
            endpoint = request.getfixturevalue("s3_endpoint")
            conf.update({"s3.endpoint": endpoint, "s3.path.style.access": "true",
                         "s3.access-key": "testing", "s3.secret-key": "testing"})
            mp.setattr(h, "JOB", s3_plugin.__file__)  # counter_job + the S3 plugin and s3.* options
            store = stores.Bucket(endpoint, f"forst-{enforce_local}")
        else:
            store = stores.Files(tmp)
        job = dict(conf=conf, records=RECORDS, keys=KEYS, pad=PAD, backend="forst", incremental=True,
                   local_crypto=True)
        first = h.run_job(str(tmp), "first", store.uri(""), mode="cancel", throttle_ms=2, stop_after=2, **job)
        assert first.ok, first.describe()
        checkpoint = first.result["checkpoints"][-1]
        objects = store.objects()
        restore = h.run_job(str(tmp), "restore", store.sibling("restored"), restore=checkpoint, **job)
        sst = _state_sst(store, objects, keyring)
        data = bytearray(objects[sst])
        at = int.from_bytes(data[8:12], "big") + 100  # in the first segment: the first data block
        data[at] ^= 0x01
        store.write(sst, bytes(data))
        tampered = h.run_job(str(tmp), "tampered", store.sibling("tampered"), restore=checkpoint, **job)
    return {"fs": fs, "remote": enforce_local == "false", "store": store, "objects": objects, "first": first,
            "restore": restore, "tampered": tampered, "sst": sst, "checkpoint": checkpoint}


def _state_sst(store, objects: dict[str, bytes], kms_uri: str) -> str:
    """The largest shared file whose plaintext holds keyed state (an SST file)."""
    shared = sorted((n for n in objects if "/shared/" in f"/{n}"), key=lambda n: -len(objects[n]))
    for name in shared:
        if h.MARKER in _decrypt(kms_uri, store.uri(name), objects[name]):
            return name
    raise AssertionError(f"no shared file holds the keyed state: {shared}")


def test_forst_remote_files_are_ciphertext(forst, keyring):
    objects, store = forst["objects"], forst["store"]
    assert forst["checkpoint"].startswith(store.uri("")), forst["first"].describe()
    db_files = [n for n in objects if "/db/" in n and objects[n]]
    if forst["remote"]:  # the mode is what it says: ForSt's live database is in the checkpoint directory
        assert db_files, sorted(objects)
    else:
        assert not db_files, db_files
    state = []
    for name, data in objects.items():
        if not data:
            continue
        assert h.MARKER not in data and h.INFLIGHT not in data, f"plaintext state in {store.uri(name)}"
        assert data[:4] == h.MAGIC, f"{store.uri(name)} has no encrypted header"
        plain = _decrypt(keyring, store.uri(name), data)
        if h.MARKER in plain:
            state.append(name)
        if name in db_files:
            assert _segment_size(data) == FORST_SEGMENT, name
    # the control: decrypted, the SST files do hold the keyed state (in the live database if remote)
    assert state, "no decrypted file holds the keyed state"
    if forst["remote"]:
        assert set(state) & set(db_files), state


def test_forst_restore_continues_exactly(forst):
    restore = forst["restore"]
    assert restore.ok, restore.describe()
    h.assert_continued(restore.out_dir, RECORDS, KEYS)


def test_forst_tampered_remote_sst_fails_naming_it(forst):
    tampered = forst["tampered"]
    assert not tampered.ok, "a tampered SST file was restored from: " + tampered.describe()
    named = [line for line in tampered.failure_text().splitlines() if forst["sst"] in line]
    assert any("authentication failed" in line for line in named), tampered.describe()


@pytest.fixture(scope="module")
def forst_savepoint(tmp_path_factory, crypto_conf, keyring):
    """A native savepoint of a ForSt job (its live database in the checkpoint directory), a restore
    from it, then the same restore with the savepoint's largest state file tampered with."""
    tmp = tmp_path_factory.mktemp("forst-savepoint")
    conf = {**crypto_conf, "state.backend.forst.sync.enforce-local": "false",
            "state.backend.forst.compression.per.level": "NO_COMPRESSION"}
    job = dict(conf=conf, records=RECORDS, keys=KEYS, pad=PAD, backend="forst", incremental=True, local_crypto=True)
    first = h.run_job(str(tmp), "first", f"enc+file://{tmp}/ckpt", mode="savepoint-cancel",
                      savepoint_dir=f"enc+file://{tmp}/savepoints", savepoint_format="native", throttle_ms=2,
                      stop_after=2, **job)
    assert first.ok, first.describe()
    savepoint = first.result["savepoint"]
    files = {p: stores.read(p) for p in h.all_files(h.local_path(savepoint))}
    restore = h.run_job(str(tmp), "restore", f"enc+file://{tmp}/restored", restore=savepoint, **job)
    state = [p for p, data in files.items() if data and h.MARKER in _decrypt(keyring, f"enc+file://{p}", data)]
    target = max(state, key=lambda p: len(files[p])) if state else None
    tampered = None
    if target:
        data = bytearray(files[target])
        data[int.from_bytes(data[8:12], "big") + 100] ^= 0x01  # in the first segment
        with open(target, "wb") as f:
            f.write(bytes(data))
        tampered = h.run_job(str(tmp), "tampered", f"enc+file://{tmp}/tampered", restore=savepoint, **job)
    return {"savepoint": savepoint, "files": files, "state": state, "target": target,
            "first": first, "restore": restore, "tampered": tampered}


def test_forst_savepoint_files_are_ciphertext(forst_savepoint):
    sp = forst_savepoint
    assert sp["savepoint"].startswith("enc+file:"), sp["first"].describe()
    assert any(os.path.basename(p) == "_metadata" for p in sp["files"]), sorted(sp["files"])
    for path, data in sp["files"].items():
        if data:
            assert h.MARKER not in data and data[:4] == h.MAGIC, f"plaintext in {path}"
    # the control: decrypted (authenticated, bound to its place), a savepoint file holds the state
    assert sp["state"], "no decrypted savepoint file holds the keyed state"


def test_forst_savepoint_restore_continues_exactly(forst_savepoint):
    restore = forst_savepoint["restore"]
    assert restore.ok, restore.describe()
    h.assert_continued(restore.out_dir, RECORDS, KEYS)


def test_forst_tampered_savepoint_fails_naming_the_file(forst_savepoint):
    tampered, target = forst_savepoint["tampered"], forst_savepoint["target"]
    assert tampered is not None, "no savepoint file holds the keyed state"
    assert not tampered.ok, "a tampered savepoint was restored from: " + tampered.describe()
    named = [line for line in tampered.failure_text().splitlines() if os.path.basename(target) in line]
    assert any("authentication failed" in line for line in named), tampered.describe()

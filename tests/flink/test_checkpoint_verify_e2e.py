"""``verify --checkpoint`` on what real Flink writes.

* The metadata reader against Flink's own serializers (MetadataV3 to V6, every handle type, written
  by PyFlink's JVM: jobs/write_metadata.py) and against the ``_metadata`` of real jobs: a HashMap
  job's retained checkpoints and savepoint (relative handles), RocksDB incremental (shared/ files),
  file merging (segments in taskowned/), the changelog backend (files under its own base path),
  unaligned checkpoints (channel state).
* Whole-folder checks on those trees, untouched (exit 0) and attacked as someone with write access
  to the storage would: a referenced file deleted, another checkpoint's file copied over a
  referenced one, chk-(N-1)'s ``_metadata`` over chk-N's, an extra unreferenced file. Each is
  reported naming the file, with exit status 1 and the same in ``--json``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import harness as h
from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.flink.metadata import parse_metadata

pytestmark = pytest.mark.slow

WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobs", "write_metadata.py")
JOB = dict(records=12000, keys=400, pad=128, local_crypto=True, throttle_ms=2, stop_after=3)


def _first_run(tmp, crypto_conf, conf=(), **kw) -> dict:
    run = h.run_job(str(tmp), "first", f"enc+file://{tmp}/checkpoints", mode="savepoint-cancel",
                    savepoint_dir=f"enc+file://{tmp}/savepoints",
                    conf={**crypto_conf, "execution.checkpointing.num-retained": "2", **dict(conf)}, **{**JOB, **kw})
    assert run.ok, run.describe()
    job = os.path.join(str(tmp), "checkpoints", run.result["job_id"])
    retained = [h.local_path(c) for c in run.result["checkpoints"]]
    assert len(retained) == 2, retained
    return {"tmp": str(tmp), "job": job, "retained": retained, "savepoint": h.local_path(run.result["savepoint"])}


@pytest.fixture(scope="module")
def hashmap(tmp_path_factory, crypto_conf):
    return _first_run(tmp_path_factory.mktemp("hashmap"), crypto_conf)


@pytest.fixture(scope="module")
def rocksdb(tmp_path_factory, crypto_conf):
    # no state inline in _metadata: every SST file goes to shared/
    return _first_run(tmp_path_factory.mktemp("rocksdb"), crypto_conf, backend="rocksdb", incremental=True,
                      conf={"execution.checkpointing.data-inline-threshold": "0 b"})


@pytest.fixture(scope="module")
def merging(tmp_path_factory, crypto_conf):
    return _first_run(tmp_path_factory.mktemp("merging"), crypto_conf,
                      conf={"execution.checkpointing.file-merging.enabled": "true"})


@pytest.fixture(scope="module")
def changelog(tmp_path_factory, crypto_conf):
    tmp = tmp_path_factory.mktemp("changelog")
    return _first_run(tmp, crypto_conf, conf={"state.changelog.enabled": "true",
                                              "state.changelog.storage": "filesystem",
                                              "state.changelog.dstl.dfs.base-path": f"enc+file://{tmp}/dstl"})


@pytest.fixture(scope="module")
def unaligned(tmp_path_factory, crypto_conf):
    # a slow keyed operator backs records up in the network: barriers overtake them (channel state)
    return _first_run(tmp_path_factory.mktemp("unaligned"), crypto_conf, unaligned=True, slow_ms=2,
                      throttle_ms=0)


def _metadata(keyring, folder):
    crypto = CheckpointCrypto([keyring])
    path = os.path.join(folder, "_metadata")
    with crypto.open_path(path) as r:
        return parse_metadata(r.read(), path)


def _verify(keyring, *paths):
    r = h.cli("verify", "--kms", keyring, "--checkpoint", "--json", *paths)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.returncode, json.loads(r.stdout)


def _problems(out) -> list[tuple[str, str]]:
    return sorted((p["kind"], p["path"]) for p in out["problems"])


def _copy(tree, tmp_path) -> dict:
    """A copy of the tree to attack (the module's original stays untouched)."""
    dst = str(tmp_path / "copy")
    shutil.copytree(tree["tmp"], dst, ignore=shutil.ignore_patterns("*-out", "*-flink-log", "*.log"))
    moved = lambda p: dst + p[len(tree["tmp"]):]  # noqa: E731
    return {"tmp": dst, "job": moved(tree["job"]), "retained": [moved(p) for p in tree["retained"]],
            "savepoint": moved(tree["savepoint"])}


def _state_file(keyring, folder) -> str:
    """The state file chk-N's _metadata references for the keyed operator's subtask 0."""
    meta = _metadata(keyring, folder)
    ref = next(f for f in meta.files if "(count) subtask 0: managed keyed state" in f.where)
    return os.path.join(folder, ref.path) if ref.relative else h.local_path(ref.path)


# -- the reader ----------------------------------------------------------------------------------
def test_reader_matches_flinks_serializers_for_every_handle_type(tmp_path):
    r = subprocess.run([sys.executable, WRITER, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(tmp_path / "expected.json") as f:
        expected = json.load(f)
    assert sorted(expected) == ["3", "4", "5", "6"]
    for version, want in expected.items():
        path = str(tmp_path / f"v{version}" / "_metadata")
        with open(path, "rb") as f:
            m = parse_metadata(f.read(), path)
        got = sorted((dict(path=f.path, size=f.size, relative=f.relative, segment=f.segment, offset=f.offset)
                      for f in m.files), key=json.dumps)
        assert (m.version, m.checkpoint_id, m.operators) == (int(version), 7, 3)
        assert got == want["files"] and list(m.master_states) == want["master_states"]
        assert sorted(n for _, n in m.inline) == want["inline"] and list(m.directories) == want["directories"]


def test_reader_on_a_hashmap_jobs_checkpoints_and_savepoint(hashmap, keyring):
    for folder in hashmap["retained"] + [hashmap["savepoint"]]:
        m = _metadata(keyring, folder)
        assert m.version == 6 and m.files and all(f.relative for f in m.files)
        for f in m.files:
            assert os.path.isfile(os.path.join(folder, f.path))
    assert [_metadata(keyring, f).checkpoint_id for f in hashmap["retained"]] == \
        [int(f.rsplit("-", 1)[1]) for f in hashmap["retained"]]


def test_reader_on_rocksdb_incremental_shared_files(rocksdb, keyring):
    m = _metadata(keyring, rocksdb["retained"][-1])
    shared = [f for f in m.files if ", shared " in f.where]
    assert len(shared) >= 2 and all("coordinator state" in w for w, _ in m.inline)
    for f in shared:
        assert f.path.startswith("enc+file:") and f"/{os.path.basename(rocksdb['job'])}/shared/" in f.path
        assert os.path.isfile(h.local_path(f.path))


def test_reader_on_file_merging_segments(merging, keyring):
    m = _metadata(keyring, merging["retained"][-1])
    segments = [f for f in m.files if f.segment]
    assert segments and m.directories
    assert all("/taskowned/" in f.path or "/shared/" in f.path for f in segments)


def test_reader_on_changelog_files(changelog, keyring):
    m = _metadata(keyring, changelog["retained"][-1])
    logs = [f for f in m.files if ", changelog file " in f.where]
    assert logs and all(f"{changelog['tmp']}/dstl/" in f.path and not f.exact for f in logs)


def test_reader_on_unaligned_channel_state(unaligned, keyring):
    m = _metadata(keyring, unaligned["retained"][-1])
    channels = [f for f in m.files if "input channel state" in f.where or "output subpartition state" in f.where]
    assert channels and all(f.relative and os.path.isfile(os.path.join(unaligned["retained"][-1], f.path))
                            for f in channels)


# -- untouched trees -------------------------------------------------------------------------------
@pytest.mark.parametrize("tree", ["hashmap", "rocksdb", "unaligned"])
def test_untouched_job_and_savepoint_check_out(tree, request, keyring):
    t = request.getfixturevalue(tree)
    code, out = _verify(keyring, t["job"], t["savepoint"])
    assert (code, out["problems"]) == (0, [])
    assert [c["kind"] for c in out["checkpoints"]] == ["checkpoint", "checkpoint", "savepoint"]
    assert all(c["files"] >= 1 for c in out["checkpoints"]) and out["files_verified"] >= 6


def test_changelog_checkpoints_check_out_with_their_files_where_they_are(changelog, keyring):
    code, out = _verify(keyring, changelog["job"], changelog["savepoint"])
    assert (code, out["problems"]) == (0, [])
    assert [c["kind"] for c in out["checkpoints"]] == ["checkpoint", "checkpoint", "savepoint"]
    assert out["checkpoints"][1]["external"] >= 1  # the changelog files, outside the job's folder


def test_file_merging_checkpoints_check_out(merging, keyring):
    code, out = _verify(keyring, merging["job"])
    # a physical file of the checkpoint that the cancel aborted may stay behind: Flink leaves it
    assert all(p["kind"] == "orphan" and "/taskowned/" in p["path"] for p in out["problems"]), out["problems"]
    assert code == (1 if out["problems"] else 0) and len(out["checkpoints"]) == 2


# -- attacked trees ------------------------------------------------------------------------------------
def test_a_deleted_state_file_is_named(hashmap, keyring, tmp_path):
    t = _copy(hashmap, tmp_path)
    victim = _state_file(keyring, t["retained"][-1])
    os.remove(victim)
    code, out = _verify(keyring, t["job"])
    assert (code, _problems(out)) == (1, [("missing", victim)])
    text = h.cli("verify", "--kms", keyring, "--checkpoint", t["retained"][-1])
    assert text.returncode == 1 and text.stdout.startswith(f"MISSING {victim}: referenced by ")


def test_another_checkpoints_file_under_a_referenced_name_is_named(hashmap, keyring, tmp_path):
    t = _copy(hashmap, tmp_path)
    older, newer = (_state_file(keyring, f) for f in t["retained"])
    shutil.copyfile(older, newer)
    code, out = _verify(keyring, t["job"])
    assert code == 1
    assert [(p["kind"], p["path"]) for p in out["problems"]] == [("misplaced", newer)], out


def test_older_metadata_over_newer_is_named(hashmap, keyring, tmp_path):
    t = _copy(hashmap, tmp_path)
    older, newer = (os.path.join(f, "_metadata") for f in t["retained"])
    shutil.copyfile(older, newer)
    code, out = _verify(keyring, t["job"])
    assert code == 1 and [p for p in out["problems"] if p["path"] == newer][0]["kind"] == "misplaced"
    assert {p["path"] for p in out["problems"]} <= {newer, t["job"]}


def test_an_extra_file_is_an_orphan(hashmap, keyring, tmp_path):
    t = _copy(hashmap, tmp_path)
    extra = [os.path.join(t["retained"][-1], "extra"), os.path.join(t["job"], "shared", "old-state"),
             os.path.join(t["savepoint"], "extra")]
    for p in extra:
        shutil.copyfile(_state_file(keyring, t["retained"][0]), p)
    code, out = _verify(keyring, t["job"], t["savepoint"])
    assert (code, _problems(out)) == (1, sorted(("orphan", p) for p in extra))


def test_another_shared_file_over_a_referenced_one_is_named(rocksdb, keyring, tmp_path):
    t = _copy(rocksdb, tmp_path)
    newest = _metadata(keyring, t["retained"][-1])
    names = {os.path.basename(f.path) for f in newest.files if ", shared " in f.where}
    shared = sorted((os.path.getsize(p), p) for p in (os.path.join(t["job"], "shared", n) for n in names))
    (small_size, small), (big_size, big) = shared[0], shared[-1]
    assert small_size != big_size
    shutil.copyfile(small, big)
    code, out = _verify(keyring, t["job"])
    assert code == 1 and {p["path"] for p in out["problems"]} == {big}, out["problems"]
    assert {p["kind"] for p in out["problems"]} == {"misplaced"}

"""``verify --checkpoint`` and lifecycle.checkpoints on checkpoint trees laid out as Flink lays them
out (encrypted state files, ``_metadata`` as Flink's serializers write it): every problem is named
by file and kind, orphans are found, the exit status and JSON say so. Real Flink jobs:
tests/flink/test_checkpoint_verify_e2e.py."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

import metadata_writer as w
from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle.checkpoint_report import problem_kind as _failure
from heliosdb_flink_crypto.lifecycle.checkpoints import components, verify_checkpoints
from heliosdb_flink_crypto.testing.hostile import permissions_enforced

JOB = "0123456789abcdef0123456789abcdef"


def seal(crypto, path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f, crypto.writer(f) as wr:
        wr.write(data)


def checkpoint_metadata(cid, *handles):
    """Checkpoint ``cid`` of one operator whose subtask i holds ``handles[i]`` as keyed state."""
    subtasks = {i: w.subtask(6, managed_keyed=w.key_groups(h)) for i, h in enumerate(handles)}
    return w.metadata(6, cid, [w.operator_state(6, subtasks)])


def make_tree(crypto, root) -> dict:
    """checkpoints/<job>/chk-6 and chk-7 (relative state files, a shared file by absolute URI, a
    file-merging segment) and savepoints/savepoint-x (relative)."""
    job, paths = os.path.join(root, "checkpoints", JOB), {}
    for name, size in (("chk-6/a", 100), ("chk-7/b", 120), ("shared/s1", 50), ("taskowned/tm/p", 40)):
        paths[name] = os.path.join(job, name)
        seal(crypto, paths[name], os.urandom(size))
    shared = w.file(f"enc+file:{job}/shared/s1", 50)
    seal(crypto, os.path.join(job, "chk-6", "_metadata"), checkpoint_metadata(6, w.relative("a", 100), shared))
    seal(crypto, os.path.join(job, "chk-7", "_metadata"), checkpoint_metadata(
        7, w.relative("b", 120), shared, w.segment(f"enc+file://{job}/taskowned/tm/p", 5, 10)))
    sp = os.path.join(root, "savepoints", "savepoint-012345-abcdef")
    seal(crypto, os.path.join(sp, "c"), os.urandom(70))
    seal(crypto, os.path.join(sp, "_metadata"), w.metadata(5, 9, [w.operator_state(5, {0: w.subtask(
        5, managed_keyed=w.key_groups(w.relative("c", 70), kind=7))})]))
    return {"job": job, "sp": sp, **{k: v for k, v in paths.items()}}


@pytest.fixture
def tree(tmp_path, crypto):
    return make_tree(crypto, str(tmp_path))


def kinds(result):
    return sorted((p.kind, p.path) for p in result.problems)


def test_untouched_tree_checks_out(tree, crypto):
    r = verify_checkpoints(crypto, [tree["job"], tree["sp"]])
    assert r.ok and r.problems == []
    assert [(c.kind, c.checkpoint_id, c.files) for c in r.checked] == [
        ("checkpoint", 6, 2), ("checkpoint", 7, 3), ("savepoint", 9, 1)]
    assert r.files_verified == 8 and r.bytes_verified > 380
    assert r.to_dict()["ok"] is True


def test_a_checkpoint_folder_is_checked_and_its_job_searched_for_orphans(tree, crypto):
    r = verify_checkpoints(crypto, [os.path.join(tree["job"], "chk-7", "_metadata")])
    assert r.ok and [c.checkpoint_id for c in r.checked] == [7]
    os.remove(tree["chk-6/a"])  # chk-6 is retained but not checked: its missing file is not looked at
    seal(crypto, os.path.join(tree["job"], "chk-6", "extra"), b"x")
    r = verify_checkpoints(crypto, [os.path.join(tree["job"], "chk-7")])
    assert kinds(r) == [("orphan", os.path.join(tree["job"], "chk-6", "extra"))]


def test_missing_tampered_and_resized_files_are_named(tree, crypto):
    os.remove(tree["chk-7/b"])
    with open(tree["shared/s1"], "r+b") as f:
        f.seek(300)
        f.write(b"\x00")
    seal(crypto, tree["taskowned/tm/p"], b"short")
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("missing", tree["chk-7/b"]), ("size", tree["taskowned/tm/p"]),
                        ("unauthenticated", tree["shared/s1"])]
    detail = {p.kind: p.detail for p in r.problems}
    assert "referenced by chk-7/_metadata (operator 0101" in detail["missing"]
    assert "segment of 10 bytes at 5 lies beyond the file's 5 bytes" in detail["size"]
    assert not r.ok and r.to_dict()["problem_counts"] == {"missing": 1, "size": 1, "unauthenticated": 1}


def test_a_state_file_of_another_size_is_named(tree, crypto):
    seal(crypto, tree["chk-7/b"], os.urandom(100))  # sealed with the key, in its place: only the size tells
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("size", tree["chk-7/b"])]
    assert "_metadata records 120 bytes, the file holds 100" in r.problems[0].detail


def test_another_checkpoints_file_copied_over_a_referenced_one_is_named(tree, crypto):
    shutil.copyfile(tree["chk-6/a"], tree["chk-7/b"])
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("misplaced", tree["chk-7/b"])]


def test_older_metadata_over_newer_is_named_and_orphans_are_not_guessed(tree, crypto):
    older, newer = (os.path.join(tree["job"], c, "_metadata") for c in ("chk-6", "chk-7"))
    shutil.copyfile(older, newer)
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("misplaced", newer), ("unchecked", tree["job"])]
    seal(crypto, newer, checkpoint_metadata(6, w.relative("a", 100)))  # sealed in its place, wrong id
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("checkpoint-id", newer), ("unchecked", tree["job"])]
    assert "holds checkpoint 6, but lies in chk-7" in r.problems[0].detail


def test_orphans_anywhere_under_the_job_or_savepoint(tree, crypto):
    extra = [os.path.join(tree["job"], "chk-8", "x"), os.path.join(tree["job"], "shared", "old"),
             os.path.join(tree["job"], "taskowned", "tm", "q"), os.path.join(tree["sp"], "stray")]
    for p in extra:
        seal(crypto, p, b"x")
    os.symlink("/etc", os.path.join(tree["job"], "shared", "link"))
    r = verify_checkpoints(crypto, [tree["job"], tree["sp"]])
    assert kinds(r) == sorted(("orphan", p) for p in extra + [os.path.join(tree["job"], "shared", "link")])


def test_folders_of_jobs_and_savepoints(tree, crypto, tmp_path):
    roots = [os.path.dirname(tree["job"]), os.path.dirname(tree["sp"])]
    r = verify_checkpoints(crypto, roots)
    assert r.ok and [c.checkpoint_id for c in r.checked] == [6, 7, 9]
    seal(crypto, os.path.join(roots[0], "README"), b"x")
    os.makedirs(os.path.join(roots[1], "empty"))
    r = verify_checkpoints(crypto, roots)
    assert kinds(r) == [("unchecked", os.path.join(roots[0], "README")),
                        ("unchecked", os.path.join(roots[1], "empty"))]


def test_a_copied_tree_is_checked_where_it_is(tree, crypto, tmp_path):
    moved = str(tmp_path / "elsewhere" / JOB)
    shutil.copytree(tree["job"], moved)
    shutil.rmtree(tree["job"])
    r = verify_checkpoints(crypto, [moved])
    assert r.ok and sum(c.external for c in r.checked) == 0


def test_references_outside_the_folder(tree, crypto, tmp_path):
    # changelog files live under <dstl base path>/<job>/dstl/, and count the bytes after a format byte
    changelog = str(tmp_path / "dstl" / JOB / "dstl" / "file")
    seal(crypto, changelog, os.urandom(30))
    job = tree["job"]
    keyed = w.changelog(deltas=[w.changelog_files([w.file(f"enc+file:{changelog}", 29)])])
    seal(crypto, os.path.join(job, "chk-7", "_metadata"), w.metadata(6, 7, [w.operator_state(6, {
        0: w.subtask(6, managed_keyed=keyed), 1: w.subtask(6, managed_keyed=w.key_groups(w.relative("b", 120))),
        2: w.subtask(6, managed_keyed=w.key_groups(w.file("s3://bucket/x/y", 3)))})]))
    seal(crypto, os.path.join(job, "chk-6", "_metadata"), checkpoint_metadata(6, w.relative("../chk-7/b", 120)))
    r = verify_checkpoints(crypto, [job])
    assert kinds(r) == [("orphan", tree["chk-6/a"]), ("orphan", tree["shared/s1"]),
                        ("orphan", tree["taskowned/tm/p"]), ("unchecked", "../chk-7/b"),
                        ("unchecked", "s3://bucket/x/y")]
    assert [(c.files, c.external) for c in r.checked] == [(0, 0), (2, 1)]
    detail = {p.path: p.detail for p in r.problems}
    assert detail["../chk-7/b"].endswith("a relative path out of its folder (Flink writes none)")
    assert "on a filesystem this machine cannot open" in detail["s3://bucket/x/y"]
    seal(crypto, changelog, os.urandom(28))  # fewer bytes than the changelog handle counts
    assert ("size", changelog) in kinds(verify_checkpoints(crypto, [job]))


def test_unusable_files_and_paths(tree, crypto, tmp_path):
    job = tree["job"]
    os.remove(tree["chk-7/b"])
    os.mkdir(tree["chk-7/b"])
    with open(tree["chk-6/a"], "wb") as f:
        f.write(b"plaintext, not an encrypted file")
    seal(crypto, os.path.join(tree["sp"], "_metadata"), b"not checkpoint metadata")
    r = verify_checkpoints(crypto, [job, tree["sp"], str(tmp_path / "nothing"), str(tmp_path)])
    got = kinds(r)
    assert ("unreadable", tree["chk-7/b"]) in got and ("unauthenticated", tree["chk-6/a"]) in got
    assert ("metadata", os.path.join(tree["sp"], "_metadata")) in got
    assert ("unreadable", str(tmp_path / "nothing")) in got and ("unreadable", str(tmp_path)) in got


def test_a_file_under_an_unknown_key(tree, crypto, tmp_path):
    other = f"local://{tmp_path}/other.json"
    LocalKeyring.create(other)
    seal(CheckpointCrypto([other]), tree["chk-7/b"], os.urandom(120))
    r = verify_checkpoints(crypto, [tree["job"]])
    assert kinds(r) == [("key-unavailable", tree["chk-7/b"])]


def test_an_unreadable_folder_is_named_never_skipped(tree, crypto):
    locked = os.path.join(tree["job"], "shared", "locked")
    os.makedirs(locked)
    os.chmod(locked, 0)
    try:
        with permissions_enforced() as ok:  # as root too: CAP_DAC_* dropped on this thread
            assert ok, "cannot make file permissions apply on this machine"
            r = verify_checkpoints(crypto, [tree["job"]])
    finally:
        os.chmod(locked, 0o700)
    assert kinds(r) == [("unreadable", locked)]


def test_failures_of_files_that_vanish_or_cannot_be_read():
    assert _failure(FileNotFoundError(2, "gone")) == ("missing", "not there")
    assert _failure(PermissionError(13, "Permission denied"))[0] == "unreadable"


def test_components_of_uris():
    assert components("enc+s3://bucket/a/b/") == ("enc+s3", ["a", "b"])
    assert components("file:/x/./y") == ("file", ["x", "y"])
    assert components("/x/y") == ("", ["x", "y"])
    assert components("c:/x") == ("", ["c:", "x"])


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_text_json_and_exit_status(tree, crypto, keyring_uri, capsys):
    assert main(["verify", "--kms", keyring_uri, "--checkpoint", tree["job"], tree["sp"]]) == 0
    assert capsys.readouterr().out.strip().endswith("0 problems")
    os.remove(tree["chk-7/b"])
    seal(crypto, tree["sp"] + "/\x1b[2J", b"")
    assert main(["verify", "--kms", keyring_uri, "--checkpoint", tree["job"], tree["sp"]]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"MISSING {tree['chk-7/b']}: referenced by chk-7/_metadata")
    assert lines[1] == f"ORPHAN {tree['sp']}/\\x1b[2J: not referenced by the savepoint's _metadata"
    assert "\x1b" not in "\n".join(lines)
    assert re.fullmatch(r"checked 2 checkpoints and 1 savepoint: 7 files \(\d+ bytes\) authenticated; "
                        r"2 problems \(1 missing, 1 orphan\)", lines[-1])
    assert main(["verify", "--kms", keyring_uri, "--checkpoint", "--json", tree["job"]]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"] == [
        {"path": tree["chk-7/b"], "kind": "missing", "detail": out["problems"][0]["detail"]}]
    assert [c["checkpoint_id"] for c in out["checkpoints"]] == [6, 7]
    assert main(["verify", "--json", tree["job"]]) == 2
    assert "--json needs --checkpoint" in capsys.readouterr().err
    assert main(["verify", "--kms", keyring_uri, "--checkpoint", "--expect-name", "x", tree["job"]]) == 2
    assert "--expect-name names one file's place" in capsys.readouterr().err

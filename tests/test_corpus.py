"""The adversarial corpus (heliosdb_flink_crypto.testing.corpus) through every command that reads a
tree: every hostile entry rejected and named on a line of its own, every valid file accepted, the
run never crashes, hangs or prints a terminal escape. The Java stream runs the same corpus
(java-shim CorpusITCase)."""
import collections
import functools
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from heliosdb_flink_crypto import cli
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.format import VERSION
from heliosdb_flink_crypto.text import shown
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.testing.corpus import CLASSES, build
from heliosdb_flink_crypto.testing.hostile import permissions_enforced

#: files a walk reports without opening them (they are not regular files, or cannot be entered)
WALK_PROBLEMS = {"fifo", "socket", "device", "unreadable-folder", "symlink-loop", "dangling-link", "symlink"}
RAW = "\x1b\x07\r\u202e\udcff\udcfe"
#: files bound to their names (format v2): a link named on the command line reads as the link's name
BOUND = VERSION >= 2


@pytest.fixture(autouse=True)
def one_parser(monkeypatch):
    """Thousands of commands in one process: build the argument parser once."""
    monkeypatch.setattr(cli, "build_parser", functools.cache(cli.build_parser))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    uri = f"local://{root}/keyring.json"
    LocalKeyring.create(uri)
    m = build(str(root / "c"), uri)
    m["items"] = [dict(i, abs=os.path.join(m["tree"], i["path"])) for i in m["items"]]
    yield m
    os.chmod(os.path.join(m["tree"], "special", "unreadable-folder"), 0o700)


def named(out: str, path: str, start: str) -> int:
    """How many lines of ``out`` start with ``start`` + the (escaped) path + ': '."""
    head = f"{start}{shown(path)}: "
    return sum(1 for line in out.splitlines() if line.startswith(head))


def test_corpus_covers_every_class(corpus):
    counts = collections.Counter(i["cls"] for i in corpus["items"])
    assert set(counts) == set(CLASSES), set(CLASSES) ^ set(counts)
    assert len(corpus["items"]) > 1500 and counts["valid"] >= 14 and counts["truncated"] > 500
    print(f"corpus: {len(corpus['items'])} entries; {dict(sorted(counts.items()))}")


def test_verify_rejects_every_hostile_entry_and_accepts_every_valid_one(corpus):
    """verify in a process of its own (a signal would show), with permissions applying even to root
    and the file 'special/shrinks' cut while it is read."""
    items = corpus["items"]
    shrinks = next(i["abs"] for i in items if i["cls"] == "shrinks")
    script = textwrap.dedent(f"""
        import sys
        from heliosdb_flink_crypto.testing import hostile
        print("permissions", hostile.drop_dac_override(), file=sys.stderr)
        hostile.shrink_on_unwrap({shrinks!r}, {os.path.getsize(shrinks) - 20})
        from heliosdb_flink_crypto.cli import main
        sys.exit(main(["verify", "-q", "--kms", {corpus['kms_uri']!r}, {corpus['tree']!r}]))
    """)
    intact = open(shrinks, "rb").read()
    try:
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                           errors="surrogateescape")
    finally:
        with open(shrinks, "wb") as f:
            f.write(intact)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert r.stderr.startswith("permissions ") and "Error" not in r.stderr and "unexpected error" not in r.stdout
    assert not set(RAW) & set(r.stdout + r.stderr)
    enforced = "permissions True" in r.stderr
    valid = [i for i in items if i["expect"] == "valid"]
    reject = [i for i in items if i["expect"] == "reject" and (enforced or i["cls"] != "unreadable-file")]
    wrong = [i["path"] for i in reject if named(r.stdout, i["abs"], "FAILED ") != 1]
    wrong += [i["path"] for i in valid if named(r.stdout, i["abs"], "FAILED ")]
    wrong += [i["path"] for i in items if i["expect"] == "skipped" and named(r.stdout, i["abs"], "skipped ") != 1]
    assert not wrong, wrong[:20]
    total = len(valid) + len(reject)
    assert f"verified {len(valid)} of {total} files; {len(reject)} failed" in r.stdout, r.stdout[-500:]


def decrypt_and_inspect(items, kms, out_dir, capsys) -> list:
    """Run decrypt and inspect on each item; the items that did not get their verdict."""
    wrong = []
    target = out_dir / "plain"
    for i in items:
        rc = main(["decrypt", "--kms", kms, i["abs"], str(target)])
        out, err = capsys.readouterr()
        if i["expect"] == "valid" or i["path"] == "special/link-to-valid" and not BOUND:  # a link named is followed
            ok = rc == 0 and (not i["plaintext"] or target.read_bytes() == bytes.fromhex(i["plaintext"]))
        else:
            ok = rc == 2 and err.count("\n") == 1 and shown(i["abs"]) in err and not target.exists()
        ok = ok and not set(RAW) & set(out + err) and os.listdir(out_dir) in ([], ["plain"])
        if target.exists():
            target.unlink()
        rc_inspect = main(["inspect", i["abs"]])  # headers only: a body cut or flipped may pass
        out, err = capsys.readouterr()
        ok = ok and not set(RAW) & set(out + err) and (rc_inspect == 0 or rc_inspect == 2 and err.count("\n") == 1)
        if not (ok and (rc_inspect == 0 or i["expect"] == "reject")):
            wrong.append((i["path"], rc, rc_inspect, err[-300:]))
    return wrong


@pytest.mark.timeout(900)
def test_inspect_and_decrypt_on_every_entry(corpus, tmp_path, capsys):
    """One command per entry: a valid file decrypts to its plaintext; anything else is exit 2 with
    one line naming it; no temporary plaintext is ever left."""
    with permissions_enforced():
        wrong = decrypt_and_inspect([i for i in corpus["items"] if i["cls"] not in ("leftover", "shrinks")],
                                    corpus["kms_uri"], tmp_path, capsys)
    assert not wrong, wrong[:10]


def test_a_file_cut_to_its_last_tag_fails_decrypt_and_reencrypt(corpus, tmp_path, capsys):
    """Rule F-18: the end authenticates. Read without that check, such a file is empty: decrypt would
    write 0 bytes and reencrypt would seal it as a valid empty file."""
    cut = [i for i in corpus["items"] if i["end_only"]]
    assert len(cut) == 2
    (tmp_path / "out").mkdir()
    wrong = decrypt_and_inspect(cut, corpus["kms_uri"], tmp_path / "out", capsys)
    for i in cut:
        shutil.copy(i["abs"], tmp_path / os.path.basename(i["path"]))
    assert main(["reencrypt", "-q", "--from", corpus["kms_uri"], str(tmp_path)]) == 1
    assert capsys.readouterr().out.count("FAILED ") == 2 and not wrong


def test_lifecycle_commands_name_every_entry_they_cannot_check(corpus, capsys):
    """keys usage / min-version --check / destroy --check read headers only; rewrap --verify and
    reencrypt read every byte: each names every entry it could not handle and exits 1."""
    uri, tree, items = corpus["kms_uri"], corpus["tree"], corpus["items"]
    problems = [i for i in items if i["cls"] in WALK_PROBLEMS]
    with permissions_enforced() as enforced:
        assert enforced, "cannot make file permissions apply on this machine (CAP_DAC_OVERRIDE)"
        problems += [i for i in items if i["cls"] == "unreadable-file"]
        for argv, start in ((["keys", "usage", "--kms", uri, tree], "FAILED "),
                            (["keys", "min-version", uri, "2", "--check", tree], "NOT CHECKED "),
                            (["keys", "destroy", uri, "--check", tree, "--yes"], "NOT CHECKED ")):
            assert main(argv) == 1, argv
            out, err = capsys.readouterr()
            assert not set(RAW) & set(out + err)
            missing = [i["path"] for i in problems if named(out, i["abs"], start) != 1]
            assert not missing, (argv, missing)
        assert LocalKeyring(uri).min_decrypt_version == 1
        assert LocalKeyring(uri).versions()["1"]["state"] == "enabled"
        LocalKeyring(uri).rotate()  # every valid file now needs a rewrap; --verify reads all of it
        for argv, done in ((["rewrap", "-q", "--verify", "--from", uri, tree], "rewrapped"),
                           (["reencrypt", "-q", "--from", uri, tree], "reencrypted")):
            assert main(argv) == 1, argv
            out, err = capsys.readouterr()
            assert not set(RAW) & set(out + err) and "unexpected error" not in out
            wrong = [i["path"] for i in items if i["expect"] == "reject" and i["cls"] != "shrinks"
                     and (enforced or i["cls"] != "unreadable-file")
                     and named(out, i["abs"], "FAILED ") + named(out, i["abs"], "skipped ") != 1]
            wrong += [i["path"] for i in items if i["expect"] == "valid" and named(out, i["abs"], "FAILED ")]
            assert not wrong, (argv, wrong[:20])
            good = sum(1 for i in items if i["expect"] == "valid" or i["cls"] == "shrinks"
                       or i["cls"] == "unreadable-file" and not enforced)
            n = int(out.splitlines()[-1].split()[1].rstrip(","))  # "reencrypted 20, already current 0, ..."
            assert n == good, out[-300:]

"""The CLI on hostile trees (issue 11 §4): one line per bad entry, the run goes on, the exit status
says something failed; never a traceback, a hang, a signal death or a silent skip."""
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.logsafe import RedactingFilter
from heliosdb_flink_crypto.config import parse_size
from heliosdb_flink_crypto.errors import KmsError
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.kms import local as local_kms
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle import files
from heliosdb_flink_crypto.localfile import PositionalFile
from heliosdb_flink_crypto.text import shown
from heliosdb_flink_crypto.testing.corpus import ESCAPES, reheader, slots
from heliosdb_flink_crypto.testing.hostile import bad_keyrings, make_device, make_socket, permissions_enforced


def seal(path, keyring_uri, data=b"state " * 20, *extra):
    src = path.parent / ".src"
    path.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    assert main(["encrypt", "--kms", keyring_uri, "--segment-size", "16", *extra, str(src), str(path)]) == 0
    src.unlink()
    return path.read_bytes()


def lines(text, start):
    return [line for line in text.splitlines() if line.startswith(start)]


def test_a_header_only_file_is_one_failure_and_the_tree_is_still_checked(tmp_path, keyring_uri, capsys):
    """It ended verify with 'BufferError: cannot close exported pointers exist' (an mmap closed while
    a view of it lived) and the files after it were never checked."""
    raw = seal(tmp_path / "t" / "a-header-only", keyring_uri)
    (tmp_path / "t" / "a-header-only").write_bytes(raw[:parse(raw).length])
    seal(tmp_path / "t" / "b-good", keyring_uri)
    capsys.readouterr()
    assert main(["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t")]) == 1
    out = capsys.readouterr().out
    assert lines(out, "FAILED ") == [f"FAILED {tmp_path}/t/a-header-only: not a valid encrypted file: "
                                     "truncated: no final segment"]
    assert "verified 1 of 2 files; 1 failed" in out


def test_a_file_that_shrinks_while_read_fails_authentication_not_the_process(tmp_path, keyring_uri):
    """A memory map of a file cut meanwhile kills the process with SIGBUS; positional reads see a
    short file and fail authentication, naming it."""
    victim = tmp_path / "t" / "shrinks"
    seal(victim, keyring_uri, os.urandom(64 * 1024), "--segment-size", "4kb")
    seal(tmp_path / "t" / "steady", keyring_uri)
    script = textwrap.dedent(f"""
        import sys
        from heliosdb_flink_crypto.testing.hostile import shrink_on_unwrap
        shrink_on_unwrap({str(victim)!r}, 1000)
        from heliosdb_flink_crypto.cli import main
        sys.exit(main(["verify", "-q", "--kms", {keyring_uri!r}, {str(tmp_path / "t")!r}]))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)  # not -7 (SIGBUS)
    assert lines(r.stdout, "FAILED ") == [f"FAILED {victim}: authentication failed (tampered, truncated "
                                          "or wrong key)"]
    assert "verified 1 of 2 files; 1 failed" in r.stdout and os.path.getsize(victim) == 1000


@pytest.mark.timeout(120)  # a FIFO opened for reading waits for a writer forever
def test_fifo_socket_device_and_folder_never_hang_and_are_named(tmp_path, keyring_uri, capsys):
    t = tmp_path / "t"
    seal(t / "good", keyring_uri)
    os.mkfifo(t / "fifo")
    make_socket(str(t / "socket"))
    node = make_device(str(t / "null"))  # else a link to /dev/null: a link inside a tree is not followed
    capsys.readouterr()
    assert main(["verify", "-q", "--kms", keyring_uri, str(t)]) == 1
    out = capsys.readouterr().out
    in_tree = "a character device, not a regular file" if node else "a symbolic link inside a tree"
    assert lines(out, "FAILED ") == [f"FAILED {t}/fifo: a FIFO, not a regular file",
                                     f"FAILED {t}/null: {in_tree}" + ("" if node else " (not followed: name "
                                                                      "its target instead)"),
                                     f"FAILED {t}/socket: a socket, not a regular file"]
    for name, what in (("fifo", "a FIFO"), ("socket", "a socket"), ("null", "a character device"), ("", "a directory")):
        for argv in (["inspect", str(t / name)], ["decrypt", "--kms", keyring_uri, str(t / name), str(tmp_path / "out")],
                     ["verify", "-q", "--kms", keyring_uri, str(t / name)] if name else ["inspect", str(t)]):
            assert main(argv) in (1, 2), argv
            out, err = capsys.readouterr()
            assert f"{what}, not a regular file" in out + err, argv
    assert not (tmp_path / "out").exists() and sorted(os.listdir(tmp_path)) == ["keyring.json", "t"]
    for argv in (["keys", "usage", "--kms", keyring_uri, str(t)], ["rewrap", "-q", "--kms", keyring_uri, str(t)],
                 ["reencrypt", "-q", "--kms", keyring_uri, str(t)],
                 ["keys", "min-version", keyring_uri, "2", "--check", str(t)],
                 ["keys", "destroy", keyring_uri, "--check", str(t), "--yes"]):
        assert main(argv) == 1, argv
        out = capsys.readouterr().out
        for name, what in (("fifo", "a FIFO"), ("socket", "a socket"), ("null", in_tree)):
            assert len([x for x in out.splitlines() if f"{t}/{name}: " in x and what in x]) == 1, (argv, out)
    assert LocalKeyring(keyring_uri).min_decrypt_version == 1
    assert LocalKeyring(keyring_uri).versions()["1"]["state"] == "enabled"


def test_what_a_walk_cannot_enter_is_a_failure_and_check_refuses(tmp_path, keyring_uri, capsys):
    """An unreadable sub-folder was skipped silently: min-version --check passed, and the file in it,
    which needs version 1, could never be restored again."""
    t = tmp_path / "t"
    seal(t / "chk-1" / "_metadata", keyring_uri)
    seal(t / "locked" / "state", keyring_uri)
    os.symlink("loop-b", t / "loop-a")
    os.symlink("loop-a", t / "loop-b")
    os.symlink("gone", t / "dangling")
    LocalKeyring(keyring_uri).rotate()
    assert main(["rewrap", "-q", "--kms", keyring_uri, str(t / "chk-1")]) == 0
    os.chmod(t / "locked", 0)
    capsys.readouterr()
    try:
        with permissions_enforced() as enforced:
            assert enforced, "cannot make file permissions apply on this machine (CAP_DAC_OVERRIDE)"
            assert main(["keys", "min-version", keyring_uri, "2", "--check", str(t)]) == 1
            out = capsys.readouterr().out
            assert lines(out, "NOT CHECKED ") == [f"NOT CHECKED {t}/dangling: a dangling symbolic link",
                                                  f"NOT CHECKED {t}/locked: folder not read: Permission denied",
                                                  f"NOT CHECKED {t}/loop-a: a symbolic link loop",
                                                  f"NOT CHECKED {t}/loop-b: a symbolic link loop"]
            assert LocalKeyring(keyring_uri).min_decrypt_version == 1  # refused
            assert main(["keys", "destroy", keyring_uri, "--version", "1", "--check", str(t), "--yes"]) == 1
            assert "refusing to destroy version 1" in capsys.readouterr().out
            assert LocalKeyring(keyring_uri).versions()["1"]["state"] == "enabled"
            for argv in (["verify", "-q", "--kms", keyring_uri, str(t)], ["keys", "usage", "--kms", keyring_uri, str(t)],
                         ["rewrap", "-q", "--kms", keyring_uri, str(t)]):
                assert main(argv) == 1, argv
                out = capsys.readouterr().out
                assert f"{t}/locked: folder not read: Permission denied" in out, argv
                assert f"{t}/loop-a: a symbolic link loop" in out and f"{t}/dangling: a dangling" in out
    finally:
        os.chmod(t / "locked", 0o700)


def test_untrusted_strings_are_escaped_before_the_terminal(tmp_path, keyring_uri, capsys):
    seal(tmp_path / "t" / "tenant", keyring_uri, b"x", "--tenant", ESCAPES)
    raw = seal(tmp_path / "t" / f"name{ESCAPES}", keyring_uri)
    (tmp_path / "t" / "forged").write_bytes(reheader(raw, lambda h: slots(h, kms_uri=f"local:///{ESCAPES}")))
    bad_name = os.fsencode(tmp_path / "t") + b"/not-utf8-\xff"
    with open(bad_name, "wb") as f:
        f.write(b"junk")
    esc = "\\x1b]0;owned\\x07\\x1b[2J\\r\\u202e"
    capsys.readouterr()
    runs = [(["inspect", str(tmp_path / "t" / "tenant")], 0, f"tenant             {esc}"),
            (["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t")], 1, f"FAILED {tmp_path}/t/forged: key "
             f"unavailable: its key slots name only KMS URIs that are not trusted here: local:///{esc}."),
            (["keys", "usage", "--kms", keyring_uri, str(tmp_path / "t")], 0, f"not trusted here: local:///{esc} "),
            (["inspect", str(tmp_path / "t" / f"name{ESCAPES}")], 0, f"path               {tmp_path}/t/name{esc}"),
            (["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t" / "not-utf8-\udcff")], 1,
             f"FAILED {tmp_path}/t/not-utf8-\\xff: not a valid encrypted file")]
    for argv, rc, want in runs:
        assert main(argv) == rc, argv
        out, err = capsys.readouterr()
        assert want in out.splitlines() or any(x.startswith(want) for x in out.splitlines()), (argv, out)
        for ch in "\x1b\x07\r\u202e\udcff":
            assert ch not in out + err, (argv, ch)


def test_decrypt_removes_its_temporary_plaintext_on_every_failure(tmp_path, keyring_uri, capsys):
    seal(tmp_path / "in" / "e", keyring_uri)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "taken").mkdir()  # a folder where the plaintext should go: the rename fails
    assert main(["decrypt", "--kms", keyring_uri, str(tmp_path / "in" / "e"), str(tmp_path / "out" / "taken")]) == 2
    assert "Is a directory" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == ["taken"] and not os.listdir(tmp_path / "out" / "taken")


def test_the_keyring_is_rewritten_through_mkstemp_and_never_through_a_link(tmp_path, keyring_uri):
    path = keyring_uri[len("local://"):]
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(victim, f"{path}.tmp{os.getpid()}")  # the name the rewrite used to write to
    os.symlink(victim, path + ".lock")
    with pytest.raises(OSError):  # the lock file is a link: refused
        LocalKeyring(keyring_uri).rotate()
    os.unlink(path + ".lock")
    LocalKeyring(keyring_uri).rotate()
    assert victim.read_text() == "precious" and not os.path.islink(path)
    assert LocalKeyring(keyring_uri).current_key_version() == "2"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert [n for n in os.listdir(tmp_path) if ".tmp" in n] == [f"keyring.json.tmp{os.getpid()}"]
    os.symlink(path, tmp_path / "linked.json")
    with pytest.raises(KmsError, match="keyring path is a symbolic link; refused"):
        LocalKeyring(f"local://{tmp_path}/linked.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(KmsError, match="keyring path is a FIFO; refused"):
        LocalKeyring(f"local://{tmp_path}/fifo.json")


def test_a_keyring_of_the_wrong_shape_is_one_clear_error_per_file(tmp_path, keyring_uri, capsys):
    seal(tmp_path / "t" / "a", keyring_uri)
    seal(tmp_path / "t" / "b", keyring_uri)
    path = keyring_uri[len("local://"):]
    good = open(path, "rb").read()
    capsys.readouterr()
    for ring in bad_keyrings(str(tmp_path / "rings")):
        with pytest.raises(KmsError, match="not a keyring file of format 1: "):
            LocalKeyring(f"local://{ring['path']}")
        os.replace(ring["path"], path)  # the keyring the files name, now of the wrong shape
        for argv in (["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t")],
                     ["rewrap", "-q", "--from", keyring_uri, str(tmp_path / "t")]):
            assert main(argv) == 1, (ring, argv)
            out = capsys.readouterr().out
            assert len(lines(out, "FAILED ")) == 2 and out.count("not a keyring file of format 1: ") == 2, out
        assert main(["keys", "min-version", keyring_uri, "2"]) == 2, ring
        assert "not a keyring file of format 1: " in capsys.readouterr().err
    with open(path, "wb") as f:
        f.write(good)
    assert main(["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t")]) == 0


def test_version_numbers_are_ascii_digits_only(tmp_path, keyring_uri, capsys):
    """int() and str.isdigit() take other scripts' digits: int('\u0661\u0662') == 12."""
    raw = seal(tmp_path / "t" / "a", keyring_uri)
    (tmp_path / "t" / "a").write_bytes(reheader(raw, lambda h: slots(h, key_version="\u0661")))
    capsys.readouterr()
    assert main(["keys", "min-version", keyring_uri, "2", "--check", str(tmp_path / "t")]) == 1
    out = capsys.readouterr().out  # not counted as version 1: it is no version at all
    assert lines(out, "NOT CHECKED ") == [f"NOT CHECKED {tmp_path}/t/a: key version '\u0661' is not a number"]
    with pytest.raises(SystemExit):
        main(["keys", "min-version", keyring_uri, "\u0662"])
    assert "is not a whole number in ASCII digits" in capsys.readouterr().err
    assert LocalKeyring(keyring_uri).min_decrypt_version == 1
    with pytest.raises(ValueError):
        parse_size("\u0666\u0664kb")
    ring = json.loads(open(keyring_uri[len("local://"):]).read())
    ring["versions"]["\u0662"] = ring["versions"]["1"]
    with open(keyring_uri[len("local://"):], "w") as f:
        json.dump(ring, f)
    with pytest.raises(KmsError, match="version name '\u0662' is not a number"):
        LocalKeyring(keyring_uri)


def test_positional_reader_refuses_what_is_not_a_regular_file(tmp_path, keyring_uri):
    crypto = CheckpointCrypto([keyring_uri])
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(tmp_path / "s"))
        with pytest.raises(OSError, match="a socket, not a regular file"):
            crypto.open_path(str(tmp_path / "s"))
    finally:
        s.close()
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(OSError, match="a symbolic link loop, not a regular file"):
        crypto.open_path(str(tmp_path / "loop"))


def test_positional_file_reads_by_position(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")
    with PositionalFile.open(str(p)) as f:
        assert f.readable() and f.seekable() and not f.writable() and f.name == str(p)
        assert f.seek(3) == 3 and f.read(2) == b"34" and f.tell() == 5
        assert f.seek(-1, os.SEEK_CUR) == 4 and f.seek(-2, os.SEEK_END) == 8 and f.read() == b"89"
        os.truncate(p, 4)  # shrinks: short reads, no signal
        assert f.seek(2) == 2 and f.read(100) == b"23" and f.read(100) == b""
    with pytest.raises(OSError, match="a symbolic link, not a regular file"):
        os.symlink(p, tmp_path / "link")
        PositionalFile.open(str(tmp_path / "link"), follow=False)


def test_the_walk_names_entries_that_vanish_or_cannot_be_read(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"x")
    real = os.lstat

    def lstat(path, *a, **kw):
        if path.endswith("/a"):
            raise FileNotFoundError(2, "No such file or directory")
        if path.endswith("/b"):
            raise PermissionError(13, "Permission denied")
        return real(path, *a, **kw)
    monkeypatch.setattr(files.os, "lstat", lstat)
    assert list(files.iter_files([str(tmp_path)])) == [
        files.Entry(f"{tmp_path}/a", note="deleted meanwhile"),
        files.Entry(f"{tmp_path}/b", "not read: Permission denied"), files.Entry(f"{tmp_path}/c")]
    monkeypatch.undo()
    (tmp_path / "d").mkdir()  # a folder met again (a bind mount of an ancestor): not walked twice
    st = os.stat(tmp_path / "d")
    assert list(files._walk(str(tmp_path), {(st.st_dev, st.st_ino)}))[3] == \
        files.Entry(f"{tmp_path}/d", "a folder loop (seen before on this walk)")


def test_a_bug_is_one_line_never_a_traceback(tmp_path, keyring_uri, capsys, monkeypatch):
    seal(tmp_path / "t" / "a", keyring_uri)
    seal(tmp_path / "t" / "b", keyring_uri)

    def broken(self, path, **kw):
        if path.endswith("/a"):
            raise TypeError("a bug")
        return real(self, path, **kw)
    real = CheckpointCrypto.open_path
    monkeypatch.setattr(CheckpointCrypto, "open_path", broken)
    capsys.readouterr()
    assert main(["verify", "-q", "--kms", keyring_uri, str(tmp_path / "t")]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {tmp_path}/t/a: unexpected error (TypeError: a bug); this is a bug" in out
    assert "verified 1 of 2 files; 1 failed" in out
    assert main(["decrypt", "--kms", keyring_uri, str(tmp_path / "t" / "a"), str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected error (TypeError: a bug)" in err and "Traceback" not in err


def test_a_failed_keyring_write_leaves_no_temporary_file(tmp_path, keyring_uri, monkeypatch):
    def fail(*a):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(local_kms.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        LocalKeyring(keyring_uri).rotate()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["keyring.json", "keyring.json.lock"]
    assert LocalKeyring(keyring_uri).current_key_version() == "1"


def test_log_lines_are_cleaned_too():
    record = logging.LogRecord("heliosdb_flink_crypto.x", logging.WARNING, __file__, 1, "opened %s",
                               (f"/ckpt/{ESCAPES}\nERROR forged: a second record",), None)
    assert RedactingFilter().filter(record)
    assert logging.Formatter("%(message)s").format(record) == \
        "opened /ckpt/\\x1b]0;owned\\x07\\x1b[2J\\r\\u202e\\nERROR forged: a second record"
    assert shown("\U000e0001 \udcff ok") == "\\U000e0001 \\xff ok"

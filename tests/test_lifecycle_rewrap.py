"""rewrap (header only) and reencrypt (new DEKs) over checkpoint directories: crash-safe, per-file errors."""
import os
import subprocess
import sys
import textwrap

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, KeyAccessError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.format import SUITE_AES_CBC_HMAC, parse
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle import rewrap_file
from heliosdb_flink_crypto.lifecycle.files import TMP_MARK, replacing
from heliosdb_flink_crypto.observe import BUS


def make_tree(root, crypto, n=4, size=5000, tenant=None):
    files = {}
    for i in range(n):
        p = root / f"chk-{i}" / ("_metadata" if i % 2 else f"op-{i}")
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size + i)
        with open(p, "wb") as f, crypto.writer(f, tenant=tenant) as w:
            w.write(data)
        files[p] = data
    return files


def plain(path, *uris):
    c = CheckpointCrypto(decrypt_uris=uris)
    with open(path, "rb") as f, c.reader(f, path=str(path)) as r:
        return r.read()


def header(path):
    return parse(path.read_bytes())


@pytest.fixture
def events():
    got = []
    BUS.subscribe(got.append)
    yield got
    BUS.unsubscribe(got.append)


def test_rewrap_after_rotation_rewrites_headers_only(tmp_path, keyring_uri, crypto, events, capsys):
    files = make_tree(tmp_path / "cp", crypto)
    before = {p: p.read_bytes() for p in files}
    (tmp_path / "cp" / "README").write_text("not encrypted")
    LocalKeyring(keyring_uri).rotate()
    assert main(["rewrap", "--kms", keyring_uri, str(tmp_path / "cp")]) == 0
    out, err = capsys.readouterr()
    assert "rewrapped 4, already current 0, skipped 1, failed 0 of 5 files" in out
    assert "rewrap: 5 files" in err  # progress on stderr
    for p, data in files.items():
        old_h, new_h = parse(before[p]), header(p)
        assert [s.key_version for s in old_h.slots] == ["1"] and [s.key_version for s in new_h.slots] == ["2"]
        assert p.read_bytes()[new_h.length:] == before[p][old_h.length:]  # body byte for byte
        assert (new_h.dek_id, new_h.salt) == (old_h.dek_id, old_h.salt)
        assert plain(p, keyring_uri) == data
    rewraps = [e for e in events if e["op"] == "rewrap"]
    assert len(rewraps) == 4 and all(e["key_version"] == "2" and e["outcome"] == "ok" for e in rewraps)
    assert not list((tmp_path / "cp").rglob(f"*{TMP_MARK}*"))
    assert main(["rewrap", "-q", "--kms", keyring_uri, str(tmp_path / "cp")]) == 0  # idempotent
    assert "rewrapped 0, already current 4" in capsys.readouterr().out


def test_rewrap_to_another_kms_then_the_old_one_can_go(tmp_path, keyring_uri, crypto):
    files = make_tree(tmp_path / "cp", crypto, n=2)
    new_uri = f"local://{tmp_path}/a-much-longer-name-for-the-new-keyring.json"
    LocalKeyring.create(new_uri)
    modes = {p: os.stat(p).st_mode for p in files}
    assert main(["rewrap", "-q", "--from", keyring_uri, "--to", new_uri, "--to", keyring_uri,
                 str(tmp_path / "cp")]) == 0
    for p in files:
        assert [s.kms_uri for s in header(p).slots] == [new_uri, keyring_uri]
        assert os.stat(p).st_mode == modes[p]
    assert main(["rewrap", "-q", "--from", keyring_uri, "--to", new_uri, f"file://{tmp_path}/cp"]) == 0
    LocalKeyring(keyring_uri).destroy()
    for p, data in files.items():
        assert [s.kms_uri for s in header(p).slots] == [new_uri]
        assert plain(p, new_uri) == data


def test_failing_files_are_named_and_the_rest_still_done(tmp_path, keyring_uri, crypto, capsys):
    files = make_tree(tmp_path / "cp", crypto, n=3)
    bad_header, bad_body, good = list(files)
    raw = bytearray(bad_header.read_bytes())
    raw[80 + 2] ^= 1  # the name length byte: the header no longer parses
    bad_header.write_bytes(bytes(raw))
    raw = bytearray(bad_body.read_bytes())
    raw[-5] ^= 1
    bad_body.write_bytes(bytes(raw))
    tampered_body = bytes(raw)
    other = f"local://{tmp_path}/other.json"
    LocalKeyring.create(other)
    LocalKeyring(keyring_uri).rotate()
    assert main(["rewrap", "-q", "--verify", "--kms", keyring_uri, str(tmp_path / "cp")]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {bad_header}" in out and f"FAILED {bad_body}: " in out and "authentication failed" in out
    assert "rewrapped 1, already current 0, skipped 0, failed 2 of 3" in out
    assert bad_body.read_bytes() == tampered_body  # left exactly as it was
    assert header(good).slots[0].key_version == "2"
    # --from: only the named KMS may unwrap
    assert main(["rewrap", "-q", "--from", other, str(good)]) == 1
    assert "not trusted here" in capsys.readouterr().out
    assert main(["rewrap", "-q", "--from", other, str(tmp_path / "nothing-here")]) == 1


def test_a_crash_just_before_the_rename_leaves_the_old_file_whole(tmp_path, keyring_uri, crypto):
    files = make_tree(tmp_path / "cp", crypto, n=1, size=300_000)
    (p, data), = files.items()
    before = p.read_bytes()
    LocalKeyring(keyring_uri).rotate()
    script = textwrap.dedent(f"""
        import os, signal
        from heliosdb_flink_crypto import CheckpointCrypto
        from heliosdb_flink_crypto.lifecycle import rewrap_file
        os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)  # die at the worst moment
        rewrap_file({str(p)!r}, CheckpointCrypto(decrypt_uris=[{keyring_uri!r}]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9
    leftovers = list(p.parent.glob(f"*{TMP_MARK}*"))
    assert len(leftovers) == 1 and p.read_bytes() == before and plain(p, keyring_uri) == data
    # the leftover is not taken for a checkpoint file
    assert main(["rewrap", "-q", "--kms", keyring_uri, str(tmp_path / "cp")]) == 0
    assert header(p).slots[0].key_version == "2" and plain(p, keyring_uri) == data


def test_a_failed_write_removes_the_temp_file_and_keeps_the_original(tmp_path, keyring_uri, crypto, monkeypatch):
    files = make_tree(tmp_path / "cp", crypto, n=1)
    (p, data), = files.items()
    before = p.read_bytes()
    LocalKeyring(keyring_uri).rotate()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        rewrap_file(str(p), CheckpointCrypto(decrypt_uris=[keyring_uri]))
    monkeypatch.undo()
    assert p.read_bytes() == before and not list(p.parent.glob(f"*{TMP_MARK}*"))


def test_a_file_changed_during_the_rewrite_is_left_alone(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"v1")
    st = os.stat(p)
    with pytest.raises(OSError, match="changed while being rewritten"):
        with replacing(str(p), st) as out:
            out.write(b"rewritten")
            p.write_bytes(b"v2 written by someone else")
    assert p.read_bytes() == b"v2 written by someone else" and os.listdir(tmp_path) == ["f"]


def test_reencrypt_gives_every_file_a_new_data_key(tmp_path, keyring_uri, events, capsys):
    crypto = CheckpointCrypto([keyring_uri], segment_size=1024, suite=SUITE_AES_CBC_HMAC, tenant="acme")
    files = make_tree(tmp_path / "cp", crypto, n=3, size=10_000)
    old = {p: header(p) for p in files}
    assert len({h.dek_id for h in old.values()}) == 1  # one cached DEK sealed them all
    new_uri = f"local://{tmp_path}/fresh.json"
    LocalKeyring.create(new_uri)
    assert main(["reencrypt", "--from", keyring_uri, "--to", new_uri, str(tmp_path / "cp")]) == 0
    assert "reencrypted 3, already current 0, skipped 0, failed 0 of 3" in capsys.readouterr().out
    for p, data in files.items():
        h = header(p)
        assert h.dek_id != old[p].dek_id and h.salt != old[p].salt
        assert (h.tenant, h.suite, h.segment_size) == ("acme", SUITE_AES_CBC_HMAC, 1024)
        assert [s.kms_uri for s in h.slots] == [new_uri]
        assert plain(p, new_uri) == data
    assert [e["op"] for e in events].count("reencrypt") == 3
    LocalKeyring(keyring_uri).destroy()  # the compromised key can go: nothing needs it
    with pytest.raises(KeyAccessError):
        plain(next(iter(files)), keyring_uri)


def test_reencrypt_refuses_a_tampered_file_and_keeps_it(tmp_path, keyring_uri, crypto, capsys):
    files = make_tree(tmp_path / "cp", crypto, n=2, size=3000)
    p = next(iter(files))
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    p.write_bytes(bytes(raw))
    assert main(["reencrypt", "-q", "--kms", keyring_uri, str(tmp_path / "cp")]) == 1
    assert f"FAILED {p}: " in capsys.readouterr().out
    assert p.read_bytes() == bytes(raw) and not list(p.parent.glob(f"*{TMP_MARK}*"))

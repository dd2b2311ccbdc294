"""Every file is bound to its place (format rule F-24): a file swapped in from another checkpoint, an
older copy rolled back over a newer one, or another job's ``_metadata`` fails naming the file; a
savepoint folder stays relocatable; deliberate moves are re-bound (``rewrap --rebind``, the shim's
rename); version 1 files (no binding) are read only where enabled and become version 2 on rewrap."""
import json
import os
import shutil
from dataclasses import replace

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto, FormatError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.crypto import name_for
from heliosdb_flink_crypto.engine import DataKey, EncryptingWriter, new_header
from heliosdb_flink_crypto.errors import MisplacedFileError
from heliosdb_flink_crypto.flink import hooks
from heliosdb_flink_crypto.format import MAX_NAME, parse, serialize_unsigned
from heliosdb_flink_crypto.store import EncryptedCheckpointStore

SEG = 64


def write(crypto, path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, crypto.writer(f) as w:  # bound to the name its path gives
        w.write(data)
    return data


def read(crypto, path, **kw):
    with crypto.open_path(str(path), **kw) as r:
        return r.read()


@pytest.fixture(autouse=True)
def trusted(monkeypatch, keyring_uri):
    """The CLI trusts only configured KMS URIs: the test keyring, from the environment."""
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", keyring_uri)
    monkeypatch.delenv("HELIOSDB_CRYPTO_CONFIG", raising=False)


@pytest.fixture
def job(tmp_path, crypto):
    """Two retained checkpoints of a job: a state file each and a _metadata each."""
    root = tmp_path / "cp" / "5f2b1c"
    files = {}
    for n in (6, 7):
        files[f"state-{n}"] = root / f"chk-{n}" / f"9f1c2a4e-000{n}"
        files[f"meta-{n}"] = root / f"chk-{n}" / "_metadata"
        write(crypto, files[f"state-{n}"], os.urandom(500))
        write(crypto, files[f"meta-{n}"], os.urandom(300))
    return files


def test_files_are_sealed_for_the_name_their_path_gives(job):
    assert parse(job["state-7"].read_bytes()).name == "9f1c2a4e-0007"
    assert parse(job["meta-7"].read_bytes()).name == "5f2b1c/chk-7/_metadata"


@pytest.mark.parametrize("older,newer", [("state-6", "state-7"), ("meta-6", "meta-7")])
def test_an_older_file_copied_over_a_newer_one_fails_naming_it(job, crypto, older, newer):
    shutil.copy(job[older], job[newer])
    with pytest.raises(MisplacedFileError, match=str(job[newer])) as e:
        read(crypto, job[newer])
    assert isinstance(e.value, AuthenticationError)  # every handler of authentication failures fails closed
    assert "sealed for another place" in str(e.value) and "rewrap --rebind" in str(e.value)


def test_another_jobs_metadata_is_refused(tmp_path, job, crypto):
    other = tmp_path / "cp" / "77aa00" / "chk-7" / "_metadata"
    write(crypto, other, os.urandom(300))
    shutil.copy(other, job["meta-7"])
    with pytest.raises(MisplacedFileError):
        read(crypto, job["meta-7"])


def test_a_savepoint_folder_stays_relocatable(tmp_path, crypto):
    sp = tmp_path / "savepoints" / "savepoint-ab12cd-0123456789ab"
    data = {"_metadata": write(crypto, sp / "_metadata", os.urandom(100)),
            "3c1d0e9f": write(crypto, sp / "3c1d0e9f", os.urandom(100))}
    moved = tmp_path / "elsewhere" / "deeper" / sp.name
    shutil.copytree(sp, moved)
    for name, content in data.items():
        assert read(crypto, moved / name) == content


def test_the_store_refuses_a_checkpoint_copied_over_another(tmp_path, crypto):
    store = EncryptedCheckpointStore(f"file://{tmp_path}/ckpt", crypto)
    store.save(1, b"older state")
    store.save(2, b"newer state")
    shutil.copy(tmp_path / "ckpt" / "chk-1.hfce", tmp_path / "ckpt" / "chk-2.hfce")
    assert store.load(1) == b"older state"
    with pytest.raises(MisplacedFileError, match="chk-2.hfce"):
        store.load(2)


def test_names_are_bounded_and_checked_after_the_header_authenticated(tmp_path, crypto):
    assert len(crypto.encrypt_bytes(b"x", name="n" * MAX_NAME)) > MAX_NAME
    with pytest.raises(ValueError, match="name is 1025 bytes"):
        crypto.encrypt_bytes(b"x", name="n" * (MAX_NAME + 1))
    h = parse(crypto.encrypt_bytes(b"x"))
    for version, name in ((1, "x"), (3, "")):  # version 1 has no name field; no version 3 exists
        with pytest.raises(ValueError, match=f"format version {version} cannot hold"):
            serialize_unsigned(replace(h, version=version, name=name))
    ct = bytearray(crypto.encrypt_bytes(b"x", name="abc"))
    at = bytes(ct).index(b"abc")
    ct[at] = ord("x")  # "xbc": now it names the expected place, but the header MAC fails first
    with pytest.raises(AuthenticationError) as e:
        crypto.decrypt_bytes(bytes(ct), name="xbc")
    assert type(e.value) is AuthenticationError


def test_cli_encrypt_binds_to_the_output_and_decrypt_checks_the_input(tmp_path, keyring_uri, capsys):
    src, enc = tmp_path / "plain", tmp_path / "chk-3" / "state-a"
    enc.parent.mkdir()
    src.write_bytes(b"state" * 100)
    assert main(["encrypt", "--kms", keyring_uri, str(src), str(enc)]) == 0
    assert main(["inspect", "--json", str(enc)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "state-a" and info["format_version"] == 2
    moved = tmp_path / "state-b"
    shutil.copy(enc, moved)
    assert main(["decrypt", str(moved), str(tmp_path / "out")]) == 2
    assert "sealed for another place" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["decrypt", "--expect-name", "state-a", str(moved), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_bytes() == b"state" * 100
    assert main(["verify", "-q", str(moved)]) == 1
    assert f"FAILED {moved}: sealed for another place" in capsys.readouterr().out
    assert main(["verify", "-q", "--expect-name", "state-a", str(moved)]) == 0
    assert main(["encrypt", "--kms", keyring_uri, "--name", "custom", str(src), str(enc)]) == 0
    assert parse(enc.read_bytes()).name == "custom"


def test_rewrap_keeps_names_and_rebind_binds_a_moved_tree(tmp_path, job, crypto, capsys):
    moved = tmp_path / "restored-copy"
    shutil.copytree(job["state-7"].parent, moved / "chk-7")  # a checkpoint copied out of its job folder
    assert main(["verify", "-q", str(moved)]) == 1
    assert main(["rewrap", "-q", str(moved)]) == 1  # a rewrap alone does not accept misplaced files
    assert "sealed for another place" in capsys.readouterr().out
    assert main(["rewrap", "-q", "--rebind", str(moved)]) == 0
    assert "rewrapped 1, already current 1" in capsys.readouterr().out  # the state file kept its name
    assert parse((moved / "chk-7" / "_metadata").read_bytes()).name == "restored-copy/chk-7/_metadata"
    assert main(["verify", "-q", str(moved)]) == 0
    assert main(["rewrap", "-q", str(job["state-7"].parent)]) == 0  # nothing to do: names kept
    assert "already current 2" in capsys.readouterr().out
    assert main(["reencrypt", "-q", str(job["meta-7"])]) == 0
    assert parse(job["meta-7"].read_bytes()).name == "5f2b1c/chk-7/_metadata"


def write_v1(crypto, path, data):
    """A version 1 file (as written before version 2) under a real KMS-wrapped data key."""
    dek, dek_id = os.urandom(32), os.urandom(16)
    slots, _ = crypto.wrap_dek(dek, dek_id, "", crypto.kms_uris)
    _, raw, keys = new_header(DataKey(dek_id, dek, tuple(slots)), crypto.suite, crypto.segment_size, version=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, EncryptingWriter(f, raw, keys, crypto.segment_size) as w:
        w.write(data)
    return data


def test_version_1_is_read_only_where_enabled(tmp_path, keyring_uri, crypto, capsys):
    p = tmp_path / "old" / "chk-1" / "_metadata"
    data = write_v1(crypto, p, os.urandom(1000))
    with pytest.raises(FormatError, match="heliosdb.crypto.format.read-v1"):
        read(crypto, p)
    assert read(CheckpointCrypto([keyring_uri], read_v1=True), p) == data
    assert main(["decrypt", str(p), str(tmp_path / "out")]) == 2
    assert "--read-v1" in capsys.readouterr().err
    assert main(["decrypt", "--read-v1", str(p), str(tmp_path / "out")]) == 0
    assert main(["verify", "-q", str(p)]) == 1
    assert main(["verify", "-q", "--read-v1", str(p)]) == 0


@pytest.mark.parametrize("command", ["rewrap", "reencrypt"])
def test_rewrap_and_reencrypt_turn_version_1_into_version_2_bound_to_its_path(tmp_path, crypto, command):
    p = tmp_path / "old" / "chk-1" / "_metadata"
    data = write_v1(crypto, p, os.urandom(3 * SEG + 7))
    before = parse(p.read_bytes())
    assert main([command, "-q", str(p)]) == 1  # version 1 reading is off
    assert main([command, "-q", "--read-v1", str(p)]) == 0
    after = parse(p.read_bytes())
    assert (after.version, after.name) == (2, "old/chk-1/_metadata")
    assert (after.dek_id == before.dek_id) == (command == "rewrap")  # rewrap keeps the data key
    assert read(crypto, p) == data


def conf(uri, **extra):
    c = {"heliosdb.crypto.kms.uri": uri, "heliosdb.crypto.segment-size": str(SEG)}
    c.update(extra)
    return json.dumps(c)


def test_the_flink_option_enables_version_1(tmp_path, keyring_uri, crypto):
    p = tmp_path / "v1"
    write_v1(crypto, p, b"x" * 10)
    head = p.read_bytes()[:parse(p.read_bytes()).length]
    hooks.reset()
    try:
        with pytest.raises(FormatError, match="read-v1"):
            hooks.dispatch("reader", hooks.dispatch("configure", conf(keyring_uri)), str(p), head)
        sid = hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.format.read-v1": "true"}))
        assert hooks.dispatch("reader", sid, str(p), head) > 0
        assert hooks.dispatch("reseal", sid, str(p), str(tmp_path / "CURRENT"), head) == b""  # no name to move
    finally:
        hooks.reset()


def test_reseal_gives_the_header_for_the_new_name_and_checks_the_old_one(tmp_path, keyring_uri):
    from test_flink_hooks import read_file, write_file  # what the shim does around these calls
    hooks.reset()
    try:
        sid = hooks.dispatch("configure", conf(keyring_uri, **{
            "heliosdb.crypto.tenants.acme.path-prefix": "enc+file:///db/acme",
            "heliosdb.crypto.tenants.acme.kms.uri": keyring_uri}))
        tmp, current = "enc+file:/db/forst/000001.dbtmp", "enc+file:/db/forst/CURRENT"
        data = b"MANIFEST-000005\n"
        raw = write_file(sid, tmp, data)
        hlen = parse(raw).length
        new = hooks.dispatch("reseal", sid, tmp, current, raw)
        assert parse(new).name == "CURRENT" and parse(new).salt == parse(raw).salt
        assert read_file(sid, current, new + raw[hlen:]) == data
        with pytest.raises(MisplacedFileError):  # the old header at the new place
            read_file(sid, current, raw)
        assert hooks.dispatch("reseal", sid, tmp, "enc+file:/elsewhere/000001.dbtmp", raw) == b""
        with pytest.raises(MisplacedFileError):  # the source is checked as a read would
            hooks.dispatch("reseal", sid, "enc+file:/db/forst/000002.dbtmp", current, raw)
        from heliosdb_flink_crypto.lifecycle.tenants import TenantMismatchError
        with pytest.raises(TenantMismatchError):
            hooks.dispatch("reseal", sid, tmp, "enc+file:/db/acme/CURRENT", raw)
        bad = bytearray(raw)
        bad[hlen - 1] ^= 1
        with pytest.raises(AuthenticationError):
            hooks.dispatch("reseal", sid, tmp, current, bytes(bad))
    finally:
        hooks.reset()


def test_name_for_paths_and_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert name_for(None) == ""
    assert name_for("chk-7/_metadata") == f"{tmp_path.name}/chk-7/_metadata"  # relative: from the cwd
    assert name_for("enc+s3://b/j/chk-7/_metadata") == "j/chk-7/_metadata"

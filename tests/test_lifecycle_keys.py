"""keys rotate / status / min-version / usage / destroy, as an operator runs them."""
import json
import os

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, KeyAccessError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.kms.local import LocalKeyring
from heliosdb_flink_crypto.lifecycle import key_usage, set_min_version


def write(crypto, path, data=b"x" * 100, tenant=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, crypto.writer(f, tenant=tenant) as w:
        w.write(data)


@pytest.fixture
def savepoints(tmp_path, keyring_uri):
    """v1 files (one tenant 'acme'), then a rotation, then v2 files; plus noise."""
    root = tmp_path / "sp"
    write(CheckpointCrypto([keyring_uri], segment_size=64), root / "sp-1" / "_metadata")
    write(CheckpointCrypto([keyring_uri], segment_size=64, tenant="acme"), root / "sp-1" / "state", tenant="acme")
    LocalKeyring(keyring_uri).rotate()
    write(CheckpointCrypto([keyring_uri], segment_size=64), root / "sp-2" / "_metadata")
    (root / "sp-2" / "notes.txt").write_text("hello")
    (root / "sp-2" / "broken").write_bytes(b"HFCE\x01\x01\x00\x00" + b"\xff" * 8)
    return root


def test_rotate_and_status(tmp_path, keyring_uri, capsys):
    state = str(tmp_path / "st.json")
    assert main(["keys", "rotate", keyring_uri, "--state-file", state]) == 0
    assert f"rotated {keyring_uri}: version 1 -> 2" in capsys.readouterr().out
    assert main(["keys", "status", keyring_uri, "--state-file", state]) == 0
    out = capsys.readouterr().out
    assert "current version   2" in out and "version 1         enabled" in out and "min version       1" in out
    assert main(["keys", "status", "--json", keyring_uri, "--state-file", state,
                 "-D", "heliosdb.crypto.rotation.interval=0 s"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["key_version"] == "2" and s["due"] == "interval" and set(s["versions"]) == {"1", "2"}
    assert "key" not in json.dumps(s["versions"]).replace('"key_version"', "")  # no key bytes
    assert main(["keys", "status", keyring_uri, "--state-file", state, "-D", "oops"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_usage_reports_versions_still_needed(savepoints, keyring_uri, capsys):
    assert main(["keys", "usage", "--kms", keyring_uri, str(savepoints)]) == 1  # the broken file could not be checked
    out = capsys.readouterr().out
    assert "  version 1: 2 file(s)" in out and "tenants: <default>, acme" in out
    assert "  version 2: 1 file(s)" in out and "oldest version still needed: 1" in out
    assert f"not encrypted: {savepoints}/sp-2/notes.txt" in out
    assert f"FAILED {savepoints}/sp-2/broken: unreadable header: " in out
    assert "3 encrypted file(s) of 5; 1 could not be checked" in out
    assert main(["keys", "usage", "--json", "--kms", keyring_uri, str(savepoints / "sp-2")]) == 1
    r = json.loads(capsys.readouterr().out)
    assert list(r["keys"][keyring_uri]) == ["2"] and r["keys"][keyring_uri]["2"]["files"] == 1
    assert r["encrypted"] == 1 and r["files"] == 3 and list(r["failed"]) == [str(savepoints / "sp-2" / "broken")]
    os.unlink(savepoints / "sp-2" / "broken")
    assert main(["keys", "usage", "--kms", keyring_uri, str(savepoints)]) == 0


def test_min_version_guarded_by_usage_then_enforced(savepoints, keyring_uri, capsys):
    assert main(["keys", "min-version", keyring_uri, "2", "--check", str(savepoints)]) == 1
    out = capsys.readouterr().out
    assert out.count("NEEDS OLDER VERSION") == 2 and "rewrap them first" in out
    assert LocalKeyring(keyring_uri).min_decrypt_version == 1  # nothing changed
    assert main(["rewrap", "-q", "--kms", keyring_uri, str(savepoints)]) == 1  # the broken file fails; the rest is rewrapped
    capsys.readouterr()
    assert main(["keys", "min-version", keyring_uri, "2", "--check", str(savepoints)]) == 1
    out = capsys.readouterr().out  # the broken file could not be checked: it might need version 1
    assert f"NOT CHECKED {savepoints}/sp-2/broken: unreadable header" in out and "NEEDS OLDER" not in out
    os.unlink(savepoints / "sp-2" / "broken")
    assert main(["keys", "min-version", keyring_uri, "2", "--check", str(savepoints)]) == 0
    assert LocalKeyring(keyring_uri).min_decrypt_version == 2
    assert key_usage([str(savepoints)])["keys"][keyring_uri].keys() == {"2"}


def test_min_version_refuses_old_files_also_in_this_process(tmp_path, keyring_uri, capsys):
    crypto = CheckpointCrypto([keyring_uri], segment_size=64)
    old = crypto.encrypt_bytes(b"v1 data")
    assert crypto.decrypt_bytes(old) == b"v1 data"  # its DEK is cached now
    LocalKeyring(keyring_uri).rotate()
    dropped = set_min_version(LocalKeyring(keyring_uri), 2, cryptos=[crypto])
    assert dropped >= 1
    with pytest.raises(KeyAccessError, match="below the minimum decryption version 2"):
        crypto.decrypt_bytes(old)
    assert crypto.decrypt_bytes(crypto.encrypt_bytes(b"v2 data")) == b"v2 data"
    with pytest.raises(ValueError, match="1 or more"):
        set_min_version(LocalKeyring(keyring_uri), 0)
    p = tmp_path / "old.enc"
    p.write_bytes(old)
    assert main(["keys", "min-version", keyring_uri, "3", "--check", str(p), "--force"]) == 0
    assert "NEEDS OLDER VERSION" in capsys.readouterr().out


def test_destroy_needs_yes_and_shreds(savepoints, keyring_uri, capsys):
    assert main(["keys", "destroy", keyring_uri, "--version", "1", "--check", str(savepoints)]) == 1
    out = capsys.readouterr().out
    assert out.count("WILL BE UNREADABLE") == 2 and "without --yes" in out
    assert main(["keys", "destroy", keyring_uri, "--version", "1", "--yes"]) == 0
    assert "version(s) 1;" in capsys.readouterr().out
    assert LocalKeyring(keyring_uri).versions()["1"]["state"] == "destroyed"
    assert main(["verify", "-q", "--kms", keyring_uri, str(savepoints / "sp-1")]) == 1
    assert capsys.readouterr().out.count("key version 1 is destroyed") == 2
    assert main(["verify", "-q", "--kms", keyring_uri, str(savepoints / "sp-2" / "_metadata")]) == 0


def test_kms_without_these_controls_says_so(tmp_path, capsys):
    """AWS KMS (moto) has no on-demand rotate, min-version or destroy through this tool."""
    from heliosdb_flink_crypto.testing.aws import MotoKms
    with MotoKms() as kms:
        arn = kms.client().create_key()["KeyMetadata"]["Arn"]
        uri = "aws-kms://" + arn
        d = [x for k, v in kms.settings().items() for x in ("-D", f"{k}={v}")]
        state = ["--state-file", str(tmp_path / "s.json")]
        assert main(["keys", "rotate", uri, *state, *d]) == 2
        assert "cannot rotate on demand" in capsys.readouterr().err
        assert main(["keys", "status", "--json", uri, *state, *d]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["key_version"] == arn and s["versions"] is None and s["min_decrypt_version"] is None
        assert main(["keys", "min-version", uri, "2", *d]) == 2
        assert "cannot set a minimum decryption version" in capsys.readouterr().err
        assert main(["keys", "destroy", uri, "--yes", *d]) == 2
        assert "cannot destroy key material" in capsys.readouterr().err

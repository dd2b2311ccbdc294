"""The CLI as a user runs it: main(argv) in-process and the console script in a subprocess."""
import json
import os
import stat
import subprocess
import sys

import pytest

from heliosdb_flink_crypto.cli import main


def run(*argv):
    return main(list(argv))


def test_keyring_init_is_0600_and_refuses_to_overwrite(tmp_path, capsys):
    uri = f"local://{tmp_path}/ring.json"
    assert run("keyring", "init", uri) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "ring.json").st_mode) == 0o600
    assert "key version 1" in capsys.readouterr().out
    assert run("keyring", "init", uri) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize("alg", ["aes-256-gcm", "aes-256-cbc-hmac-sha256"])
def test_encrypt_inspect_decrypt_verify(tmp_path, keyring_uri, capsys, alg):
    plain = tmp_path / "state.bin"
    data = os.urandom(300_000) + b"HELIOS-MARKER"
    plain.write_bytes(data)
    enc, out = tmp_path / "state.enc", tmp_path / "state.out"
    assert run("encrypt", "--kms", keyring_uri, "--algorithm", alg, "--segment-size", "64kb",
               "--tenant", "team-a", str(plain), str(enc)) == 0
    assert b"HELIOS-MARKER" not in enc.read_bytes()
    assert stat.S_IMODE(os.stat(enc).st_mode) == 0o600
    capsys.readouterr()
    assert run("inspect", "--json", str(enc)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["plaintext_length"] == len(data) and info["tenant"] == "team-a"
    assert info["segment_size"] == 65536 and info["key_slots"][0]["kms_uri"] == keyring_uri
    assert run("inspect", str(enc)) == 0
    text = capsys.readouterr().out
    assert "key slot 0" in text and keyring_uri in text
    ring = json.loads(open(keyring_uri[len("local://"):]).read())
    kek_b64 = ring["versions"]["1"]["key"]
    assert kek_b64 not in text and kek_b64 not in json.dumps(info)
    assert run("decrypt", "--kms", keyring_uri, str(enc), str(out)) == 0
    assert out.read_bytes() == data
    assert run("verify", "-q", "--kms", keyring_uri, str(enc)) == 0


def test_multi_kms_encrypt_writes_every_slot(tmp_path, keyring_uri, capsys):
    second = f"local://{tmp_path}/second.json"
    run("keyring", "init", second)
    src = tmp_path / "p"
    src.write_bytes(b"x" * 1000)
    assert run("encrypt", "--kms", keyring_uri, "--kms", second, str(src), str(tmp_path / "e")) == 0
    capsys.readouterr()
    run("inspect", "--json", str(tmp_path / "e"))
    assert [s["kms_uri"] for s in json.loads(capsys.readouterr().out)["key_slots"]] == [keyring_uri, second]
    os.unlink(keyring_uri[len("local://"):])  # first KMS gone: the second still decrypts
    assert run("decrypt", "--kms", keyring_uri, "--kms", second, str(tmp_path / "e"), str(tmp_path / "d")) == 0
    assert (tmp_path / "d").read_bytes() == b"x" * 1000


def test_decrypt_failure_leaves_no_partial_plaintext(tmp_path, keyring_uri, capsys):
    src = tmp_path / "p"
    src.write_bytes(os.urandom(200_000))
    enc = tmp_path / "e"
    run("encrypt", "--kms", keyring_uri, "--segment-size", "16kb", str(src), str(enc))
    raw = bytearray(enc.read_bytes())
    raw[-100] ^= 1  # the last segment: earlier ones decrypt fine before the failure
    enc.write_bytes(bytes(raw))
    assert run("decrypt", "--kms", keyring_uri, str(enc), str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "authentication failed" in err and str(enc) in err
    assert sorted(os.listdir(tmp_path)) == ["e", "keyring.json", "p"]


def test_verify_tree_names_every_failing_file(tmp_path, keyring_uri, capsys):
    tree = tmp_path / "ckpt" / "chk-1"
    (tree / "shared").mkdir(parents=True)
    src = tmp_path / "p"
    src.write_bytes(os.urandom(5000))
    names = ["_metadata", "shared/a", "shared/b", "c"]
    for n in names:
        run("encrypt", "--kms", keyring_uri, str(src), str(tree / n))
    raw = bytearray((tree / "shared/b").read_bytes())
    raw[-1] ^= 1
    (tree / "shared/b").write_bytes(bytes(raw))
    (tree / "plain.txt").write_text("not encrypted")
    capsys.readouterr()
    assert run("verify", "--kms", keyring_uri, str(tmp_path / "ckpt")) == 1
    out, err = capsys.readouterr()
    assert f"FAILED {tree / 'shared/b'}: authentication failed" in out
    assert f"FAILED {tree / 'plain.txt'}: not a valid encrypted file" in out
    assert "verified 3 of 5 files; 2 failed" in out
    assert "verify: 5/5 files (100%)" in err  # progress on stderr


def test_verify_reports_unavailable_keys_and_untrusted_kms(tmp_path, keyring_uri, capsys):
    src = tmp_path / "p"
    src.write_bytes(b"abc")
    run("encrypt", "--kms", keyring_uri, str(src), str(tmp_path / "e"))
    other = f"local://{tmp_path}/other.json"
    run("keyring", "init", other)
    capsys.readouterr()
    assert run("verify", "--kms", other, str(tmp_path / "e")) == 1
    assert f"key slots name only KMS URIs that are not trusted here: {keyring_uri}" in capsys.readouterr().out
    os.unlink(keyring_uri[len("local://"):])
    assert run("verify", "-q", "--kms", keyring_uri, str(tmp_path / "e")) == 1
    assert "key unavailable" in capsys.readouterr().out


def test_verify_of_nothing_fails(tmp_path, keyring_uri, capsys):
    (tmp_path / "empty").mkdir()
    assert run("verify", "-q", "--kms", keyring_uri, str(tmp_path / "empty")) == 1


def test_encrypt_from_stdin_and_decrypt_to_stdout_via_console_script(tmp_path, keyring_uri):
    exe = [sys.executable, "-m", "heliosdb_flink_crypto"]
    enc = tmp_path / "e"
    r = subprocess.run(exe + ["encrypt", "--kms", keyring_uri, "-", str(enc)], input=b"piped state",
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(exe + ["decrypt", str(enc), "-"], capture_output=True,
                       env=dict(os.environ, HELIOSDB_CRYPTO_KMS=keyring_uri))
    assert r.returncode == 0 and r.stdout == b"piped state"
    r = subprocess.run(exe + ["decrypt", "--kms", keyring_uri, str(tmp_path / "missing"), "-"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "missing" in r.stderr


def test_unknown_kms_scheme_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "p"
    src.write_bytes(b"a")
    assert run("encrypt", "--kms", "vault://x", str(src), str(tmp_path / "e")) == 2
    assert "unknown KMS URI scheme 'vault'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()

"""The CLI opens files only with KMSs it was told to trust (issue 11 §2): sources and precedence, and
an attacker with write access to storage who names KMSs in headers."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from heliosdb_flink_crypto import CheckpointCrypto, KeyAccessError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.cli.trust import _flat
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.kms.local import LocalKeyring


@pytest.fixture(autouse=True)
def no_ambient_trust(monkeypatch):
    monkeypatch.delenv("HELIOSDB_CRYPTO_KMS", raising=False)
    monkeypatch.delenv("HELIOSDB_CRYPTO_CONFIG", raising=False)


def ring(tmp_path, name):
    uri = f"local://{tmp_path}/{name}/keyring.json"
    LocalKeyring.create(uri)
    return uri


def seal(uri, path, data=b"state", *more_uris):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, CheckpointCrypto([uri, *more_uris], segment_size=64).writer(f) as w:
        w.write(data)
    return path


def test_without_a_trusted_kms_every_command_says_how_to_trust_one(tmp_path, keyring_uri, capsys):
    f = seal(keyring_uri, tmp_path / "cp" / "f")
    for argv in (["decrypt", str(f), str(tmp_path / "out")], ["verify", str(f)], ["rewrap", str(f)],
                 ["rewrap", "--to", keyring_uri, str(f)], ["reencrypt", str(f)], ["keys", "usage", str(f)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "no trusted KMS" in err and "--kms URI" in err and "HELIOSDB_CRYPTO_KMS" in err, err
        assert "--config FILE" in err
    assert not (tmp_path / "out").exists()


def test_trust_sources_and_their_precedence(tmp_path, keyring_uri, monkeypatch, capsys):
    f = seal(keyring_uri, tmp_path / "cp" / "f")
    other = ring(tmp_path, "other")
    ok = lambda *extra: main(["verify", "-q", *extra, str(f)]) == 0  # noqa: E731
    flat = tmp_path / "flat.yaml"
    flat.write_text(f"# the CLI reads heliosdb.crypto.* keys only\nrest.port: 8081\n"
                    f"heliosdb.crypto.kms.uri: {other}\nheliosdb.crypto.kms.decrypt-uris: {keyring_uri}\n")
    assert ok("--config", str(flat))
    flink = tmp_path / "config.yaml"  # Flink 2's standard YAML, nested keys and lists
    flink.write_text(f"jobmanager:\n  rpc:\n    address: localhost\nheliosdb:\n  crypto:\n    kms:\n"
                     f"      uri: {other}\n    tenants:\n      acme:\n        path-prefix: /data/acme\n"
                     f"        kms:\n          uri: {other}\n          decrypt-uris: [{other}, {keyring_uri}]\n"
                     f"    rotation:\n      enabled: false\n")
    assert ok("--config", str(flink))
    monkeypatch.setenv("HELIOSDB_CRYPTO_CONFIG", str(flink))
    assert ok()
    assert not ok("-D", f"heliosdb.crypto.tenants.acme.kms.decrypt-uris={other}")  # -D over the file
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", other)  # env over the config file
    assert not ok()
    assert "not trusted here" in capsys.readouterr().out
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", f"{other}; {keyring_uri}")
    assert ok()
    assert ok("--kms", keyring_uri)
    assert not ok("--kms", other)  # --kms over the environment
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", "")
    monkeypatch.setenv("HELIOSDB_CRYPTO_CONFIG", str(flat))
    assert ok()


def test_config_file_errors_name_the_file(tmp_path, keyring_uri, capsys):
    f = seal(keyring_uri, tmp_path / "f")
    assert main(["verify", "--config", str(tmp_path / "missing.yaml"), str(f)]) == 2
    assert f"--config: cannot read {tmp_path / 'missing.yaml'}" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("heliosdb.crypto.kms.uri: [unclosed\n")
    assert main(["verify", "--config", str(bad), str(f)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    bad.write_text("- a list\n- not a mapping\n")
    assert main(["verify", "--config", str(bad), str(f)]) == 2
    assert "expected key: value lines" in capsys.readouterr().err
    assert _flat(f"# c\n\nheliosdb.crypto.kms.uri: '{keyring_uri}'\nx: 1\n", "f") == {
        "heliosdb.crypto.kms.uri": keyring_uri, "x": "1"}
    with pytest.raises(ValueError, match="f line 1: expected key: value"):
        _flat("no colon here", "f")


def test_a_file_sealed_under_an_attackers_kms_is_never_laundered(tmp_path, monkeypatch, capsys):
    """The attacker can write to storage and runs a KMS of their own (here: a keyring they made).
    Their file names it; the operator migrates the savepoint to a new KEK as docs/operations.md says."""
    ours, new, theirs = ring(tmp_path, "ours"), ring(tmp_path, "new"), ring(tmp_path, "attacker")
    sp = tmp_path / "savepoints" / "sp-1"
    genuine = {seal(ours, sp / f"op-{i}", b"genuine %d" % i): b"genuine %d" % i for i in range(2)}
    planted = seal(theirs, sp / "op-9", b"attacker state")
    before = planted.read_bytes()
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", ours)
    capsys.readouterr()

    assert main(["decrypt", str(planted), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"not trusted here: {theirs}" in err and not (tmp_path / "out").exists()
    assert main(["verify", "-q", str(sp)]) == 1
    assert f"FAILED {planted}: key unavailable" in capsys.readouterr().out
    assert main(["reencrypt", "-q", "--to", new, str(planted)]) == 1
    assert main(["rewrap", "-q", "--to", new, str(sp)]) == 1  # trust from the environment
    out = capsys.readouterr().out
    assert f"FAILED {planted}: " in out and "rewrapped 2, already current 0, skipped 0, failed 1 of 3" in out
    assert main(["rewrap", "-q", "--from", ours, "--to", new, str(sp)]) == 1
    assert main(["rewrap", "-q", "--kms", new, str(sp)]) == 1
    assert planted.read_bytes() == before

    flink = CheckpointCrypto([new], decrypt_uris=[ours])  # Flink's configuration after the migration
    with pytest.raises(KeyAccessError, match="not trusted here"):
        flink.decrypt_bytes(planted.read_bytes(), path=str(planted))
    for p, data in genuine.items():
        assert [s.kms_uri for s in parse(p.read_bytes()).slots] == [new]
        assert flink.decrypt_bytes(p.read_bytes(), name=p.name) == data  # bound to its name (F-24)


def test_reencrypt_targets_come_from_the_command_or_the_trusted_set(keyring_uri):
    from heliosdb_flink_crypto.lifecycle.rewrap import reencrypt_writers
    h = parse(CheckpointCrypto([keyring_uri]).encrypt_bytes(b"x"))
    with pytest.raises(ValueError, match="needs target KMS URIs"):
        reencrypt_writers(None)(h)
    assert reencrypt_writers(None, opener=CheckpointCrypto(decrypt_uris=[keyring_uri]))(h).kms_uris == [keyring_uri]


def test_a_rotation_rewrap_never_drops_a_slot_that_names_an_untrusted_kms(tmp_path, keyring_uri, capsys):
    second = ring(tmp_path, "second")
    f = seal(keyring_uri, tmp_path / "f", b"x", second)
    LocalKeyring(keyring_uri).rotate()
    assert main(["rewrap", "-q", "--kms", keyring_uri, str(f)]) == 1
    out = capsys.readouterr().out
    assert f"name KMS URIs that are not trusted here: {second}; trust them (--kms) or choose the targets" in out
    assert main(["reencrypt", "-q", "--kms", keyring_uri, str(f)]) == 1
    assert main(["rewrap", "-q", "--kms", keyring_uri, "--kms", second, str(f)]) == 0
    assert [s.key_version for s in parse(f.read_bytes()).slots] == ["2", "1"]


def test_keys_commands_count_only_trusted_kms(tmp_path, keyring_uri, forge, capsys):
    cp = tmp_path / "cp"
    seal(keyring_uri, cp / "genuine")
    (cp / "planted").write_bytes(forge([("local:///attacker/ring.json", "0", os.urandom(60)),
                                        ("nope://not-a-kms", "1", os.urandom(60))]))
    assert main(["keys", "usage", "--kms", keyring_uri, str(cp)]) == 0
    out = capsys.readouterr().out
    assert "oldest version still needed: 1" in out and "version 0" not in out.split("not trusted here")[0]
    assert "not trusted here: local:///attacker/ring.json (versions 0; 1 file(s) name it)" in out
    assert "not trusted here: nope://not-a-kms (versions 1; 1 file(s) name it)" in out
    assert main(["keys", "min-version", keyring_uri, "1", "--check", str(cp)]) == 1
    assert f"NAMES NO TRUSTED KMS {cp / 'planted'}" in capsys.readouterr().out
    assert main(["keys", "destroy", keyring_uri, "--check", str(cp)]) == 1
    out = capsys.readouterr().out
    assert f"WILL BE UNREADABLE {cp / 'genuine'}" in out and f"NAMES NO TRUSTED KMS {cp / 'planted'}" in out
    (cp / "planted").unlink()
    assert main(["keys", "min-version", keyring_uri, "1", "--check", f"file://{cp}"]) == 0


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections it gets (and drops them at once)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port, self.connections = self.sock.getsockname()[1], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_an_endpoint_named_in_a_header_is_never_contacted(tmp_path, keyring_uri, forge):
    """An Azure Key Vault URI's host is where the SDK connects: a header naming one must not make the
    CLI connect there (with the operator's credentials), whatever it is asked to do."""
    listener = Listener()
    host = f"127.0.0.1:{listener.port}"
    try:
        f = tmp_path / "cp" / "f"
        f.parent.mkdir()
        f.write_bytes(forge([(f"azure-kv://{host}/keys/ckpt", f"https://{host}/keys/ckpt/v1", os.urandom(256))]))
        env = dict(os.environ, HELIOSDB_CRYPTO_KMS=keyring_uri)
        for argv in (["verify", str(f)], ["decrypt", str(f), str(tmp_path / "out")], ["rewrap", str(f)],
                     ["reencrypt", str(f)], ["rewrap", "--to", keyring_uri, str(f)]):
            r = subprocess.run([sys.executable, "-m", "heliosdb_flink_crypto", *argv], env=env,
                               capture_output=True, text=True, timeout=120)
            time.sleep(0.3)  # let the listener count a connection the run may have made
            assert listener.connections == 0, (argv, r.stderr)
            assert r.returncode in (1, 2) and "not trusted here" in r.stdout + r.stderr, (argv, r.stderr)
    finally:
        listener.close()

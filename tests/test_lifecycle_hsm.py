"""An operator's key lifecycle on a real PKCS#11 HSM (SoftHSMv2), through the CLI in fresh processes:
encrypt for a tenant, rotate, usage, rewrap, then crypto-shred the tenant and verify reports it."""
import os
import secrets
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kms
MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture
def hsm(tmp_path):
    """A private SoftHSMv2 token; only the subprocesses see it (this process never loads the module)."""
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = secrets.token_hex(8)
    env = dict(os.environ, SOFTHSM2_CONF=str(conf), HELIOSDB_PKCS11_PIN=pin)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "ckpt", "--so-pin", secrets.token_hex(8),
                    "--pin", pin], check=True, capture_output=True, env=env)
    uri = f"pkcs11://ckpt/acme-kek?module={MODULE}"
    subprocess.run([sys.executable, "-c", "import sys; from heliosdb_flink_crypto import open_provider; "
                    "print(open_provider(sys.argv[1]).create_key())", uri], check=True, env=env, capture_output=True)
    return uri, env


def cli(env, *argv):
    p = subprocess.run([sys.executable, "-m", "heliosdb_flink_crypto", *argv], env=env, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def test_rotate_rewrap_and_shred_a_tenant_on_an_hsm(hsm, tmp_path, keyring_uri):
    uri, env = hsm
    env = dict(env, HELIOSDB_CRYPTO_KMS=f"{uri};{keyring_uri}")  # the trusted KMSs
    acme, other = tmp_path / "ckpt" / "acme", tmp_path / "ckpt" / "other"
    acme.mkdir(parents=True)
    other.mkdir(parents=True)
    src = tmp_path / "state"
    src.write_bytes(os.urandom(50_000))
    for i in range(2):
        assert cli(env, "encrypt", "--kms", uri, "--tenant", "acme", str(src), str(acme / f"f{i}"))[0] == 0
    assert cli(env, "encrypt", "--kms", keyring_uri, str(src), str(other / "f"))[0] == 0

    code, out = cli(env, "keys", "rotate", uri, "--state-file", str(tmp_path / "rot.json"))
    assert code == 0 and "version 1 -> 2" in out, out
    code, out = cli(env, "keys", "usage", str(acme))
    assert "version 1: 2 file(s)" in out and "tenants: acme" in out
    code, out = cli(env, "rewrap", str(acme))
    assert code == 0 and "rewrapped 2" in out, out
    assert "version 2: 2 file(s)" in cli(env, "keys", "usage", str(acme))[1]
    assert cli(env, "verify", str(acme))[0] == 0

    code, out = cli(env, "keys", "destroy", uri, "--check", str(tmp_path / "ckpt"), "--yes")
    assert code == 0 and out.count("WILL BE UNREADABLE") == 2, out
    code, out = cli(env, "verify", "-q", str(acme))
    assert code == 1 and out.count("key unavailable") == 2, out
    assert cli(env, "verify", "-q", str(other))[0] == 0  # another tenant's key is untouched

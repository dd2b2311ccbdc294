"""A header never chooses code to load (issue 11 §2): a key slot ``pkcs11://TOKEN/KEY?module=evil.so``
run through ``verify`` with a PIN set. The library is a real shared object whose constructor writes a
marker file the moment anything ``dlopen``s it."""
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kms


@pytest.fixture
def evil_so(tmp_path):
    assert shutil.which("gcc"), "needs gcc to build the test's shared object (./dev setup installs it)"
    marker = tmp_path / "code-ran"
    src = tmp_path / "evil.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void run(void) {\n'
                   f'  FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("loaded", f); fclose(f); }}\n}}\n')
    so = tmp_path / "evil.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True, capture_output=True)
    # the control: loading it really runs the constructor
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(so)!r})"], check=True)
    assert marker.read_text() == "loaded"
    marker.unlink()
    return so, marker


def verify(env, *argv):
    return subprocess.run([sys.executable, "-m", "heliosdb_flink_crypto", "verify", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_module_named_in_a_header_is_never_loaded(evil_so, tmp_path, keyring_uri, forge, softhsm, hsm_token):
    so, marker = evil_so
    f = tmp_path / "planted"
    f.write_bytes(forge([(f"pkcs11://{hsm_token.label}/kek?module={so}", "1", os.urandom(60))]))
    env = dict(os.environ, HELIOSDB_PKCS11_PIN=hsm_token.pin, HELIOSDB_CRYPTO_KMS=keyring_uri)
    r = verify(env, str(f))  # the header names a KMS that is not trusted at all
    assert not marker.exists()
    assert r.returncode == 1 and "not trusted here: pkcs11://" in r.stdout, r.stdout + r.stderr
    # the same token and key label trusted, with the module from configuration: the header's key slot
    # is used, through the provider of the configured URI (SoftHSMv2), never its own module
    env["HELIOSDB_CRYPTO_KMS"] = hsm_token.uri("kek")
    r = verify(env, str(f))
    assert not marker.exists()
    assert r.returncode == 1 and "key unavailable" in r.stdout and str(so) not in r.stdout, r.stdout + r.stderr

"""Shared fixtures: keyrings are made at test time, never committed."""
import os
import shutil
import subprocess

import pytest

from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.kms.local import LocalKeyring


@pytest.fixture
def keyring_uri(tmp_path):
    uri = f"local://{tmp_path}/keyring.json"
    LocalKeyring.create(uri)
    return uri


@pytest.fixture
def keyring(keyring_uri):
    return LocalKeyring(keyring_uri)


@pytest.fixture
def crypto(keyring_uri):
    return CheckpointCrypto([keyring_uri], segment_size=64)


@pytest.fixture
def payload():
    return lambda n: os.urandom(n)


@pytest.fixture
def forge():
    """What an attacker with write access to storage can make: a well-formed file whose header holds
    key slots of their choosing (``(kms_uri, key_version, wrapped)``), sealed with a DEK of theirs."""
    import io

    from heliosdb_flink_crypto.engine import DataKey, EncryptingWriter, new_header
    from heliosdb_flink_crypto.format import SUITE_AES_GCM, KeySlot

    def make(slots, dek=None, dek_id=None, tenant="", data=b"attacker state", segment_size=64) -> bytes:
        dk = DataKey(dek_id or os.urandom(16), dek or os.urandom(32), tuple(KeySlot(*s) for s in slots), tenant)
        _, raw, keys = new_header(dk, SUITE_AES_GCM, segment_size)
        buf = io.BytesIO()
        with EncryptingWriter(buf, raw, keys, segment_size) as w:
            w.write(data)
        return buf.getvalue()
    return make


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def clean_tree(tmp_path_factory) -> str:
    """A copy of this source tree as a clean checkout has it: tracked and new files, nothing ignored
    (no venvs, no built jars, no Maven output)."""
    dest = tmp_path_factory.mktemp("clean") / "tree"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(dest / f), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), dest / f)
    return str(dest)


"""Shared fixtures: keyrings are made at test time, never committed."""
import os

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

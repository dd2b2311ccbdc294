"""The committed vectors are the contract: valid ones decrypt, invalid ones are rejected, and the
current code reproduces them byte for byte."""
import json
import os
import subprocess
import sys

import pytest

from heliosdb_flink_crypto import AuthenticationError, FormatError
from heliosdb_flink_crypto.engine import DecryptingReader, open_header
from heliosdb_flink_crypto.format import parse

HERE = os.path.join(os.path.dirname(__file__), "vectors")
with open(os.path.join(HERE, "vectors.json")) as f:
    VECTORS = json.load(f)["vectors"]


def decrypt(v) -> bytes:
    ct = bytes.fromhex(v["ciphertext"])
    h = parse(ct, v["name"])
    keys = open_header(h, ct, bytes.fromhex(v["dek"]), v["name"])
    with DecryptingReader(ct, h.length, keys, h.segment_size, path=v["name"]) as r:
        return r.read()


@pytest.mark.parametrize("v", [v for v in VECTORS if v["result"] == "valid"], ids=lambda v: v["name"])
def test_valid_vector_decrypts(v):
    assert decrypt(v) == bytes.fromhex(v["plaintext"])


@pytest.mark.parametrize("v", [v for v in VECTORS if v["result"] == "invalid"], ids=lambda v: v["name"])
def test_invalid_vector_is_rejected(v):
    with pytest.raises((AuthenticationError, FormatError)):
        decrypt(v)


def test_every_tamper_class_is_covered_for_both_suites():
    names = {v["name"] for v in VECTORS}
    for suite in ("gcm", "cbc"):
        for case in ("header-bit-flip", "body-bit-flip", "truncated-at-boundary", "appended-byte",
                     "segments-swapped", "segment-duplicated", "segment-from-other-file",
                     "header-from-other-file", "last-segment-dropped", "wrong-key"):
            assert f"{suite}-invalid-{case}" in names


def test_code_reproduces_the_committed_vectors():
    r = subprocess.run([sys.executable, os.path.join(HERE, "make_vectors.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

"""The committed vectors are the contract: valid ones decrypt, invalid ones are rejected with exactly
their recorded verdict, and the current code reproduces them byte for byte. Version 1 vectors are
read with version 1 reading enabled (F-30); the Java shim runs the same files (VectorsTest)."""
import json
import os
import subprocess
import sys

import pytest

from heliosdb_flink_crypto import AuthenticationError, FormatError
from heliosdb_flink_crypto.engine import DecryptingReader, check_binding, check_version, open_header
from heliosdb_flink_crypto.format import PREFIX_LEN, binding_name, parse, parse_prefix

HERE = os.path.join(os.path.dirname(__file__), "vectors")


def _load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


VECTORS = _load("vectors.json")["vectors"]
V2 = _load("vectors-v2.json")["vectors"]
BINDING_NAMES = _load("binding-names.json")["cases"]


def decrypt(v, read_v1=False) -> bytes:
    """What a reader does: frame, (version policy), authenticate the header, check the binding,
    then read everything: the end of the file authenticates before the length is reported."""
    ct = bytes.fromhex(v["ciphertext"])
    parse_prefix(ct[:PREFIX_LEN], v["name"])
    h = parse(ct, v["name"])
    check_version(h, read_v1, v["name"])
    keys = open_header(h, ct, bytes.fromhex(v["dek"]), v["name"])
    check_binding(h, v.get("bound_name", ""), v["name"])
    with DecryptingReader(ct, h.length, keys, h.segment_size, path=v["name"]) as r:
        data = r.read()
        assert r.size == len(data)
        return data


@pytest.mark.parametrize("v", [v for v in VECTORS if v["result"] == "valid"], ids=lambda v: v["name"])
def test_valid_v1_vector_decrypts_with_v1_reading_enabled(v):
    assert decrypt(v, read_v1=True) == bytes.fromhex(v["plaintext"])


@pytest.mark.parametrize("v", [v for v in VECTORS if v["result"] == "invalid"], ids=lambda v: v["name"])
def test_invalid_v1_vector_is_rejected(v):
    with pytest.raises((AuthenticationError, FormatError)):
        decrypt(v, read_v1=True)


def test_v1_vectors_are_refused_unless_v1_reading_is_enabled():
    for v in VECTORS:
        if v["result"] == "valid":
            with pytest.raises(FormatError, match="read-v1"):
                decrypt(v)


@pytest.mark.parametrize("v", V2, ids=lambda v: v["name"])
def test_v2_vector_gives_exactly_its_recorded_verdict(v):
    if v["result"] == "valid":
        assert v["error"] is None
        assert decrypt(v) == bytes.fromhex(v["plaintext"])
        return
    with pytest.raises(Exception) as e:
        decrypt(v)
    assert type(e.value).__name__ == v["error"], f"{v['name']}: {e.value!r}"
    assert v["name"] in str(e.value)  # names the file


def test_v2_vectors_cover_every_class_for_both_suites():
    names = {v["name"] for v in V2}
    for suite in ("gcm", "cbc"):
        for n in (0, 1, 31, 32, 33, 101):
            assert f"{suite}-valid-{n}" in names
        for case in ("header-bit-flip", "header-mac-flip", "name-bit-flip", "body-bit-flip", "tag-bit-flip",
                     "truncated-to-nothing", "truncated-inside-header", "truncated-to-header",
                     "truncated-to-one-overhead", "truncated-at-boundary-1", "truncated-at-boundary-2",
                     "truncated-at-boundary-3", "truncated-inside-segment", "appended-byte", "segments-swapped",
                     "segment-duplicated", "segment-from-other-file", "header-from-other-file",
                     "last-segment-dropped", "wrong-key", "empty-bad-tag", "name-mismatch",
                     "metadata-of-older-checkpoint"):
            assert f"{suite}-invalid-{case}" in names
    assert len(V2) == 2 * (6 + 23)


@pytest.mark.parametrize("case", BINDING_NAMES, ids=lambda c: c["path"])
def test_binding_names_follow_rule_f24(case):
    assert binding_name(case["path"]) == case["name"]


def test_code_reproduces_the_committed_vectors():
    r = subprocess.run([sys.executable, os.path.join(HERE, "make_vectors.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

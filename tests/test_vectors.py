"""The committed vectors are the contract: valid ones decrypt, invalid ones are rejected with exactly
their recorded verdict, and the current code reproduces them byte for byte. Version 1 vectors are
read with version 1 reading enabled (F-30); the Java shim runs the same files (VectorsITCase)."""
import json
import os
import subprocess
import sys

import pytest

from heliosdb_flink_crypto.errors import AuthenticationError, FormatError, MisplacedFileError
from heliosdb_flink_crypto.engine import DecryptingReader, check_binding, check_version, open_header
from heliosdb_flink_crypto.format import PREFIX_LEN, binding_name, parse, parse_prefix

HERE = os.path.join(os.path.dirname(__file__), "vectors")


def _load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


VECTORS = _load("vectors.json")["vectors"]
V2 = _load("vectors-v2.json")["vectors"]
BINDING_NAMES = _load("binding-names.json")["cases"]
ERRORS = {e.__name__: e for e in (AuthenticationError, FormatError, MisplacedFileError)}


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


def assert_verdict(v, read_v1=False):
    """Exactly the vector's verdict: its plaintext, or its recorded error class (not a subclass, not
    another error of the package) naming the file."""
    if v["result"] == "valid":
        assert v["error"] is None
        assert decrypt(v, read_v1) == bytes.fromhex(v["plaintext"])
        return
    assert v["result"] == "invalid" and v["error"] in ERRORS, v["name"]
    with pytest.raises(Exception) as e:
        decrypt(v, read_v1)
    assert type(e.value) is ERRORS[v["error"]], f"{v['name']}: {e.value!r}"
    assert v["name"] in str(e.value)  # names the file


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_v1_vector_gives_exactly_its_recorded_verdict_with_v1_reading_enabled(v):
    assert_verdict(v, read_v1=True)


def test_vector_counts_and_verdicts_are_exact():
    """What VectorsITCase asserts too: a vector silently dropped or turned valid fails both runners."""
    def count(vs):
        return {r: sum(v["result"] == r for v in vs) for r in ("valid", "invalid")}
    assert count(VECTORS) == {"valid": 12, "invalid": 26}
    assert count(V2) == {"valid": 12, "invalid": 46}
    assert {v["error"] for v in VECTORS} == {None, "AuthenticationError", "FormatError"}
    assert {v["error"] for v in V2} == {None, "AuthenticationError", "FormatError", "MisplacedFileError"}


def test_v1_vectors_are_refused_unless_v1_reading_is_enabled():
    for v in VECTORS:
        if v["result"] == "valid":
            with pytest.raises(FormatError, match="read-v1"):
                decrypt(v)


@pytest.mark.parametrize("v", V2, ids=lambda v: v["name"])
def test_v2_vector_gives_exactly_its_recorded_verdict(v):
    assert_verdict(v)


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

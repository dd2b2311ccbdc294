"""Random access against the plaintext (property-based), and hostile headers (fuzzed)."""
import io
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliosdb_flink_crypto import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, CheckpointCrypto, HeliosCryptoError
from heliosdb_flink_crypto.errors import AuthenticationError, FormatError, KeyAccessError
from heliosdb_flink_crypto.format import PREFIX_LEN, parse, parse_prefix
from heliosdb_flink_crypto.format.layout import nonce, plaintext_length

DATA = os.urandom(3000)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from heliosdb_flink_crypto.kms.local import LocalKeyring
    uri = f"local://{tmp_path_factory.mktemp('kr')}/k.json"
    LocalKeyring.create(uri)
    out = {}
    for suite in (SUITE_AES_GCM, SUITE_AES_CBC_HMAC):
        c = CheckpointCrypto([uri], suite=suite, segment_size=112)
        out[suite] = (c, c.encrypt_bytes(DATA))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suite=st.sampled_from([SUITE_AES_GCM, SUITE_AES_CBC_HMAC]),
       ops=st.lists(st.tuples(st.sampled_from(["seek", "read", "pread"]),
                              st.integers(0, 3200), st.integers(0, 700)), max_size=12))
def test_reads_match_plaintext(files, suite, ops):
    c, ct = files[suite]
    r = c.reader(io.BytesIO(ct))
    pos = 0
    for op, a, b in ops:
        if op == "seek":
            assert r.seek(a) == a
            pos = a
        elif op == "read":
            assert r.read(b) == DATA[pos:pos + b]
            pos = min(len(DATA), pos + b) if pos < len(DATA) else pos
            assert r.tell() == pos
        else:
            assert r.pread(a, b) == DATA[a:a + b]
            assert r.tell() == pos


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_parser(data):
    try:
        parse(data, "fuzz")
    except HeliosCryptoError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10_000), val=st.integers(0, 255), cut=st.integers(0, 10_000))
def test_mutated_headers_end_in_one_clear_error(files, pos, val, cut):
    c, ct = files[SUITE_AES_GCM]
    h = parse(ct)
    raw = bytearray(ct[:h.length + 200])
    raw[pos % h.length] = val
    raw = raw[:max(1, cut % (len(raw) + 1))]
    # the first 200 bytes of the body only: whatever the header says, this never decrypts
    with pytest.raises(HeliosCryptoError) as e:
        c.decrypt_bytes(bytes(raw), path="fuzz")
    assert type(e.value) in (AuthenticationError, FormatError, KeyAccessError), repr(e.value)
    assert "fuzz" in str(e.value)


def test_a_mutated_header_never_decrypts_even_with_the_whole_body(files):
    """Every byte of the header set to each of a few values, the body whole: only the original decrypts."""
    c, ct = files[SUITE_AES_GCM]
    h = parse(ct)
    assert c.decrypt_bytes(ct, path="fuzz") == DATA
    for pos in range(h.length):
        for val in {0, 0xFF, ct[pos] ^ 0x10} - {ct[pos]}:
            raw = bytearray(ct)
            raw[pos] = val
            with pytest.raises(HeliosCryptoError) as e:
                c.decrypt_bytes(bytes(raw), path="fuzz")
            assert type(e.value) in (AuthenticationError, FormatError, KeyAccessError), (pos, val, e.value)


@pytest.mark.parametrize("field,offset,value", [
    ("header length huge", 8, struct.pack(">I", 2**31)),
    ("header length tiny", 8, struct.pack(">I", 20)),
    ("segment size huge", 12, struct.pack(">I", 2**31)),
    ("segment size odd", 12, struct.pack(">I", 1000)),
    ("version", 4, b"\x09"),
    ("suite", 5, b"\x07"),
    ("flags", 6, b"\x00\x01"),
    ("magic", 0, b"NOPE"),
])
def test_hostile_prefix_fields_are_rejected_before_allocation(files, field, offset, value):
    c, ct = files[SUITE_AES_GCM]
    raw = bytearray(ct)
    raw[offset:offset + len(value)] = value
    with pytest.raises(FormatError) as e:
        parse_prefix(bytes(raw[:PREFIX_LEN]), "x")
    assert str(e.value).startswith("x: ")


def test_hostile_length_fields_inside_the_header(files):
    c, ct = files[SUITE_AES_GCM]
    h = parse(ct)
    tenant_at = PREFIX_LEN + 64
    for blob in (struct.pack(">H", 0xFFFF), struct.pack(">H", 300)):
        raw = bytearray(ct)
        raw[tenant_at:tenant_at + 2] = blob
        with pytest.raises(FormatError, match="tenant length|past the header"):
            parse(bytes(raw))
    name_at = tenant_at + 2  # version 2: the name follows the tenant (empty here)
    for blob in (struct.pack(">H", 0xFFFF), struct.pack(">H", 1025)):
        raw = bytearray(ct)
        raw[name_at:name_at + 2] = blob
        with pytest.raises(FormatError, match="name length|past the header"):
            parse(bytes(raw))
    raw = bytearray(ct)
    raw[name_at + 2] = 0  # slot count 0 (tenant and name are empty here)
    with pytest.raises(FormatError, match="key slot count 0"):
        parse(bytes(raw))
    assert h.tenant == "" and h.name == ""


def test_length_arithmetic_rejects_impossible_lengths():
    seg, full = 112, 112 + 16
    assert plaintext_length(100 + 16, 100, seg, SUITE_AES_GCM) == 0
    assert plaintext_length(100 + full, 100, seg, SUITE_AES_GCM) == seg
    assert plaintext_length(100 + full + 17, 100, seg, SUITE_AES_GCM) == seg + 1
    for body in (0, 15, full + 16, full + 5):  # no final segment / empty final after a full one / short tag
        with pytest.raises(HeliosCryptoError):
            plaintext_length(100 + body, 100, seg, SUITE_AES_GCM)


def test_nonce_layout():
    assert nonce(b"\x01" * 7, 5, True) == b"\x01" * 7 + b"\x00\x00\x00\x05\x01"
    assert nonce(b"\x01" * 7, 5, False)[-1] == 0
    with pytest.raises(HeliosCryptoError):
        nonce(b"\x01" * 7, 2**32, False)

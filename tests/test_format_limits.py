"""Every maximum (and minimum) of the format, at the limit and one past it: the writer refuses to
produce what its readers would refuse, and a reader refuses a header one past a limit with a
FormatError naming the field (docs/format.md F-5, F-6, F-10, F-11, F-14, F-24)."""
import dataclasses

import pytest

from heliosdb_flink_crypto.errors import FormatError
from heliosdb_flink_crypto.format import header, layout
from heliosdb_flink_crypto.format.header import (MAX_HEADER_LEN, MAX_KEY_VERSION, MAX_NAME, MAX_SEGMENT_SIZE,
                                                 MAX_SLOTS, MAX_TENANT, MAX_URI, MAX_WRAPPED, MIN_SEGMENT_SIZE,
                                                 SUITE_AES_GCM, Header, KeySlot, parse, parse_prefix,
                                                 serialize_unsigned, validate_segment_size)

SLOT = KeySlot("local:///k.json", "1", b"w" * 40)


def make(**fields) -> Header:
    base = dict(suite=SUITE_AES_GCM, segment_size=64, salt=b"s" * 32, nonce_prefix=b"n" * 7, dek_id=b"d" * 16,
                created_ms=1, tenant="", slots=(SLOT,), name="")
    base.update(fields)
    return Header(**base)


def raw(h: Header) -> bytes:
    """Header bytes as a writer lays them out (commitment and MAC are not checked by the parser)."""
    return serialize_unsigned(h) + b"c" * header.COMMITMENT_LEN + b"m" * header.MAC_LEN


def over_the_limit(monkeypatch, limit: str, h: Header) -> bytes:
    """The bytes of ``h``, one past ``limit``: written with that maximum raised by one."""
    with monkeypatch.context() as m:
        m.setattr(header, limit, getattr(header, limit) + 1)
        return raw(h)


# field, the maximum's name, a header with that field at its maximum, the same one unit past it
CASES = {
    "tenant": ("MAX_TENANT", lambda n: make(tenant="t" * n), MAX_TENANT),
    "name": ("MAX_NAME", lambda n: make(name="é" * (n // 2) + "x" * (n % 2)), MAX_NAME),
    "KMS URI": ("MAX_URI", lambda n: make(slots=(KeySlot("local:///" + "k" * (n - 9), "1", b"w"),)), MAX_URI),
    "key version": ("MAX_KEY_VERSION", lambda n: make(slots=(KeySlot("u", "7" * n, b"w"),)), MAX_KEY_VERSION),
    "wrapped DEK": ("MAX_WRAPPED", lambda n: make(slots=(KeySlot("u", "1", b"w" * n),)), MAX_WRAPPED),
}


@pytest.mark.parametrize("field", CASES)
def test_a_length_prefixed_field_at_its_maximum_round_trips(field):
    _, build, limit = CASES[field]
    h = build(limit)
    parsed = parse(raw(h))
    assert parsed == Header(**{**h.__dict__, "commitment": b"c" * 32, "mac": b"m" * 32})
    # parse keeps the declared length as Header.length; a header built from the same fields works it out
    assert parsed.length == len(raw(h)) == dataclasses.replace(parsed).length


@pytest.mark.parametrize("field", CASES)
def test_one_past_a_fields_maximum_is_refused_by_writer_and_reader(field, monkeypatch):
    name, build, limit = CASES[field]
    h = build(limit + 1)
    with pytest.raises(ValueError, match=f"{field} is {limit + 1} bytes, over its maximum of {limit}"):
        serialize_unsigned(h)
    data = over_the_limit(monkeypatch, name, h)
    with pytest.raises(FormatError) as e:
        parse(data, "/ckpt/f")
    assert str(e.value) == f"/ckpt/f: {field} length {limit + 1} over its maximum of {limit}"


def test_key_slot_count_from_one_to_max_slots():
    for n in (1, MAX_SLOTS):
        assert len(parse(raw(make(slots=(SLOT,) * n))).slots) == n
    for n in (0, MAX_SLOTS + 1):
        with pytest.raises(ValueError, match=f"1 to {MAX_SLOTS} key slots, not {n}"):
            serialize_unsigned(make(slots=(SLOT,) * n))
    data = bytearray(raw(make(slots=(SLOT,) * MAX_SLOTS)))
    count_at = header.PREFIX_LEN + header.FIXED.size + 2 + 2  # after the (empty) tenant and name
    assert data[count_at] == MAX_SLOTS
    for n in (0, MAX_SLOTS + 1):
        data[count_at] = n
        with pytest.raises(FormatError) as e:
            parse(bytes(data), "/ckpt/f")
        assert str(e.value) == f"/ckpt/f: key slot count {n} outside [1, {MAX_SLOTS}]"


def _header_of_length(total: int) -> Header:
    """A header of exactly ``total`` bytes: the largest fields, then one slot's wrapped DEK fills the rest."""
    big = KeySlot("u", "1", b"w" * MAX_WRAPPED)
    h = make(tenant="t" * MAX_TENANT, name="n" * MAX_NAME, slots=(big,) * 7 + (KeySlot("u", "1", b""),))
    rest = total - h.length
    assert 0 < rest <= MAX_WRAPPED
    return make(tenant=h.tenant, name=h.name, slots=(big,) * 7 + (KeySlot("u", "1", b"w" * rest),))


def test_header_length_at_its_maximum_and_one_past():
    h = _header_of_length(MAX_HEADER_LEN)
    data = raw(h)
    assert len(data) == MAX_HEADER_LEN == parse(data).length
    with pytest.raises(ValueError, match=f"header of {MAX_HEADER_LEN + 1} bytes is over its maximum"):
        serialize_unsigned(_header_of_length(MAX_HEADER_LEN + 1))
    prefix = bytearray(data[:header.PREFIX_LEN])
    prefix[8:12] = (MAX_HEADER_LEN + 1).to_bytes(4, "big")
    with pytest.raises(FormatError, match=r"^/ckpt/f: header length 65537 outside \[\d+, 65536\]$"):
        parse_prefix(bytes(prefix), "/ckpt/f")
    for version in header.VERSIONS:  # and the smallest header of each version, one below
        least = header.min_header_length(version)
        prefix[4], prefix[8:12] = version, least.to_bytes(4, "big")
        assert parse_prefix(bytes(prefix))[1] == least
        prefix[8:12] = (least - 1).to_bytes(4, "big")
        with pytest.raises(FormatError, match=f"header length {least - 1} outside"):
            parse_prefix(bytes(prefix), "/ckpt/f")


def test_segment_size_limits_in_writer_and_reader():
    prefix = bytearray(raw(make())[:header.PREFIX_LEN])
    for size in (MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE):
        assert validate_segment_size(size) == size
        prefix[12:16] = size.to_bytes(4, "big")
        assert parse_prefix(bytes(prefix))[2] == size
    for size in (MIN_SEGMENT_SIZE - header.SEGMENT_ALIGN, MAX_SEGMENT_SIZE + header.SEGMENT_ALIGN,
                 MIN_SEGMENT_SIZE + 1):
        with pytest.raises(ValueError, match="segment size"):
            validate_segment_size(size)
        prefix[12:16] = size.to_bytes(4, "big")
        with pytest.raises(FormatError, match=f"^/ckpt/f: segment size {size} is not allowed$"):
            parse_prefix(bytes(prefix), "/ckpt/f")


@pytest.mark.parametrize("suite", sorted(header.SUITE_NAMES))
def test_segment_count_at_max_segments_and_one_past(suite):
    seg, hlen = 16, 200
    most = layout.MAX_SEGMENTS * seg  # plaintext bytes of a file with the most segments
    assert layout.segment_count(most, seg) == layout.MAX_SEGMENTS
    ct = layout.ciphertext_length(most, hlen, seg, suite)
    assert layout.plaintext_length(ct, hlen, seg, suite) == most
    one_more = layout.ciphertext_length(most + 1, hlen, seg, suite)
    with pytest.raises(FormatError, match="^/ckpt/f: truncated or extended: length fits no segment layout$"):
        layout.plaintext_length(one_more, hlen, seg, suite, "/ckpt/f")
    assert len(layout.nonce(b"p" * 7, layout.MAX_SEGMENTS - 1, True)) == 12
    with pytest.raises(FormatError, match=f"segment index {layout.MAX_SEGMENTS} out of range"):
        layout.nonce(b"p" * 7, layout.MAX_SEGMENTS, True)

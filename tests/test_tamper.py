"""Every tamper class ends in exactly its error: the one opaque AuthenticationError, a FormatError for
framing no file has, a KeyAccessError where the edit changes which key opens the file."""
import io
import os
import struct
from urllib.parse import urlsplit

import pytest

from heliosdb_flink_crypto import (SUITE_AES_CBC_HMAC, SUITE_AES_GCM, AuthenticationError, CheckpointCrypto,
                                   FormatError, HeliosCryptoError, KeyAccessError)
from heliosdb_flink_crypto.format import PREFIX_LEN, overhead, parse, parse_prefix, plaintext_length, segment_offset
from heliosdb_flink_crypto.kms.local import LocalKeyring

SEG = 64


@pytest.fixture(params=[SUITE_AES_GCM, SUITE_AES_CBC_HMAC], ids=["gcm", "cbc"])
def c(request, keyring_uri):
    return CheckpointCrypto([keyring_uri], suite=request.param, segment_size=SEG)


@pytest.fixture
def sample(c, payload):
    data = payload(5 * SEG + 10)  # 6 segments, the last short
    ct = c.encrypt_bytes(data)
    h = parse(ct)
    seg_ct = SEG + overhead(h.suite)
    return data, ct, h, seg_ct


def read_all(c, ct):
    return c.decrypt_bytes(bytes(ct), path="/ckpt/chk-1/state")


def header_fields(h, raw):
    """Byte ranges of every header field of ``raw`` (parsed ``h``), by what a change to it must give."""
    lp = struct.Struct(">H")
    fields = {"prefix": [(0, PREFIX_LEN)], "reserved": [(55, 56)], "dek id": [(56, 72)],
              "authenticated": [(16, 55), (72, 80), (h.length - 64, h.length)], "length": [], "slot uri": [],
              "slot key": []}
    pos = 80
    for text in (h.tenant.encode(), h.name.encode()):
        fields["length"].append((pos, pos + 2))
        fields["authenticated"].append((pos + 2, pos + 2 + len(text)))
        pos += 2 + len(text)
    fields["length"].append((pos, pos + 1))  # slot count
    pos += 1
    for slot in h.slots:
        for what, value in (("slot uri", slot.kms_uri.encode()), ("slot key", slot.key_version.encode()),
                            ("slot key", slot.wrapped)):
            assert lp.unpack_from(raw, pos)[0] == len(value)
            fields["length"].append((pos, pos + 2))
            fields[what].append((pos + 2, pos + 2 + len(value)))
            pos += 2 + len(value)
    assert pos == h.length - 64
    return fields


def expected_for(field, bad, h, uri):
    """The one error class a bit flip in ``field`` must end in."""
    if field == "prefix":  # still a parseable header of a possible length? then the header MAC catches it
        try:
            suite, hlen, seg = parse_prefix(bad)
            parse(bad)
            plaintext_length(len(bad), hlen, seg, suite)
        except FormatError:
            return FormatError
        return AuthenticationError
    if field in ("reserved", "length"):
        return FormatError
    if field == "slot uri":  # another KMS than the one trusted: no key; the same keyring spelt otherwise: MAC
        f, o = urlsplit(parse(bad).slots[0].kms_uri), urlsplit(uri)
        same = (f.scheme, f.netloc, os.path.normpath(f.path)) == (o.scheme, o.netloc, os.path.normpath(o.path))
        return AuthenticationError if same else KeyAccessError
    if field in ("dek id", "slot key"):  # the KMS context names the DEK id: the wrapped DEK does not open
        return KeyAccessError
    return AuthenticationError


def test_every_header_bit_flip_ends_in_exactly_its_fields_error(c, payload, keyring_uri):
    """Nothing in the header is read as true before the MAC: a flip in an authenticated field gives the
    opaque AuthenticationError (never a KeyAccessError or a FormatError), framing fields a FormatError,
    the fields that choose the key a KeyAccessError; every byte is covered."""
    ct = c.encrypt_bytes(payload(5 * SEG + 10), name="chk-1/state")
    h = parse(ct)
    fields = header_fields(h, ct)
    covered = sorted(i for spans in fields.values() for a, b in spans for i in range(a, b))
    assert covered == list(range(h.length))
    seen = {}
    for field, spans in fields.items():
        for a, b in spans:
            for i in range(a, b):
                bad = bytearray(ct)
                bad[i] ^= 0x01
                want = expected_for(field, bytes(bad), h, keyring_uri)
                with pytest.raises(HeliosCryptoError) as e:
                    c.decrypt_bytes(bytes(bad), path="/ckpt/chk-1/state", name="chk-1/state")
                assert type(e.value) is want, f"byte {i} ({field}): {e.value!r}"
                assert "/ckpt/chk-1/state" in str(e.value)
                seen[want] = seen.get(want, 0) + 1
    assert set(seen) == {AuthenticationError, FormatError, KeyAccessError}
    assert seen[AuthenticationError] >= 64 + 39 + 8 + len("chk-1/state")


@pytest.mark.parametrize("where", ["first", "middle", "last", "tag"])
def test_body_bit_flip(c, sample, where):
    data, ct, h, seg_ct = sample
    pos = {"first": h.length, "middle": h.length + 2 * seg_ct + 5, "last": len(ct) - 20, "tag": len(ct) - 1}[where]
    bad = bytearray(ct)
    bad[pos] ^= 0x80
    with pytest.raises(AuthenticationError) as e:
        read_all(c, bad)
    assert "/ckpt/chk-1/state" in str(e.value)
    assert "tag" not in str(e.value).lower()  # opaque: never says which check failed


@pytest.mark.parametrize("cut, error", [("at_boundary", AuthenticationError), ("inside_segment", FormatError),
                                        ("one_byte", AuthenticationError), ("header_only", FormatError),
                                        ("inside_header", FormatError)])
def test_truncation(c, sample, cut, error):
    """A length some file could have reads until the final segment fails to authenticate; a length no
    file has (a final segment shorter than its tag, no segment at all) is a FormatError up front."""
    data, ct, h, seg_ct = sample
    end = {"at_boundary": h.length + 3 * seg_ct, "inside_segment": h.length + 3 * seg_ct + 10,
           "one_byte": len(ct) - 1, "header_only": h.length, "inside_header": h.length - 5}[cut]
    with pytest.raises(HeliosCryptoError) as e:
        read_all(c, ct[:end])
    assert type(e.value) is error, repr(e.value)


def test_appended_bytes(c, sample):
    data, ct, h, seg_ct = sample
    for extra in (b"\0", b"x" * seg_ct, ct[h.length:h.length + seg_ct]):
        with pytest.raises(HeliosCryptoError) as e:
            read_all(c, ct + extra)
        assert type(e.value) is AuthenticationError, repr(e.value)


def _segments(ct, h, seg_ct):
    body = ct[h.length:]
    return [body[i:i + seg_ct] for i in range(0, len(body), seg_ct)]


def test_swapped_duplicated_reordered_segments(c, sample):
    data, ct, h, seg_ct = sample
    segs = _segments(ct, h, seg_ct)
    head = ct[:h.length]
    variants = [
        [segs[1], segs[0]] + segs[2:],          # swapped
        [segs[0], segs[0]] + segs[2:],          # duplicated in place
        segs[:1] + segs[2:5] + [segs[1], segs[5]],  # reordered
        segs[:4] + [segs[5]],                    # a middle segment dropped
        segs[:-1] + [segs[4]] + [segs[-1]],      # duplicated near the end
    ]
    for v in variants:
        with pytest.raises(HeliosCryptoError) as e:
            read_all(c, head + b"".join(v))
        assert type(e.value) is AuthenticationError, repr(e.value)


def test_segment_and_header_from_another_file(c, sample, payload):
    data, ct, h, seg_ct = sample
    other = c.encrypt_bytes(payload(len(data)))  # same DEK (cached), other salt
    ho = parse(other)
    assert ho.dek_id == h.dek_id
    spliced = bytearray(ct)
    off = segment_offset(2, h.length, SEG, h.suite)
    spliced[off:off + seg_ct] = other[off:off + seg_ct]
    with pytest.raises(AuthenticationError):
        read_all(c, spliced)
    with pytest.raises(AuthenticationError):  # header of one file, body of another
        read_all(c, other[:ho.length] + ct[h.length:])


def test_wrong_key(c, sample, tmp_path):
    data, ct, h, _ = sample
    other_uri = f"local://{tmp_path}/other.json"
    LocalKeyring.create(other_uri)
    # the header names the first keyring; a reader that trusts only another KMS cannot open it
    with pytest.raises(KeyAccessError):
        CheckpointCrypto([other_uri]).decrypt_bytes(ct, path="f")
    # a keyring file replaced by another one's keys: the wrapped DEK does not open
    kr_path = h.slots[0].kms_uri[len("local://"):]
    with open(kr_path, "w") as dst, open(str(tmp_path / "other.json")) as src:
        dst.write(src.read())
    with pytest.raises(KeyAccessError):
        CheckpointCrypto([h.slots[0].kms_uri]).decrypt_bytes(ct, path="f")


def test_wrong_kek_version_is_refused(c, sample, keyring_uri):
    data, ct, h, _ = sample
    raw = bytearray(ct)
    # version "1" -> "2" in the slot: the keyring has no version 2
    idx = raw.index(b"\x00\x011", 80)
    raw[idx + 2] = ord("2")
    with pytest.raises(KeyAccessError, match="no key version '2'"):
        CheckpointCrypto([keyring_uri]).decrypt_bytes(bytes(raw))
    LocalKeyring(keyring_uri).rotate()  # now version 2 exists, but the DEK was not wrapped under it
    with pytest.raises(KeyAccessError, match="does not open") as e:
        CheckpointCrypto([keyring_uri]).decrypt_bytes(bytes(raw))
    assert type(e.value) is KeyAccessError


def test_cached_dek_with_forged_slots_still_fails(c, sample):
    """A header whose key slot was edited never reuses the cached DEK of the same DEK id: the edited
    wrapping is unwrapped again and does not open."""
    data, ct, h, _ = sample
    assert read_all(c, ct) == data  # the DEK is cached
    raw = bytearray(ct)
    raw[h.length - 70] ^= 1  # inside the last slot's wrapped DEK
    with pytest.raises(HeliosCryptoError) as e:
        read_all(c, raw)
    assert type(e.value) is KeyAccessError, repr(e.value)


def test_reader_refuses_partial_reads_of_tampered_segments(c, sample):
    data, ct, h, seg_ct = sample
    bad = bytearray(ct)
    bad[h.length + 3 * seg_ct + 1] ^= 1
    with c.reader(io.BytesIO(bytes(bad)), path="p", name="") as r:
        assert r.read(SEG) == data[:SEG]  # untouched segments still read
        r.seek(3 * SEG)
        with pytest.raises(AuthenticationError):
            r.read(1)

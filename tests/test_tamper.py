"""Every tamper class ends in the one opaque AuthenticationError (or a FormatError for malformed framing)."""
import io

import pytest

from heliosdb_flink_crypto import (SUITE_AES_CBC_HMAC, SUITE_AES_GCM, AuthenticationError, CheckpointCrypto,
                                   FormatError, HeliosCryptoError, KeyAccessError)
from heliosdb_flink_crypto.format import parse, segment_offset
from heliosdb_flink_crypto.kms.local import LocalKeyring

SEG = 64
BAD = (AuthenticationError, FormatError)


@pytest.fixture(params=[SUITE_AES_GCM, SUITE_AES_CBC_HMAC], ids=["gcm", "cbc"])
def c(request, keyring_uri):
    return CheckpointCrypto([keyring_uri], suite=request.param, segment_size=SEG)


@pytest.fixture
def sample(c, payload):
    data = payload(5 * SEG + 10)  # 6 segments, the last short
    ct = c.encrypt_bytes(data)
    h = parse(ct)
    seg_ct = SEG + (16 if h.suite == SUITE_AES_GCM else 48)
    return data, ct, h, seg_ct


def read_all(c, ct):
    return c.decrypt_bytes(bytes(ct), path="/ckpt/chk-1/state")


def test_every_header_bit_flip_is_detected(c, sample):
    data, ct, h, _ = sample
    for i in range(h.length):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        with pytest.raises(HeliosCryptoError):
            read_all(c, bad)


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


@pytest.mark.parametrize("cut", ["at_boundary", "inside_segment", "one_byte", "header_only", "inside_header"])
def test_truncation(c, sample, cut):
    data, ct, h, seg_ct = sample
    end = {"at_boundary": h.length + 3 * seg_ct, "inside_segment": h.length + 3 * seg_ct + 10,
           "one_byte": len(ct) - 1, "header_only": h.length, "inside_header": h.length - 5}[cut]
    with pytest.raises(BAD):
        read_all(c, ct[:end])


def test_appended_bytes(c, sample):
    data, ct, h, seg_ct = sample
    for extra in (b"\0", b"x" * seg_ct, ct[h.length:h.length + seg_ct]):
        with pytest.raises(BAD):
            read_all(c, ct + extra)


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
        with pytest.raises(BAD):
            read_all(c, head + b"".join(v))


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
    with pytest.raises((KeyAccessError, AuthenticationError)):
        CheckpointCrypto([keyring_uri]).decrypt_bytes(bytes(raw))
    LocalKeyring(keyring_uri).rotate()  # now version 2 exists, but the DEK was not wrapped under it
    with pytest.raises((KeyAccessError, AuthenticationError)):
        CheckpointCrypto([keyring_uri]).decrypt_bytes(bytes(raw))


def test_cached_dek_with_forged_slots_still_fails(c, sample):
    """A header edited to point at other key slots fails its MAC even when the DEK is cached."""
    data, ct, h, _ = sample
    raw = bytearray(ct)
    raw[h.length - 70] ^= 1  # inside the last slot's wrapped DEK
    with pytest.raises(HeliosCryptoError):
        read_all(c, raw)


def test_reader_refuses_partial_reads_of_tampered_segments(c, sample):
    data, ct, h, seg_ct = sample
    bad = bytearray(ct)
    bad[h.length + 3 * seg_ct + 1] ^= 1
    with c.reader(io.BytesIO(bytes(bad)), path="p", name="") as r:
        assert r.read(SEG) == data[:SEG]  # untouched segments still read
        r.seek(3 * SEG)
        with pytest.raises(AuthenticationError):
            r.read(1)

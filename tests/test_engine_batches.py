"""The engine's batched paths produce exactly the file the segment-by-segment path does, hand the
sink fewer and larger writes, and reuse their buffers from file to file."""
import io

import pytest

from heliosdb_flink_crypto import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, CheckpointCrypto
from heliosdb_flink_crypto.engine import buffers, stream
from heliosdb_flink_crypto.format import parse

SEG = 64


class Recording(io.RawIOBase):
    """A sink that keeps every write it gets, as bytes."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def writable(self):
        return True

    def write(self, b):
        self.writes.append(bytes(b))
        return len(b)


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
@pytest.mark.parametrize("n,last", [(0, True), (1, True), (SEG, False), (SEG, True), (3 * SEG + 5, True),
                                    (5 * SEG, False)])
def test_seal_segments_is_segment_by_segment_sealing(keyring_uri, payload, suite, n, last):
    c = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    _, _, keys, _ = c.new_file()
    data = memoryview(payload(n))
    o = keys.overhead
    batch = bytearray(n + (n // SEG + 1) * o)
    got = keys.seal_segments(7, last, data, SEG, memoryview(batch))
    one_by_one, count = bytearray(), max(1, -(-n // SEG))
    for i in range(count):
        part = data[i * SEG:(i + 1) * SEG]
        out = bytearray(len(part) + o)
        keys.seal_into(7 + i, last and i == count - 1, part, out)
        one_by_one += out
    assert bytes(batch[:got]) == bytes(one_by_one)  # same nonces, same last flag, back to back
    assert got == n + count * o


def test_a_large_write_reaches_the_sink_in_batches_and_decrypts(keyring_uri, payload):
    c = CheckpointCrypto([keyring_uri], segment_size=SEG)
    data = payload(SEG * 22 + 3)
    sink = Recording()
    with c.writer(sink) as w:
        w.write(data)
        sealed = sum(len(x) for x in sink.writes[1:])
        assert sealed == 22 * (SEG + 16)  # every whole segment is out before write() returns ...
    body = sink.writes[1:]
    assert [len(x) // (SEG + 16) for x in body[:-1]] == [stream.BATCH] * 5 + [2]  # ... up to BATCH per write
    assert c.decrypt_bytes(b"".join(sink.writes)) == data


def test_writers_reuse_their_buffers_from_file_to_file(keyring_uri, payload):
    c = CheckpointCrypto([keyring_uri], segment_size=SEG)
    size = stream.BATCH * (SEG + 16)
    with c.writer(io.BytesIO()) as w:
        w.write(payload(10))
        out = w._outbuf
    assert buffers.take(size) is out  # given back on close, taken by the next stream
    buffers.give(out)
    with c.writer(io.BytesIO()) as w2:
        assert w2._outbuf is out
        w2.write(payload(SEG * 9 + 1))
    ct, small = io.BytesIO(), payload(5)
    with c.writer(ct) as w3:  # stale bytes in a reused buffer never reach a file
        w3.write(small)
    assert c.decrypt_bytes(ct.getvalue()) == small
    assert parse(ct.getvalue()).segment_size == SEG


def test_the_pool_keeps_a_few_idle_buffers_per_size():
    taken = [buffers.take(12345) for _ in range(buffers.KEEP + 3)]
    for b in taken:
        buffers.give(b)
    again = [buffers.take(12345) for _ in range(buffers.KEEP + 3)]
    assert sum(any(a is t for t in taken) for a in again) == buffers.KEEP
    assert all(len(a) == 12345 for a in again)


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
@pytest.mark.parametrize("n", [0, 5, SEG, 4 * SEG + 9])
def test_open_segments_opens_a_batch_and_refuses_a_flipped_or_misplaced_one(keyring_uri, payload, suite, n):
    from heliosdb_flink_crypto.engine.suites import SegmentAuthError
    c = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    _, _, keys, _ = c.new_file()
    data = payload(n)
    sealed = bytearray(n + (n // SEG + 1) * keys.overhead)
    got = keys.seal_segments(3, True, memoryview(data), SEG, memoryview(sealed))
    sealed = sealed[:got]
    out = bytearray(n + 1)
    assert keys.open_segments(3, True, memoryview(sealed), SEG, memoryview(out)) == n
    assert bytes(out[:n]) == data
    with pytest.raises(SegmentAuthError):  # the batch read as not the file's end: the last flag differs
        keys.open_segments(3, False, memoryview(sealed), SEG, memoryview(out))
    with pytest.raises(SegmentAuthError):  # at another index
        keys.open_segments(4, True, memoryview(sealed), SEG, memoryview(out))
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(SegmentAuthError):
        keys.open_segments(3, True, memoryview(flipped), SEG, memoryview(out))


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
def test_a_segment_that_fails_leaves_no_plaintext_in_the_output(keyring_uri, payload, suite):
    """F-22: whether opened alone or in a batch, a segment that fails to authenticate leaves nothing
    of its (unauthenticated) plaintext where it was to go; a segment shorter than the tag fails."""
    from heliosdb_flink_crypto.engine.suites import SegmentAuthError
    c = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    _, _, keys, _ = c.new_file()
    data = payload(3 * SEG)
    o = keys.overhead
    sealed = bytearray(3 * (SEG + o))
    keys.seal_segments(0, True, memoryview(data), SEG, memoryview(sealed))
    sealed[SEG + o + 5] ^= 1  # segment 1's ciphertext
    out = bytearray(b"\xee" * (3 * SEG))
    with pytest.raises(SegmentAuthError):
        keys.open_segments(0, True, memoryview(sealed), SEG, memoryview(out))
    assert bytes(out[:SEG]) == data[:SEG]  # segment 0 authenticated
    assert bytes(out[SEG:2 * SEG]) in (bytes(SEG), b"\xee" * SEG)  # wiped, or never written (CBC)
    one = bytearray(b"\xee" * SEG)
    with pytest.raises(SegmentAuthError):
        keys.open_into(1, False, sealed[SEG + o:2 * (SEG + o)], one)
    assert bytes(one) in (bytes(SEG), b"\xee" * SEG)
    for short in (b"", bytes(o - 1)):
        with pytest.raises(SegmentAuthError):
            keys.open_into(0, True, short, bytearray(SEG))
        with pytest.raises(SegmentAuthError):
            keys.open_segments(0, True, memoryview(short), SEG, memoryview(bytearray(SEG)))


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
def test_a_batch_checks_its_run_of_segment_indexes_against_the_format_range(keyring_uri, payload, suite):
    """A batch's nonces are built in its loop, the run's range checked once: the last index a file
    may have seals and opens (as nonce() allows it), a run past it or below 0 is refused before any
    cipher call, naming the index at fault."""
    from heliosdb_flink_crypto.errors import FormatError
    from heliosdb_flink_crypto.format.layout import MAX_SEGMENTS
    c = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    _, _, keys, _ = c.new_file()
    o = keys.overhead
    data = payload(2 * SEG)
    sealed = bytearray(2 * (SEG + o))
    assert keys.seal_segments(MAX_SEGMENTS - 2, True, memoryview(data), SEG, memoryview(sealed)) == len(sealed)
    one = bytearray(SEG + o)
    keys.seal_into(MAX_SEGMENTS - 1, True, data[SEG:], one)
    assert sealed[SEG + o:] == one  # the final segment: index MAX_SEGMENTS - 1, flagged last
    out = bytearray(2 * SEG)
    assert keys.open_segments(MAX_SEGMENTS - 2, True, memoryview(sealed), SEG, memoryview(out)) == 2 * SEG
    assert out == data
    for index, bad in ((MAX_SEGMENTS - 1, MAX_SEGMENTS), (-1, -1)):
        untouched = bytearray(b"\xee" * len(sealed))
        with pytest.raises(FormatError, match=f"segment index {bad} out of range"):
            keys.seal_segments(index, True, memoryview(data), SEG, memoryview(untouched))
        with pytest.raises(FormatError, match=f"segment index {bad} out of range"):
            keys.open_segments(index, True, memoryview(sealed), SEG, memoryview(untouched))
        assert untouched == b"\xee" * len(sealed)


def test_a_reader_of_whole_segments_from_memory_decrypts_in_batches_without_buffers_of_its_own(keyring_uri, payload):
    c = CheckpointCrypto([keyring_uri], segment_size=SEG)
    data = payload(SEG * 10 + 7)
    ct = c.encrypt_bytes(data)
    with c.reader(ct) as r:
        got = bytearray()
        chunk = bytearray(SEG * 4)
        while True:
            n = r.readinto(chunk)
            if not n:
                break
            got += chunk[:n]
        assert r._pt is None and r._ct is None  # straight into the caller's buffer, no segment cache
    assert bytes(got) == data
    flipped = bytearray(ct)
    flipped[parse(ct).length + 2 * (SEG + 16) + 5] ^= 1  # in the third segment of the first batch
    from heliosdb_flink_crypto.errors import AuthenticationError
    with c.reader(bytes(flipped)) as r:
        chunk = bytearray(SEG * 4)
        with pytest.raises(AuthenticationError):
            r.readinto(chunk)
        assert bytes(chunk[:2 * SEG]) == data[:2 * SEG]  # the segments before it authenticated
        assert bytes(chunk[2 * SEG:3 * SEG]) == bytes(SEG)  # none of the failing one's plaintext

"""Round trips over the sizes that matter, both suites, file objects and bytes."""
import io
import threading

import pytest

from heliosdb_flink_crypto import SUITE_AES_CBC_HMAC, SUITE_AES_GCM, CheckpointCrypto
from heliosdb_flink_crypto.format import ciphertext_length, parse, plaintext_length

SEG = 64
SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 7, 1000]


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
@pytest.mark.parametrize("n", SIZES)
def test_round_trip_sizes(keyring_uri, payload, suite, n):
    c = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    data = payload(n)
    ct = c.encrypt_bytes(data)
    h = parse(ct)
    assert len(ct) == ciphertext_length(n, h.length, SEG, suite)
    assert plaintext_length(len(ct), h.length, SEG, suite) == n
    assert c.decrypt_bytes(ct) == data
    if n >= 16:
        assert data not in ct


def test_same_input_gives_distinct_ciphertexts(crypto, payload):
    data = payload(300)
    a, b = crypto.encrypt_bytes(data), crypto.encrypt_bytes(data)
    assert a != b
    assert parse(a).salt != parse(b).salt and parse(a).nonce_prefix != parse(b).nonce_prefix
    assert a[parse(a).length:] != b[parse(b).length:]


@pytest.mark.parametrize("chunks", [[1] * 200, [63, 1, 64, 65, 7], [300], [64, 64, 64], [0, 5, 0, 128]])
def test_writer_accepts_any_write_pattern(crypto, payload, chunks):
    data = payload(sum(chunks))
    buf = io.BytesIO()
    with crypto.writer(buf) as w:
        pos = 0
        for n in chunks:
            assert w.write(data[pos:pos + n]) == n
            pos += n
            assert w.tell() == pos
            w.flush()  # must never cut a segment
    assert crypto.decrypt_bytes(buf.getvalue()) == data


def test_flush_does_not_change_the_ciphertext_layout(crypto, payload):
    data = payload(200)
    buf = io.BytesIO()
    with crypto.writer(buf) as w:
        for i in range(0, 200, 10):
            w.write(data[i:i + 10])
            w.flush()
    h = parse(buf.getvalue())
    assert len(buf.getvalue()) == ciphertext_length(200, h.length, SEG, h.suite)


def test_writer_aborted_by_exception_never_authenticates(crypto, payload):
    from heliosdb_flink_crypto import AuthenticationError, FormatError
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with crypto.writer(buf) as w:
            w.write(payload(150))
            raise RuntimeError("job failed mid-file")
    with pytest.raises((AuthenticationError, FormatError)):
        crypto.decrypt_bytes(buf.getvalue())


def test_writer_refuses_writes_after_close(crypto):
    w = crypto.writer(io.BytesIO())
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError):
        w.write(b"x")


def test_concurrent_writers_and_readers(keyring_uri, payload):
    c = CheckpointCrypto([keyring_uri], segment_size=128)
    blobs = [payload(1000 + i * 37) for i in range(16)]
    out, errors = [None] * len(blobs), []

    def work(i):
        try:
            ct = c.encrypt_bytes(blobs[i])
            for _ in range(3):
                assert c.decrypt_bytes(ct) == blobs[i]
            out[i] = ct
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(blobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({parse(x).salt for x in out}) == len(blobs)
    # one DEK served every file: the KMS was asked once
    assert len({parse(x).dek_id for x in out}) == 1
    assert c.cache.stats()["misses"] >= 1


def test_reader_over_real_file(tmp_path, crypto, payload):
    data = payload(5000)
    p = tmp_path / "state"
    with open(p, "wb") as f, crypto.writer(f) as w:
        w.write(data)
    with open(p, "rb") as f, crypto.reader(f, path=str(p)) as r:
        assert r.readable() and r.seekable()
        assert r.size == 5000
        assert r.read(10) == data[:10]
        assert r.seek(-10, 2) == 4990
        assert r.read() == data[-10:]
        assert r.read(5) == b""
        r.seek(100)
        r.seek(50, 1)
        assert r.tell() == 150
        assert r.pread(4000, 200) == data[4000:4200]
        assert r.tell() == 150  # positional reads do not move the position
        with pytest.raises(ValueError):
            r.seek(-1)


def test_writer_can_close_its_sink(crypto, tmp_path):
    f = open(tmp_path / "out", "wb")
    with crypto.writer(f, close_sink=True) as w:  # a file opened by path: bound to its name (F-24)
        w.write(b"state")
    assert f.closed
    assert crypto.decrypt_bytes((tmp_path / "out").read_bytes(), name="out") == b"state"

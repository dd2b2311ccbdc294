"""The end of a file authenticates (format rule F-25): no reader reports a length, returns EOF or hands
out bytes as the whole file before the final (last-flagged) segment authenticated; reads below a cut
still return authenticated bytes; a failing segment leaves no plaintext in the caller's buffer;
writer and readers agree on the largest segment index."""
import io
import os

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto, FormatError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.engine import DataKey, DecryptingReader, new_header, open_header
from heliosdb_flink_crypto.format import MAX_SEGMENTS, SUITE_AES_CBC_HMAC, SUITE_AES_GCM, KeySlot, parse, \
    plaintext_length

SEG = 64


def write(crypto, path, data):
    with open(path, "wb") as f, crypto.writer(f) as w:
        w.write(data)
    return data


def cut(path, length):
    raw = path.read_bytes()
    path.write_bytes(raw[:length])
    return raw


def hlen(path):
    return parse(path.read_bytes()).length


@pytest.mark.parametrize("suite,o", [(SUITE_AES_GCM, 16), (SUITE_AES_CBC_HMAC, 48)])
def test_a_file_cut_to_one_segment_overhead_never_reads_as_empty(tmp_path, keyring_uri, suite, o):
    crypto = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    p = tmp_path / "state"
    write(crypto, p, os.urandom(1000))
    cut(p, hlen(p) + o)  # a valid layout: an empty final segment, which never authenticates
    with crypto.open_path(str(p)) as r:
        with pytest.raises(AuthenticationError, match=str(p)):
            r.read()
        with pytest.raises(AuthenticationError):
            r.size
        with pytest.raises(AuthenticationError):
            r.seek(0, os.SEEK_END)
        with pytest.raises(AuthenticationError):
            r.readinto(bytearray(10))
        with pytest.raises(AuthenticationError):
            r.pread(0, 10)
    with pytest.raises(AuthenticationError):
        crypto.decrypt_bytes(p.read_bytes(), name="state")


def test_decrypt_of_a_cut_file_fails_and_writes_nothing(tmp_path, keyring_uri, capsys, monkeypatch):
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", keyring_uri)
    crypto = CheckpointCrypto([keyring_uri], segment_size=SEG)
    p, out = tmp_path / "state", tmp_path / "plain"
    write(crypto, p, os.urandom(1000))
    cut(p, hlen(p) + 16)
    assert main(["decrypt", str(p), str(out)]) == 2
    assert "authentication failed" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["keyring.json", "state"], "no plaintext, no partial file left"
    assert main(["decrypt", str(p), "-"]) == 2


def test_an_empty_file_with_a_smashed_tag_never_reads_as_empty(tmp_path, keyring_uri, monkeypatch, capsys):
    monkeypatch.setenv("HELIOSDB_CRYPTO_KMS", keyring_uri)
    crypto = CheckpointCrypto([keyring_uri], segment_size=SEG)
    good, bad = tmp_path / "good", tmp_path / "bad"
    write(crypto, good, b"")
    write(crypto, bad, b"")
    raw = bytearray(bad.read_bytes())
    raw[-1] ^= 1
    bad.write_bytes(bytes(raw))
    with crypto.open_path(str(good)) as r:
        assert r.read() == b"" and r.size == 0
    with crypto.open_path(str(bad)) as r:
        with pytest.raises(AuthenticationError):
            r.read()
    with crypto.open_path(str(bad)) as r:
        with pytest.raises(AuthenticationError):
            r.readall()
    capsys.readouterr()
    assert main(["decrypt", str(bad), str(tmp_path / "out")]) == 2
    assert "authentication failed" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_truncation_at_every_segment_boundary_fails_at_the_end_not_below_the_cut(tmp_path, keyring_uri):
    crypto = CheckpointCrypto([keyring_uri], segment_size=SEG)
    data = os.urandom(4 * SEG + 5)
    for k in range(1, 5):
        p = tmp_path / f"cut-{k}"
        write(crypto, p, data)
        cut(p, hlen(p) + k * (SEG + 16))
        with crypto.open_path(str(p)) as r:
            # random access below the cut: the segments before the wrongly-last one authenticate
            assert r.pread(0, (k - 1) * SEG) == data[:(k - 1) * SEG]
            r.seek((k - 1) * SEG - 3 if k > 1 else 0)
            with pytest.raises(AuthenticationError):
                r.read()  # the rest of the file: the cut segment never authenticates
            with pytest.raises(AuthenticationError):
                r.pread(0, 100 * SEG)  # a short positional read is an end of file too
            with pytest.raises(AuthenticationError):
                r.size


def test_a_sequential_read_checks_the_end_once_and_reports_it(tmp_path, keyring_uri):
    crypto = CheckpointCrypto([keyring_uri], segment_size=SEG)
    p = tmp_path / "whole"
    data = write(crypto, p, os.urandom(3 * SEG + 1))
    with crypto.open_path(str(p)) as r:
        assert r.read() == data
        n = r.crypto_bytes
        assert r.read() == b"" and r.read(10) == b"" and r.readinto(bytearray(5)) == 0
        assert r.size == len(data) and r.seek(0, os.SEEK_END) == len(data)
        assert r.crypto_bytes == n, "the final segment was not authenticated twice"
    with crypto.open_path(str(p)) as r:
        assert r.size == len(data)  # a length alone: the final segment is read for it
        assert r.crypto_bytes == 1


@pytest.mark.parametrize("suite", [SUITE_AES_GCM, SUITE_AES_CBC_HMAC])
def test_a_failing_segment_leaves_no_plaintext_in_the_callers_buffer(tmp_path, keyring_uri, suite):
    crypto = CheckpointCrypto([keyring_uri], suite=suite, segment_size=SEG)
    data = b"S" * SEG + b"secret-plaintext-of-segment-one!" * 2 + b"T" * 10
    ct = bytearray(crypto.encrypt_bytes(data))
    h = parse(bytes(ct))
    o = 16 if suite == SUITE_AES_GCM else 48
    ct[h.length + (SEG + o) + SEG + o - 1] ^= 1  # segment 1's tag: its ciphertext is intact
    with crypto.reader(bytes(ct), name="") as r:
        buf = bytearray(b"\xaa" * (2 * SEG))
        with pytest.raises(AuthenticationError):
            r.readinto(buf)  # both segments decrypt straight into buf
        assert buf[:SEG] == data[:SEG]  # authenticated: may stay
        assert buf[SEG:] in (bytes(SEG), b"\xaa" * SEG), "unauthenticated plaintext left in the buffer"
        assert b"secret" not in bytes(buf)


def _sparse(path, count, dk):
    """A file of ``count`` 16-byte segments of which only the final one is written (sparse): index
    ``count - 1``, flagged last. Returns the writer's refusal, if any."""
    h, raw, keys = new_header(dk, SUITE_AES_GCM, 16, name="edge")
    out = bytearray(21)
    try:
        keys.seal_into(count - 1, True, b"edge!", out)
        refused = None
    except FormatError as e:
        refused = e
    with open(path, "wb") as f:
        f.write(raw)
        f.seek(h.length + (count - 1) * 32)
        f.write(out)
    return h, refused


def test_readers_accept_exactly_the_largest_segment_index_the_writer_seals(tmp_path):
    dk = DataKey(bytes(16), bytes(range(32)), (KeySlot("local:///nowhere", "1", b"w"),))
    p = tmp_path / "edge"
    h, refused = _sparse(p, MAX_SEGMENTS, dk)
    assert refused is None
    with open(p, "rb") as f:
        keys = open_header(h, f.read(h.length), dk.key)
    with open(p, "rb") as f, DecryptingReader(f, h.length, keys, 16) as r:
        size = (MAX_SEGMENTS - 1) * 16 + 5
        assert r.size == size
        assert r.pread(size - 5, 10) == b"edge!"
    os.unlink(p)
    h, refused = _sparse(p, MAX_SEGMENTS + 1, dk)
    assert isinstance(refused, FormatError), "the writer must not seal index MAX_SEGMENTS"
    with pytest.raises(FormatError, match="fits no segment layout"):
        plaintext_length(os.path.getsize(p), h.length, 16, SUITE_AES_GCM)
    os.unlink(p)


def test_the_writer_fails_before_sealing_a_segment_no_reader_accepts(keyring_uri):
    crypto = CheckpointCrypto([keyring_uri], segment_size=16)
    for start, ok in ((MAX_SEGMENTS - 1, True), (MAX_SEGMENTS, False)):
        w = crypto.writer(io.BytesIO())
        w._index = start  # as if MAX_SEGMENTS - 1 (or MAX_SEGMENTS) segments were written before
        w.write(b"x" * 5)
        if ok:
            w.close()
        else:
            with pytest.raises(FormatError, match="at most"):
                w.close()
    w = crypto.writer(io.BytesIO())
    w._index = MAX_SEGMENTS - 1
    with pytest.raises(FormatError):  # a full, non-final segment at the last index: the next cannot follow
        w.write(b"x" * 33)
        w.close()


def test_an_impossible_length_is_a_format_error_before_anything_is_read(tmp_path, keyring_uri):
    crypto = CheckpointCrypto([keyring_uri], segment_size=SEG)
    p = tmp_path / "f"
    write(crypto, p, os.urandom(100))
    cut(p, hlen(p))
    with pytest.raises(FormatError, match="no final segment"):
        crypto.open_path(str(p))


def test_the_shims_native_buffer_holds_no_plaintext_of_a_failing_segment(keyring_uri):
    """What DecryptingInputStream hands Python: a native buffer to decrypt into. A segment that fails
    leaves nothing in it (the shim never hands the buffer out then, and it goes back to a pool)."""
    import json
    from test_flink_hooks import JavaBuffer, write_file
    from heliosdb_flink_crypto.flink import hooks
    hooks.reset()
    try:
        sid = hooks.dispatch("configure", json.dumps({"heliosdb.crypto.kms.uri": keyring_uri,
                                                      "heliosdb.crypto.segment-size": str(SEG)}))
        data = b"secret-plaintext" * 4
        raw = bytearray(write_file(sid, "/ckpt/f", data))
        raw[-1] ^= 1  # the tag of the only segment
        hl = parse(bytes(raw)).length
        hid = hooks.dispatch("reader", sid, "/ckpt/f", bytes(raw[:hl]))
        src, dst = JavaBuffer(SEG + 16), JavaBuffer(SEG)
        src.put(bytes(raw[hl:]))
        with pytest.raises(AuthenticationError):
            hooks.dispatch("open", hid, 0, True, src.id, len(raw) - hl, dst.id)
        assert dst.get(SEG) == bytes(SEG)
    finally:
        hooks.reset()

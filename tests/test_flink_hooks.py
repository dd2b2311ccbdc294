"""The Python side of the Java shim (hooks.py), the install command, the local helper, and the shim
itself in a real JVM (PyFlink's gateway, over py4j)."""
import ctypes
import json
import os
import subprocess
import sys

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto, ConfigError, __version__
from heliosdb_flink_crypto.errors import HeliosCryptoError, KmsAccessDeniedError, UnsupportedFlinkError
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.flink import JAR_NAME, SCHEMES, bridge, file_ops, hooks, install, jar_path, local
from heliosdb_flink_crypto.format import (PREFIX_LEN, binding_name, overhead, parse, parse_prefix,
                                          plaintext_length, segment_count, segment_offset)
from heliosdb_flink_crypto.observe import BUS

SEG = 64


@pytest.fixture(autouse=True)
def _fresh_hooks():
    hooks.reset()
    yield
    hooks.reset()


def conf(uri, **extra):
    c = {"heliosdb.crypto.kms.uri": uri, "heliosdb.crypto.segment-size": str(SEG)}
    c.update(extra)
    return json.dumps(c)


class JavaBuffer:
    """Native memory standing in for a Java direct ByteBuffer, registered as the shim does."""

    def __init__(self, size):
        self.mem = ctypes.create_string_buffer(size)
        self.id = hooks.dispatch("register", ctypes.addressof(self.mem), size)

    def put(self, data):
        ctypes.memmove(self.mem, data, len(data))

    def get(self, n):
        return self.mem.raw[:n]


def write_file(sid, path, data, seg=SEG, overhead=16):
    """What EncryptingOutputStream does: header, then full segments, the last one flagged."""
    hid, header, seg, overhead = hooks.dispatch("writer", sid, path)
    src, dst = JavaBuffer(seg), JavaBuffer(seg + overhead)
    out = bytearray(header)
    chunks = [data[i:i + seg] for i in range(0, len(data), seg)] or [b""]
    for i, chunk in enumerate(chunks):
        src.put(chunk)
        n = hooks.dispatch("seal", hid, i, i == len(chunks) - 1, src.id, len(chunk), dst.id)
        assert n == len(chunk) + overhead
        out += dst.get(n)
    hooks.dispatch("finish", hid, len(data))
    return bytes(out)


def read_file(sid, path, raw):
    """What DecryptingInputStream does: prefix arithmetic in Java, segments opened by Python."""
    suite, hlen, seg = parse_prefix(raw[:PREFIX_LEN])
    size = plaintext_length(len(raw), hlen, seg, suite)
    hid = hooks.dispatch("reader", sid, path, raw[:hlen])
    o = overhead(suite)
    src, dst = JavaBuffer(seg + o), JavaBuffer(seg)
    count = segment_count(size, seg)
    out = bytearray()
    for i in range(count):
        last = i == count - 1
        want = (size - i * seg if last else seg) + o
        start = segment_offset(i, hlen, seg, suite)
        src.put(raw[start:start + want])
        n = hooks.dispatch("open", hid, i, last, src.id, want, dst.id)
        out += dst.get(n)
    hooks.dispatch("close", hid)
    return bytes(out)


@pytest.mark.parametrize("n", [0, 1, SEG - 1, SEG, SEG + 1, 5 * SEG + 7])
def test_ctypes_buffer_path_writes_files_the_engine_reads(keyring_uri, n):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    data = os.urandom(n)
    raw = write_file(sid, "enc+file:///ckpt/a", data)
    assert raw[:4] == b"HFCE"
    assert CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, name="a") == data
    assert read_file(sid, "enc+file:///ckpt/a", raw) == data


def test_one_call_seals_and_opens_several_segments(keyring_uri):
    """The shim batches segments: one call, consecutive indexes, the final one flagged last."""
    sid = hooks.dispatch("configure", conf(keyring_uri))
    hid, header, seg, o = hooks.dispatch("writer", sid, "/batch")
    data = os.urandom(7 * seg + 5)
    src, dst = JavaBuffer(4 * seg), JavaBuffer(4 * (seg + o))
    src.put(data[:4 * seg])
    n1 = hooks.dispatch("seal", hid, 0, False, src.id, 4 * seg, dst.id)
    first = dst.get(n1)
    src.put(data[4 * seg:])
    n2 = hooks.dispatch("seal", hid, 4, True, src.id, len(data) - 4 * seg, dst.id)
    raw = header + first + dst.get(n2)
    hooks.dispatch("finish", hid, len(data))
    assert (n1, n2) == (4 * (seg + o), 3 * seg + 5 + 4 * o)
    assert CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, name="batch") == data
    rid = hooks.dispatch("reader", sid, "/batch", raw[:len(header)])
    csrc, cdst = JavaBuffer(8 * (seg + o)), JavaBuffer(8 * seg)
    csrc.put(raw[len(header):])
    assert hooks.dispatch("open", rid, 0, True, csrc.id, len(raw) - len(header), cdst.id) == len(data)
    assert cdst.get(len(data)) == data
    csrc.put(raw[len(header) + 2 * (seg + o):len(header) + 5 * (seg + o)])
    assert hooks.dispatch("open", rid, 2, False, csrc.id, 3 * (seg + o), cdst.id) == 3 * seg
    assert cdst.get(3 * seg) == data[2 * seg:5 * seg]
    with pytest.raises(AuthenticationError):  # segments 2..4 are not the file's last ones
        hooks.dispatch("open", rid, 2, True, csrc.id, 3 * (seg + o), cdst.id)
    with pytest.raises(ValueError, match="do not match"):
        hooks.dispatch("open", rid, 2, False, csrc.id, 3 * (seg + o) - 1, cdst.id)


@pytest.mark.parametrize("suite", ["aes-256-gcm", "aes-256-cbc-hmac-sha256"])
def test_open_in_place_writes_the_plaintext_below_the_sealed_segments_and_wipes_a_failing_one(
        keyring_uri, suite, monkeypatch):
    """The shim reads local files with one buffer: the sealed segments one segment into it, "open"
    with the same buffer as source and destination writes the plaintext back to back from its start,
    and no cipher call's output overlaps its input (cryptography 51 refuses that); a segment that
    fails is wiped."""
    sid = hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.algorithm": suite}))
    data = os.urandom(3 * SEG + 9)
    raw = write_file(sid, "/inplace", data)
    suite_id, hlen, seg = parse_prefix(raw[:PREFIX_LEN])
    o = overhead(suite_id)
    rid = hooks.dispatch("reader", sid, "/inplace", raw[:hlen])
    keys = bridge.handle(rid, file_ops.FileReader).keys
    calls = []

    def spans(src, dst):
        def at(v):
            v = memoryview(v)
            return ctypes.addressof(ctypes.c_char.from_buffer(v)) if len(v) else 0
        return (at(src), at(src) + len(src)), (at(dst), at(dst) + len(dst))

    def watched(real):
        def call(iv, src, aad, dst):
            calls.append(spans(src, dst))
            return real(iv, src, aad, dst)
        return call

    monkeypatch.setattr(keys, "_open", watched(keys._open), raising=False)
    sealed = raw[hlen:]
    buf = JavaBuffer(seg + len(sealed))
    buf.put(bytes(seg) + sealed)
    assert hooks.dispatch("open", rid, 0, True, buf.id, len(sealed), buf.id) == len(data)
    assert buf.get(len(data)) == data
    assert len(calls) == 4
    for (s0, s1), (d0, d1) in calls:
        assert d1 <= s0 or s1 <= d0, "a cipher call's output overlaps its input"
    with pytest.raises(ValueError, match="do not match"):  # sealed bytes past the buffer's end
        hooks.dispatch("open", rid, 0, True, buf.id, len(sealed) + 1, buf.id)
    tampered = bytearray(sealed)
    tampered[2 * (seg + o) + 3] ^= 1  # segment 2
    buf.put(bytes(seg) + bytes(tampered))
    with pytest.raises(AuthenticationError):
        hooks.dispatch("open", rid, 0, True, buf.id, len(sealed), buf.id)
    after = buf.get(3 * seg)
    assert after[:2 * seg] == data[:2 * seg]  # authenticated; the call failed, so the shim drops them
    assert after[2 * seg:] != data[2 * seg:3 * seg]  # no unauthenticated plaintext left
    if suite == "aes-256-gcm":
        assert after[2 * seg:] == bytes(seg)


def test_engine_files_read_through_the_ctypes_path(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    for algorithm in ("aes-256-gcm", "aes-256-cbc-hmac-sha256"):
        suite = 1 if algorithm == "aes-256-gcm" else 2
        data = os.urandom(1000)
        raw = CheckpointCrypto([keyring_uri], suite=suite, segment_size=128).encrypt_bytes(data, name="x")
        assert read_file(sid, "/x", raw) == data


def test_cbc_suite_and_copying_fallback(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.algorithm": "aes-256-cbc-hmac-sha256"}))
    hid, header, seg, overhead = hooks.dispatch("writer", sid, "/f")
    assert (seg, overhead) == (SEG, 48)
    data = os.urandom(100)
    raw = header + hooks.dispatch("seal_bytes", hid, 0, False, data[:SEG]) + \
        hooks.dispatch("seal_bytes", hid, 1, True, data[SEG:])
    hooks.dispatch("finish", hid, len(data))
    assert CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, name="f") == data
    rid = hooks.dispatch("reader", sid, "/f", raw[:parse_prefix(raw)[1]])
    start = parse_prefix(raw)[1]
    assert hooks.dispatch("open_bytes", rid, 0, False, raw[start:start + SEG + 48]) == data[:SEG]
    with pytest.raises(AuthenticationError):
        hooks.dispatch("open_bytes", rid, 0, True, raw[start:start + SEG + 48])  # wrong last flag
    with pytest.raises(ValueError, match="over the segment size"):
        hooks.dispatch("open_bytes", rid, 0, False, bytes(SEG + 49))


def test_tampered_segment_fails_with_the_opaque_error_naming_the_file(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    raw = bytearray(write_file(sid, "/tmp/ckpt/chk-1/_metadata", os.urandom(200)))
    raw[-3] ^= 1
    with pytest.raises(AuthenticationError, match="/tmp/ckpt/chk-1/_metadata: authentication failed"):
        read_file(sid, "/tmp/ckpt/chk-1/_metadata", bytes(raw))


def test_configure_validates_in_python_and_names_the_key(keyring_uri):
    with pytest.raises(ConfigError, match="heliosdb.crypto.segment-size"):
        hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.segment-size": "abc"}))
    with pytest.raises(ConfigError, match="heliosdb.crypto.segment-size"):
        hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.segment-size": "100"}))
    with pytest.raises(ConfigError, match="heliosdb.crypto.kms.uri"):
        hooks.dispatch("configure", json.dumps({}))
    with pytest.raises(ConfigError, match="heliosdb.crypto.no-such-option"):
        hooks.dispatch("configure", conf(keyring_uri, **{"heliosdb.crypto.no-such-option": "1"}))
    with pytest.raises(ConfigError):
        hooks.dispatch("configure", "[]")
    a = hooks.dispatch("configure", conf(keyring_uri))
    assert hooks.dispatch("configure", conf(keyring_uri)) == a, "one session (one DEK cache) per configuration"
    s = hooks.session(a)
    assert s.crypto_for("enc+s3://b/k") is s.crypto_for("enc+file:///x/y")
    assert s.crypto_for("/x").segment_size == SEG
    assert "<default>" in repr(s)


def test_tenants_by_path_prefix(keyring_uri, tmp_path):
    from heliosdb_flink_crypto.kms.local import LocalKeyring
    acme = f"local://{tmp_path}/acme.json"
    LocalKeyring.create(acme)
    sid = hooks.dispatch("configure", conf(keyring_uri, **{
        "heliosdb.crypto.tenants.acme.path-prefix": "enc+file:///ckpt/acme",
        "heliosdb.crypto.tenants.acme.kms.uri": acme}))
    data = os.urandom(100)
    raw = write_file(sid, "enc+file:/ckpt/acme/job/chk-1/_metadata", data)
    h = parse(raw)
    assert h.tenant == "acme" and h.slots[0].kms_uri == acme
    assert CheckpointCrypto([acme]).decrypt_bytes(raw, name="job/chk-1/_metadata") == data
    assert parse(write_file(sid, "enc+file:/ckpt/other/x", data)).tenant == ""
    from heliosdb_flink_crypto.lifecycle.tenants import TenantMismatchError
    with pytest.raises(TenantMismatchError):  # a tenant's file copied under another tenant's path
        read_file(sid, "enc+file:/ckpt/other/x", raw)
    assert read_file(sid, "enc+file:///ckpt/acme/job/chk-1/_metadata", raw) == data


def test_finish_reports_the_file_and_discard_does_not(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    events = []
    listener = BUS.subscribe(events.append)
    try:
        write_file(sid, "/a", os.urandom(300))
        hid = hooks.dispatch("writer", sid, "/b")[0]
        hooks.dispatch("discard", hid)
        with pytest.raises(ValueError, match="unknown writer handle"):
            hooks.dispatch("seal_bytes", hid, 0, True, b"")
    finally:
        BUS.unsubscribe(listener)
    enc = [e for e in events if e["op"] == "encrypt"]
    assert [(e["outcome"], e.get("bytes"), e.get("path"), e.get("error")) for e in enc] == \
        [("ok", 300, "/a", None), ("error", None, "/b", "aborted")]
    assert not any("dek" in k and "id" not in k for e in events for k in e), "no key material in events"


def test_readers_report_decrypted_files_and_failures(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    raw = write_file(sid, "/a", os.urandom(200))
    events = []
    listener = BUS.subscribe(events.append)
    try:
        read_file(sid, "/a", raw)
        bad = bytearray(raw)
        bad[-2] ^= 1
        with pytest.raises(AuthenticationError):
            read_file(sid, "/bad", bytes(bad))
        with pytest.raises(Exception):
            hooks.dispatch("reader", sid, "/forged", raw[:40] + bytes(60) + raw[100:parse_prefix(raw)[1]])
        hooks.dispatch("malformed", sid, "/plain", "bad magic")
    finally:
        BUS.unsubscribe(listener)
    got = [(e["op"], e["outcome"], e.get("path"), e.get("bytes")) for e in events
           if e["op"] in ("decrypt", "auth_failure")]
    assert ("decrypt", "ok", "/a", 200) in got
    assert ("auth_failure", "error", "/bad", None) in got
    assert ("decrypt", "error", "/forged", None) in got
    assert ("auth_failure", "error", "/plain", None) in got and ("decrypt", "error", "/plain", None) in got
    assert json.loads(hooks.dispatch("metrics_snapshot")) is not None


def test_kms_failure_when_writing_names_the_file(tmp_path):
    uri = f"local://{tmp_path}/missing.json"
    sid = hooks.dispatch("configure", conf(uri))
    with pytest.raises(KmsAccessDeniedError, match="^enc\\+file:///ckpt/x: local open with key .*does not exist"):
        hooks.dispatch("writer", sid, "enc+file:///ckpt/x")  # its own class: the shim's exception type
    # an error that already names the file is passed on as it is
    with pytest.raises(HeliosCryptoError, match="^local open with key .*keyring file does not exist"):
        hooks.dispatch("writer", sid, str(tmp_path))


def test_the_shim_finds_every_operation_and_no_name_is_taken_twice():
    from heliosdb_flink_crypto.flink import bridge
    assert set(hooks.OPS) == {
        "configure", "register", "unregister", "metrics_snapshot", "ping", "protocol",  # bridge.py
        "writer", "seal", "seal_write", "seal_bytes", "finish", "discard", "reader", "open", "open_bytes", "close",
        "malformed",  # file_ops.py
        "reseal", "flink_metrics", "check_restore", "insecure_reader_with_dek"}
    with pytest.raises(ValueError, match="operation 'open' registered twice"):
        bridge.operation(lambda: None, name="open")
    assert hooks.OPS["open"].__module__.endswith("file_ops")


def test_a_batch_sealed_one_segment_at_a_time_at_its_offsets_is_the_file(keyring_uri):
    """The shim seals each segment as Flink's thread fills it (one segment of plaintext buffer) into
    the batch's sealed buffer at that segment's offset; the worker writes the batch whole."""
    sid = hooks.dispatch("configure", conf(keyring_uri))
    hid, header, seg, o = hooks.dispatch("writer", sid, "/parts")
    data = os.urandom(3 * seg + 7)
    src, dst = JavaBuffer(seg), JavaBuffer(4 * (seg + o))
    off = 0
    for i in range(4):
        part = data[i * seg:(i + 1) * seg]
        src.put(part)
        off += hooks.dispatch("seal", hid, i, i == 3, src.id, len(part), dst.id, off)
    raw = header + dst.get(off)
    for bad in (-1, 4 * (seg + o) + 1):  # an offset outside the buffer is refused, not wrapped
        with pytest.raises(ValueError, match="outside the buffer"):
            hooks.dispatch("seal", hid, 0, False, src.id, seg, dst.id, bad)
    with pytest.raises(ValueError, match="output buffer too small"):  # the segment must fit after it
        hooks.dispatch("seal", hid, 0, False, src.id, seg, dst.id, 3 * (seg + o) + 1)
    assert dst.get(off) == raw[len(header):]  # nothing written by a refused call
    hooks.dispatch("finish", hid, len(data))
    assert off == len(data) + 4 * o
    assert CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, name="parts") == data


def test_seal_write_writes_each_sealed_part_to_the_file_through_its_own_descriptor(keyring_uri, tmp_path):
    """A stream without a worker: Python seals each segment and writes it to the local file's
    descriptor in the same call, through a duplicate of it, so the JVM closing its descriptor
    meanwhile never sends the bytes to whatever file gets that number next; finish closes it."""
    sid = hooks.dispatch("configure", conf(keyring_uri))
    hid, header, seg, o = hooks.dispatch("writer", sid, "/direct")
    data = os.urandom(3 * seg + 7)
    target = tmp_path / "direct"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    os.write(fd, header)  # the stream writes the header itself, before the first segment
    src, dst = JavaBuffer(seg), JavaBuffer(seg + o)
    parts = [data[i:i + seg] for i in range(0, len(data), seg)]
    for i, part in enumerate(parts):
        src.put(part)
        assert hooks.dispatch("seal_write", hid, i, i == len(parts) - 1, src.id, len(part), dst.id, fd) \
            == len(part) + o
        if i == 1:  # the JVM's descriptor closed and its number taken by another file
            other = tmp_path / "other"
            o_fd = os.open(other, os.O_WRONLY | os.O_CREAT)
            os.dup2(o_fd, fd)  # closed, and the number now names another file
            os.close(o_fd)
    ours = bridge.handle(hid, file_ops.FileWriter).fd
    hooks.dispatch("finish", hid, len(data))
    with pytest.raises(OSError):  # closed with the file
        os.fstat(ours)
    os.close(fd)
    assert other.read_bytes() == b""
    raw = target.read_bytes()
    assert len(raw) == len(header) + len(data) + len(parts) * o
    assert CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, name="direct") == data


def test_seal_write_failures_name_the_file_and_discard_closes_the_descriptor(keyring_uri, tmp_path):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    hid, header, seg, o = hooks.dispatch("writer", sid, "enc+file:///ckpt/ro")
    src, dst = JavaBuffer(seg), JavaBuffer(seg + o)
    ro = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT)
    with pytest.raises(OSError, match="^\\[Errno 9\\] enc\\+file:///ckpt/ro: writing the inner file failed"):
        hooks.dispatch("seal_write", hid, 0, True, src.id, seg, dst.id, ro)
    ours = bridge.handle(hid, file_ops.FileWriter).fd
    assert ours is not None and ours != ro
    hooks.dispatch("discard", hid)
    with pytest.raises(OSError):
        os.fstat(ours)
    os.close(ro)
    hid, *_ = hooks.dispatch("writer", sid, "enc+file:///ckpt/gone")
    with pytest.raises(OSError, match="ckpt/gone: writing the inner file failed"):  # no such descriptor
        hooks.dispatch("seal_write", hid, 0, True, src.id, seg, dst.id, 2 ** 20)


def test_bad_calls_are_refused(keyring_uri):
    sid = hooks.dispatch("configure", conf(keyring_uri))
    with pytest.raises(ValueError, match="unknown operation"):
        hooks.dispatch("nope")
    with pytest.raises(ValueError, match="unknown session"):
        hooks.dispatch("writer", 999999, "/x")
    with pytest.raises(ValueError, match="native address"):
        hooks.dispatch("register", 0, 10)
    hid, header, seg, o = hooks.dispatch("writer", sid, "/x")
    small, big = JavaBuffer(8), JavaBuffer(4 * seg)
    with pytest.raises(ValueError, match="not whole segments"):
        hooks.dispatch("seal", hid, 0, False, big.id, seg + 1, big.id)
    with pytest.raises(ValueError, match="not whole segments"):
        hooks.dispatch("seal", hid, 0, True, small.id, 9, big.id)
    with pytest.raises(ValueError, match="output buffer too small"):
        hooks.dispatch("seal", hid, 0, True, big.id, seg, small.id)
    with pytest.raises(ValueError, match="over the segment size"):
        hooks.dispatch("seal_bytes", hid, 0, True, bytes(seg + 1))
    with pytest.raises(ValueError, match="unknown buffer"):
        hooks.dispatch("seal", hid, 0, True, 123456789, 1, big.id)
    with pytest.raises(ValueError, match="unknown reader handle"):
        hooks.dispatch("open", hid, 0, True, big.id, 1, big.id)
    raw = write_file(sid, "/y", b"abc")
    rid = hooks.dispatch("reader", sid, "/y", raw[:parse_prefix(raw)[1]])
    with pytest.raises(ValueError, match="do not match the segment size"):
        hooks.dispatch("open", rid, 0, True, big.id, 1, small.id)
    hooks.dispatch("unregister", small.id)
    hooks.dispatch("unregister", small.id)  # twice is harmless
    assert hooks.dispatch("ping") == __version__
    assert hooks.dispatch("protocol") == bridge.PROTOCOL  # the jars refuse a package answering another


@pytest.mark.parametrize("name", ["gcm-valid-31", "cbc-valid-31", "gcm-valid-101", "cbc-valid-101"])
def test_insecure_dek_reader_is_refused_unless_enabled(keyring_uri, monkeypatch, name):
    vectors = json.load(open(os.path.join(os.path.dirname(__file__), "vectors", "vectors.json")))["vectors"]
    v = next(x for x in vectors if x["name"] == name)
    raw, plain = bytes.fromhex(v["ciphertext"]), bytes.fromhex(v["plaintext"])
    monkeypatch.delenv("HELIOSDB_INSECURE_TEST_HOOKS", raising=False)
    with pytest.raises(PermissionError):
        hooks.dispatch("insecure_reader_with_dek", "/v", raw, v["dek"])
    monkeypatch.setenv("HELIOSDB_INSECURE_TEST_HOOKS", "1")
    hid = hooks.dispatch("insecure_reader_with_dek", "/v", raw, v["dek"])
    suite, hlen, seg = parse_prefix(raw)
    assert (suite, seg) == (v["suite"], v["segment_size"])  # ints in the vectors, as in the header
    last = len(plain) <= seg
    first = raw[segment_offset(0, hlen, seg, suite):segment_offset(1, hlen, seg, suite)]
    if last:  # the whole file is one segment: exactly its bytes, with this suite's overhead
        assert len(first) == len(plain) + overhead(suite) == len(raw) - hlen
        first = first[:len(plain) + overhead(suite)]
    assert hooks.dispatch("open_bytes", hid, 0, last, first) == plain[:seg]


# -- install / CLI ---------------------------------------------------------------------------
@pytest.fixture
def flink_home(tmp_path):
    home = tmp_path / "flink-2.3.0"
    for d in ("lib", "opt", "conf", "plugins"):
        (home / d).mkdir(parents=True)
    (home / "lib" / "flink-dist-2.3.0.jar").write_bytes(b"PK")
    (home / "opt" / "flink-python-2.3.0.jar").write_bytes(b"PK-python")
    (home / "conf" / "config.yaml").write_text("execution.checkpointing.dir: s3://x\n")
    return home


@pytest.fixture
def shim_jar(tmp_path, monkeypatch):
    jar = tmp_path / JAR_NAME
    jar.write_bytes(b"PK-shim")
    monkeypatch.setenv("HELIOSDB_SHIM_JAR", str(jar))
    return jar


def test_install_copies_the_plugin_and_pemja_and_prints_config(flink_home, shim_jar, capsys):
    assert main(["flink", "install", str(flink_home), "--python", "/opt/venv/bin/python",
                 "--kms-uri", "aws-kms://k"]) == 0
    out, err = capsys.readouterr()
    assert (flink_home / "plugins" / "heliosdb-crypto" / JAR_NAME).read_bytes() == b"PK-shim"
    assert (flink_home / "lib" / "flink-python-2.3.0.jar").read_bytes() == b"PK-python"
    assert "plugin.classloader.parent-first-patterns.additional: pemja." in out
    assert "classloader.parent-first-patterns.additional: pemja." in out
    assert "heliosdb.crypto.python.executable: /opt/venv/bin/python" in out
    assert "heliosdb.crypto.kms.uri: aws-kms://k" in out
    assert "# already set in config.yaml: execution.checkpointing.dir: s3://x" in out
    assert "# note: execution.checkpointing.dir is s3://x: pass --checkpoint-dir enc+" in out
    assert "copy" in err and "copy" not in out, "actions on stderr, configuration on stdout"


def test_install_dry_run_and_warnings(flink_home, shim_jar, capsys):
    (flink_home / "opt" / "flink-python-2.3.0.jar").unlink()
    (flink_home / "plugins" / "other").mkdir()
    (flink_home / "plugins" / "other" / "pemja-0.5.7.jar").write_bytes(b"x")
    r = install.install(str(flink_home), dry_run=True)
    assert not (flink_home / "plugins" / "heliosdb-crypto").exists()
    assert any("flink-python-2.3.0.jar" in w for w in r.warnings)
    assert any("second pemja" in w for w in r.warnings)
    assert main(["flink", "install", str(flink_home), "--dry-run"]) == 0
    assert "would copy" in capsys.readouterr().err
    assert main(["flink", "install", "--print-only", "--checkpoint-dir", "enc+s3://b/c"]) == 0
    assert "execution.checkpointing.dir: enc+s3://b/c" in capsys.readouterr().out
    assert main(["flink", "install", str(flink_home / "nope")]) == 2
    assert "not a Flink distribution" in capsys.readouterr().err
    (flink_home / "lib" / "flink-dist-2.3.0.jar").unlink()
    with pytest.raises(UnsupportedFlinkError, match="cannot tell the Flink version; supported: Flink 2.3"):
        install.install(str(flink_home), dry_run=True)
    r = install.install(str(flink_home), dry_run=True, flink_version="2.3.1")
    assert any("flink-python-2.3.1.jar" in w for w in r.warnings)


def test_install_needs_a_flink_home(shim_jar, monkeypatch, capsys):
    monkeypatch.delenv("FLINK_HOME", raising=False)
    from heliosdb_flink_crypto.cli import build_parser
    args = build_parser().parse_args(["flink", "install"])
    assert args.flink_home is None
    assert main(["flink", "install"]) == 2
    assert "FLINK_HOME" in capsys.readouterr().err


def test_jar_path(shim_jar, monkeypatch, capsys):
    assert jar_path() == str(shim_jar)
    assert main(["flink", "jar"]) == 0
    assert capsys.readouterr().out.strip() == str(shim_jar)
    monkeypatch.setenv("HELIOSDB_SHIM_JAR", str(shim_jar) + ".missing")
    with pytest.raises(FileNotFoundError, match="build-shim.sh"):
        jar_path()


def test_local_configuration_and_plugins_folder(shim_jar, tmp_path):
    c = local.flink_configuration({"heliosdb.crypto.kms.uri": ["a", "b"], "x.flag": True,
                                   "plugin.classloader.parent-first-patterns.additional": "com.foo."})
    assert c["heliosdb.crypto.kms.uri"] == "a;b" and c["x.flag"] == "true"
    assert c["plugin.classloader.parent-first-patterns.additional"] == "com.foo.;pemja."
    assert c["classloader.parent-first-patterns.additional"] == "pemja."
    assert c["heliosdb.crypto.python.executable"]
    extra = tmp_path / "plugins"
    (extra / "s3-fs-presto").mkdir(parents=True)
    root = local.plugins_root(str(extra), str(tmp_path / "root"))
    assert (tmp_path / "root" / "heliosdb-crypto" / JAR_NAME).read_bytes() == b"PK-shim"
    assert os.path.islink(os.path.join(root, "s3-fs-presto"))


# -- the real shim in a real JVM ----------------------------------------------------------------
@pytest.mark.slow
def test_shim_in_pyflink_jvm_interoperates_with_the_python_engine(keyring_uri, tmp_path):
    """enc+file:// registered in PyFlink's gateway JVM with local.enable(): a file Java writes
    through Flink's FileSystem API decrypts with CheckpointCrypto, and the other way round."""
    try:
        real_jar = jar_path()
    except FileNotFoundError:
        pytest.fail("build the shim first: scripts/build-shim.sh")
    assert os.path.getsize(real_jar) > 1000
    used = local.enable({"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.segment-size": "4kb"})
    assert used["heliosdb.crypto.python.executable"]
    from pyflink.java_gateway import get_gateway
    jvm = get_gateway().jvm
    FileSystem, Path = jvm.org.apache.flink.core.fs.FileSystem, jvm.org.apache.flink.core.fs.Path
    data = os.urandom(50_000)
    p = Path(f"enc+file://{tmp_path}/java-wrote")
    fs = FileSystem.get(p.toUri())
    out = fs.create(p, FileSystem.WriteMode.OVERWRITE)
    out.write(data[:123])
    out.flush()
    out.write(data[123:])
    assert out.getPos() == len(data)
    out.close()
    raw = (tmp_path / "java-wrote").read_bytes()
    assert raw[:4] == b"HFCE" and data[:64] not in raw
    engine = CheckpointCrypto([keyring_uri])
    assert engine.decrypt_bytes(raw, name="java-wrote") == data  # bound to the name Java wrote it under
    assert fs.getFileStatus(p).getLen() == len(data)

    python = CheckpointCrypto([keyring_uri], segment_size=1024)
    (tmp_path / "python-wrote").write_bytes(python.encrypt_bytes(data, name="python-wrote"))
    q = Path(f"enc+file://{tmp_path}/python-wrote")
    inp = fs.open(q)
    inp.seek(40_000)
    buf = jvm.java.nio.ByteBuffer.allocate(100)  # py4j copies byte[] arguments: read into a buffer
    assert inp.read(buf) == 100
    assert bytes(buf.array()) == data[40_000:40_100]
    assert inp.getPos() == 40_100
    inp.close()
    with pytest.raises(Exception, match="UnsupportedOperationException"):
        fs.createRecoverableWriter()

    b = bytearray(python.encrypt_bytes(data, name="tampered"))
    b[-5] ^= 1
    (tmp_path / "tampered").write_bytes(bytes(b))
    t = fs.open(Path(f"enc+file://{tmp_path}/tampered"))
    t.seek(len(data) - 10)
    with pytest.raises(Exception, match="tampered: authentication failed"):
        t.read()


@pytest.mark.parametrize("name", ["local-keyring", "aws-kms", "azure-kv", "gcp-kms", "pkcs11"])
def test_flink_conf_examples_are_valid(name):
    import yaml
    from heliosdb_flink_crypto import config
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flink-conf-examples",
                        f"{name}.yaml")
    d = yaml.safe_load(open(path))
    config.load({k: str(v) for k, v in d.items() if k.startswith(config.PREFIX)})
    assert d["plugin.classloader.parent-first-patterns.additional"] == "pemja."
    assert d["execution.checkpointing.dir"].split("://")[0] in SCHEMES
    assert d["heliosdb.crypto.kms.uri"].split("://")[0] in ("local", "aws-kms", "azure-kv", "gcp-kms", "pkcs11")


@pytest.mark.slow
def test_flink_install_into_a_standalone_cluster(keyring_uri, tmp_path, monkeypatch):
    """`flink install` into a private copy of PyFlink's distribution; a JobManager and a TaskManager
    (separate JVMs, the plugin in its own classloader, pemja from lib/) write encrypted checkpoints."""
    # A PyFlink gateway started earlier in this process leaves FLINK_PLUGINS_DIR (and friends) in
    # os.environ, pointing at PyFlink's own folders: the cluster would then never see the plugin.
    for var in ("FLINK_PLUGINS_DIR", "FLINK_LIB_DIR", "FLINK_OPT_DIR", "FLINK_HOME"):
        monkeypatch.delenv(var, raising=False)
    import glob
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "flink"))
    from cluster import StandaloneCluster, make_distribution  # tests/flink's harness
    from harness import wait_for
    home = make_distribution(str(tmp_path / "flink"))
    assert main(["flink", "install", home, "--kms-uri", keyring_uri,
                 "--checkpoint-dir", f"enc+file://{tmp_path}/ckpt"]) == 0
    assert glob.glob(os.path.join(home, "lib", "flink-python-*.jar"))
    conf = {}
    for line in install.install(home, kms_uri=keyring_uri, dry_run=True,
                                checkpoint_dir=f"enc+file://{tmp_path}/ckpt").config.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(": ", 1)
            conf[key] = value.split("  #")[0]
    conf["execution.checkpointing.interval"] = "1 s"
    job = tmp_path / "job.py"
    job.write_text(
        "from pyflink.table import EnvironmentSettings, TableEnvironment\n"
        "t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())\n"
        "t.execute_sql(\"CREATE TABLE s (k INT, v BIGINT) WITH ('connector'='datagen',"
        "'rows-per-second'='1000','fields.k.min'='1','fields.k.max'='100')\")\n"
        "t.execute_sql(\"CREATE TABLE o (k INT, v BIGINT) WITH ('connector'='blackhole')\")\n"
        "t.execute_sql('INSERT INTO o SELECT k, SUM(v) FROM s GROUP BY k')\n")
    with StandaloneCluster(home, conf) as c:
        r = c.flink("run", "-d", "-py", str(job))
        if "JobID" not in r.stdout:  # the client can time out on a loaded machine: once more
            r = c.flink("run", "-d", "-py", str(job))
        causes = [line for line in (r.stdout + r.stderr).splitlines() if "Caused by" in line or "Exception:" in line]
        assert "JobID" in r.stdout, "\n".join(causes[-12:]) or r.stderr[-3000:]

        def authenticated_metadata():
            for path in glob.glob(f"{tmp_path}/ckpt/*/chk-*/_metadata"):
                try:
                    raw = open(path, "rb").read()  # a newer checkpoint may subsume it meanwhile
                except FileNotFoundError:
                    continue
                if raw[:4] != b"HFCE":
                    continue  # created this instant: the header is the stream's first write
                try:
                    return CheckpointCrypto([keyring_uri]).decrypt_bytes(raw, path, name=binding_name(path))
                except HeliosCryptoError:
                    continue  # still being written: its final segment not in yet
            return None

        try:
            wait_for(authenticated_metadata, 120, "a checkpoint's _metadata that is ciphertext and authenticates",
                     interval=0.5)
        except TimeoutError as e:
            pytest.fail(f"{e}\n{c.logs()}")


def test_enable_keeps_one_plugins_folder_per_process_and_removes_it_at_exit(shim_jar, tmp_path):
    """python job.py used to leave a plugins folder (a copy of the shim jar) in the temp folder on
    every run; now one folder per process, refreshed by a second enable() (a new file, so a JVM
    reading the old jar is not cut short) and removed when the process exits."""
    script = tmp_path / "twice.py"
    script.write_text(
        "import os, sys\n"
        "from heliosdb_flink_crypto.flink import local\n"
        "a = local.plugins_root(None, local._process_root())\n"
        "jar = os.path.join(a, 'heliosdb-crypto', os.listdir(os.path.join(a, 'heliosdb-crypto'))[0])\n"
        "first = os.stat(jar).st_ino\n"
        "b = local.plugins_root(None, local._process_root())\n"
        "assert a == b, (a, b)\n"
        "assert os.stat(jar).st_ino != first and open(jar, 'rb').read() == b'PK-shim'\n"
        "print(a)\n")
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    root = r.stdout.strip()
    assert root.startswith(str(tmp_path)) and not os.path.exists(root)

"""What the engine reports on its event bus: the audit log and the metrics are built on these."""
import pytest

from heliosdb_flink_crypto import (AuthenticationError, CheckpointCrypto, FormatError, KeyAccessError,
                                   KmsAccessDeniedError)
from heliosdb_flink_crypto.observe import EventBus


@pytest.fixture
def bus_events():
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    return bus, events


def test_encrypt_and_decrypt_events_carry_ids_sizes_and_times(keyring_uri, bus_events, keyring):
    bus, events = bus_events
    c = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus, tenant="t1")
    ct = c.encrypt_bytes(b"s" * 1000)
    assert c.decrypt_bytes(ct, path="/ck/f") == b"s" * 1000
    ops = [e["op"] for e in events]
    assert ops == ["dek_generate", "kms_call", "encrypt", "decrypt"]
    enc, dec = events[2], events[3]
    assert enc["bytes"] == 1000 and enc["tenant"] == "t1" and enc["key_version"] == "1"
    assert enc["seconds"] >= 0 and len(enc["file_id"]) == 32
    assert dec["bytes"] == 1000 and dec["path"] == "/ck/f" and dec["file_id"] == enc["file_id"]
    kek = keyring._data["versions"]["1"]["key"]
    assert all(kek not in repr(e) for e in events)


def test_failures_are_reported(keyring_uri, bus_events, tmp_path):
    bus, events = bus_events
    c = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus)
    ct = bytearray(c.encrypt_bytes(b"x" * 500))
    ct[-3] ^= 1
    events.clear()
    with pytest.raises(AuthenticationError):
        c.decrypt_bytes(bytes(ct), path="/ck/bad")
    assert [(e["op"], e["outcome"], e["path"]) for e in events] == [
        ("auth_failure", "error", "/ck/bad"), ("decrypt", "error", "/ck/bad")]
    assert events[1]["error"] == "AuthenticationError"
    events.clear()
    with pytest.raises(FormatError):
        c.decrypt_bytes(b"garbage" * 10, path="/ck/junk")
    assert [(e["op"], e["error"]) for e in events] == [("auth_failure", "malformed"), ("decrypt", "FormatError")]
    events.clear()
    other = CheckpointCrypto([f"local://{tmp_path}/none.json"], bus=bus)
    with pytest.raises(KeyAccessError):
        other.decrypt_bytes(bytes(c.encrypt_bytes(b"y")), path="/ck/nokey")
    assert events[-1]["op"] == "decrypt" and events[-1]["outcome"] == "error"


def test_a_broken_listener_never_breaks_encryption(keyring_uri, bus_events):
    bus, events = bus_events

    def broken(e):
        raise RuntimeError("sink down")

    bus.subscribe(broken)
    c = CheckpointCrypto([keyring_uri], bus=bus)
    assert c.decrypt_bytes(c.encrypt_bytes(b"ok")) == b"ok"
    bus.unsubscribe(broken)
    assert events  # the healthy listener still got everything


def test_encryption_failures_are_reported(tmp_path, keyring_uri, bus_events):
    import io
    bus, events = bus_events
    with pytest.raises(KmsAccessDeniedError):
        CheckpointCrypto([f"local://{tmp_path}/missing.json"], bus=bus).encrypt_bytes(b"x")
    assert (events[-1]["op"], events[-1]["outcome"]) == ("encrypt", "error")
    c = CheckpointCrypto([keyring_uri], bus=bus)
    with pytest.raises(RuntimeError):
        with c.writer(io.BytesIO()) as w:
            w.write(b"partial")
            raise RuntimeError("task failed")
    assert (events[-1]["op"], events[-1]["outcome"], events[-1]["error"]) == ("encrypt", "error", "aborted")


def test_unsubscribe_bound_method():
    class L:
        def __init__(self):
            self.n = 0

        def on(self, e):
            self.n += 1
    bus, listener = EventBus(), L()
    bus.subscribe(listener.on)
    bus.emit("x")
    bus.unsubscribe(listener.on)
    bus.emit("x")
    assert listener.n == 1


def _read_file_events(read, bad: bytes) -> list[dict]:
    """Reads a tampered file twice through ``read`` and returns what was reported about it."""
    from heliosdb_flink_crypto.observe import BUS
    events = []
    BUS.subscribe(events.append)
    try:
        read(bad)
    finally:
        BUS.unsubscribe(events.append)
    return [e for e in events if e["op"] in ("auth_failure", "decrypt")]


def test_python_streams_and_the_shim_report_a_file_alike(keyring_uri, tmp_path):
    """One emitter (observe.FileEvents) for the Python streams and the shim's hooks: the same events,
    with the same fields, for a file written, aborted, read, and failing authentication (once per file,
    however often it is read)."""
    import io
    import json
    from heliosdb_flink_crypto.flink import hooks
    from heliosdb_flink_crypto.format import parse_prefix
    from heliosdb_flink_crypto.observe import BUS
    hooks.reset()
    path = str(tmp_path / "job" / "chk-1" / "f")
    c = CheckpointCrypto([keyring_uri], segment_size=64)
    sid = hooks.dispatch("configure", json.dumps({"heliosdb.crypto.kms.uri": keyring_uri,
                                                  "heliosdb.crypto.segment-size": "64"}))
    seen = {"python": [], "shim": []}

    def python_side():
        with pytest.raises(RuntimeError), c.writer(io.BytesIO()) as w:
            w.write(b"x")
            raise RuntimeError("task failed")
        data = c.encrypt_bytes(b"s" * 100, name="f")
        with c.reader(data, path, name="f") as r:
            r.read()
        bad = bytearray(data)
        bad[-3] ^= 1

        def read_twice(b):
            with c.reader(bytes(b), path, name="f") as r:
                for _ in range(2):
                    with pytest.raises(AuthenticationError):
                        r.read()
        return read_twice, bytes(bad)

    def shim_side():
        hooks.dispatch("discard", hooks.dispatch("writer", sid, path)[0])
        hid, header, seg, _ = hooks.dispatch("writer", sid, path)
        data = header + hooks.dispatch("seal_bytes", hid, 0, True, b"s" * 60)
        hooks.dispatch("finish", hid, 60)
        hlen = parse_prefix(data)[1]
        rid = hooks.dispatch("reader", sid, path, data[:hlen])
        hooks.dispatch("open_bytes", rid, 0, True, data[hlen:])
        hooks.dispatch("close", rid)
        bad = bytearray(data)
        bad[-3] ^= 1

        def read_twice(b):
            rid = hooks.dispatch("reader", sid, path, b[:hlen])
            for _ in range(2):
                with pytest.raises(AuthenticationError):
                    hooks.dispatch("open_bytes", rid, 0, True, b[hlen:])
            hooks.dispatch("close", rid)
        return read_twice, bytes(bad)

    try:
        for side, run in (("python", python_side), ("shim", shim_side)):
            BUS.subscribe(seen[side].append)
            try:
                read_twice, bad = run()
            finally:
                BUS.unsubscribe(seen[side].append)
            seen[side] += _read_file_events(read_twice, bad)
    finally:
        hooks.reset()

    def shape(events):
        return [(e["op"], e["outcome"], e.get("error"), sorted(e)) for e in events
                if e["op"] in ("encrypt", "decrypt", "auth_failure")]
    assert shape(seen["python"]) == shape(seen["shim"])
    assert [(op, outcome, error) for op, outcome, error, _ in shape(seen["shim"])] == [
        ("encrypt", "error", "aborted"), ("encrypt", "ok", None), ("decrypt", "ok", None),
        ("auth_failure", "error", None), ("decrypt", "error", "AuthenticationError")]

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

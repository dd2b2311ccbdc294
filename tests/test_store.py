"""EncryptedCheckpointStore over pyarrow's real local filesystem (and S3 on moto in tests/kms)."""
import io

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto
from heliosdb_flink_crypto.observe import EventBus
from heliosdb_flink_crypto.store import EncryptedCheckpointStore


@pytest.fixture
def store(tmp_path, keyring_uri):
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    s = EncryptedCheckpointStore(f"file://{tmp_path}/ckpt", CheckpointCrypto([keyring_uri], segment_size=64, bus=bus))
    s.events = events
    return s


def test_save_load_list_delete(store, payload, tmp_path):
    a, b = payload(1000), payload(10)
    store.save(7, a)
    store.save(3, io.BytesIO(b))
    assert store.list() == [3, 7]
    assert store.load(7) == a and store.load(3) == b
    raw = (tmp_path / "ckpt" / "chk-7.hfce").read_bytes()
    assert a[:32] not in raw
    assert store.verify(7) == 1000
    with store.open(7) as r:
        r.seek(500)
        assert r.read(100) == a[500:600]
    store.delete(3)
    assert store.list() == [7]
    assert any(e["op"] == "delete" and e["checkpoint_id"] == 3 for e in store.events)
    assert any(e["op"] == "encrypt" for e in store.events)


def test_failed_save_leaves_nothing_behind(store, tmp_path):
    class Boom(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("source died")

    with pytest.raises(OSError):
        store.save(1, Boom())
    assert list((tmp_path / "ckpt").iterdir()) == []
    assert store.list() == []


def test_tampered_checkpoint_fails_naming_the_file(store, payload, tmp_path):
    store.save(1, payload(300))
    p = tmp_path / "ckpt" / "chk-1.hfce"
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 1
    p.write_bytes(bytes(raw))
    with pytest.raises(AuthenticationError, match="chk-1.hfce"):
        store.load(1)


def test_bad_ids_and_listing_ignores_foreign_files(store, tmp_path):
    with pytest.raises(ValueError):
        store.path(-1)
    (tmp_path / "ckpt" / "notes.txt").write_text("x")
    assert store.list() == []
    assert "EncryptedCheckpointStore" in repr(store)

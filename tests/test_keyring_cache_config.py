"""Local keyring, DEK cache and option parsing."""
import json
import os
import stat
import threading

import pytest

from heliosdb_flink_crypto import (CachePolicy, CheckpointCrypto, ConfigError, DekCache, KeyAccessError,
                                   KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError,
                                   KmsUnavailableError)
from heliosdb_flink_crypto.config import load, option, parse_bool, parse_duration, parse_size
from heliosdb_flink_crypto.kms import open_provider
from heliosdb_flink_crypto.kms.local import LocalKeyring, keyring_path

CTX = {"heliosdb:format": "1", "heliosdb:tenant": "", "heliosdb:dek-id": "00"}


def test_keyring_wrap_unwrap_rotate_versions(keyring, keyring_uri):
    dek = os.urandom(32)
    w1, v1 = keyring.wrap(dek, CTX)
    assert v1 == "1" and dek not in w1
    assert keyring.rotate() == "2"
    w2, v2 = keyring.wrap(dek, CTX)
    assert v2 == "2" and keyring.current_key_version() == "2"
    assert keyring.unwrap(w1, "1", CTX) == dek  # old versions still unwrap
    assert keyring.unwrap(w2, "2", CTX) == dek
    with pytest.raises(KmsInvalidCiphertextError):
        keyring.unwrap(w1, "1", {**CTX, "heliosdb:tenant": "other"})  # context is bound
    with pytest.raises(KmsInvalidCiphertextError):
        keyring.unwrap(w1, "2", CTX)
    assert stat.S_IMODE(os.stat(keyring.path).st_mode) == 0o600
    assert set(keyring.versions()) == {"1", "2"}
    assert "key" not in json.dumps(keyring.versions())
    keyring.test_connection()
    assert repr(keyring) == f"LocalKeyring({keyring_uri!r})"


def test_keyring_min_version_and_destroy(keyring):
    dek = os.urandom(32)
    w1, _ = keyring.wrap(dek, CTX)
    keyring.rotate()
    keyring.set_min_decrypt_version(2)
    with pytest.raises(KmsAccessDeniedError, match="below the minimum decryption version 2"):
        keyring.unwrap(w1, "1", CTX)
    keyring.set_min_decrypt_version(1)
    assert keyring.unwrap(w1, "1", CTX) == dek
    assert keyring.destroy("1") == ["1"]
    with pytest.raises(KmsAccessDeniedError, match="destroyed"):
        keyring.unwrap(w1, "1", CTX)
    with pytest.raises(ValueError):
        keyring.destroy("9")
    keyring.destroy()
    with pytest.raises(KmsAccessDeniedError):
        keyring.wrap(dek, CTX)
    with pytest.raises(KmsAccessDeniedError):
        keyring.unwrap(w1, "7", CTX)


def test_keyring_errors_name_the_file_and_never_the_key(tmp_path):
    with pytest.raises(KmsAccessDeniedError, match="does not exist"):
        LocalKeyring(f"local://{tmp_path}/missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KmsError, match="bad.json"):
        LocalKeyring(f"local://{bad}")
    bad.write_text(json.dumps({"format": 9}))
    with pytest.raises(KmsError, match="not a keyring"):
        LocalKeyring(f"local://{bad}")
    assert keyring_path("local://rel/k.json") == "rel/k.json"
    for uri in ("s3://x", "local://"):
        with pytest.raises(ValueError):
            keyring_path(uri)


def test_keyring_reloads_after_rotation_by_another_process(keyring_uri):
    a, b = LocalKeyring(keyring_uri), LocalKeyring(keyring_uri)
    b.rotate()
    assert a.current_key_version() == "2"


def test_open_provider_and_missing_extra_message(keyring_uri):
    assert isinstance(open_provider(keyring_uri), LocalKeyring)
    with pytest.raises(ValueError, match="unknown KMS URI scheme"):
        open_provider("vault://k")


def test_dek_cache_reuses_keys_within_limits():
    now = [0.0]
    cache = DekCache(CachePolicy(max_age=10, max_files=3, max_bytes=100, outage_grace=5), clock=lambda: now[0])
    made = []

    def factory():
        made.append(object())
        return made[-1]

    k = cache.current("s", factory)
    assert cache.current("s", factory) is k and cache.current("s", factory) is k
    assert cache.current("s", factory) is not k  # 4th file: max_files reached
    k2 = made[-1]
    cache.add_bytes("s", k2, 150)
    assert cache.current("s", factory) is not k2  # max_bytes reached
    now[0] = 100
    k3 = cache.current("s", factory)
    assert k3 is made[-1] and len(made) == 4  # max_age reached
    assert cache.stats()["misses"] == 4 and cache.stats()["hits"] == 2


def test_dek_cache_outage_grace_then_fail_closed():
    now = [0.0]
    cache = DekCache(CachePolicy(max_age=10, outage_grace=5), clock=lambda: now[0])
    k = cache.current("s", lambda: "dek-1")

    def down():
        raise KmsUnavailableError("aws-kms", "k", "generate", "timed out")

    now[0] = 12  # past max age, inside the grace window: keep sealing with the cached DEK
    assert cache.current("s", down) == k and cache.stats()["grace_uses"] == 1
    now[0] = 16  # past the grace window: fail closed
    with pytest.raises(KmsUnavailableError):
        cache.current("s", down)
    assert cache.current("s", lambda: "dek-2") == "dek-2"  # KMS back: recovers by itself
    with pytest.raises(KmsAccessDeniedError):  # a denial is never papered over by the grace window
        now[0] = 30
        cache.current("s", lambda: (_ for _ in ()).throw(KmsAccessDeniedError("x", "k", "g", "denied")))


def test_dek_cache_lru_bounds_and_invalidate():
    cache = DekCache(CachePolicy(max_entries=2))
    cache.put(("a", "u", "1"), b"A")
    cache.put(("b", "u", "1"), b"B")
    assert cache.get(("a", "u", "1")) == b"A"
    cache.put(("c", "u", "2"), b"C")  # evicts b, the least recently used
    assert cache.get(("b", "u", "1")) is None
    assert cache.stats()["evictions"] == 1
    assert cache.invalidate(lambda ref: ref[2] == "2") == 1
    assert cache.get(("c", "u", "2")) is None and cache.get(("a", "u", "1")) == b"A"
    assert "A" not in repr(cache)


def test_dek_cache_is_thread_safe_and_makes_one_key_per_scope():
    cache = DekCache()
    calls = []
    barrier = threading.Barrier(8)

    def factory():
        calls.append(1)
        return "k"

    def worker():
        barrier.wait()
        for _ in range(100):
            assert cache.current("s", factory) == "k"

    ts = [threading.Thread(target=worker) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert len(calls) == 1 and cache.stats()["hits"] == 799


def test_kms_is_not_called_per_file(keyring_uri):
    from heliosdb_flink_crypto.observe import EventBus
    bus, kms_calls = EventBus(), []
    bus.subscribe(lambda e: kms_calls.append(e["kms_op"]) if e["op"] == "kms_call" else None)
    c = CheckpointCrypto([keyring_uri], segment_size=64, bus=bus)
    cts = [c.encrypt_bytes(b"x" * 100) for _ in range(50)]
    fresh = CheckpointCrypto([keyring_uri], bus=bus)
    for ct in cts:
        fresh.decrypt_bytes(ct)
    assert kms_calls == ["dek_generate", "unwrap"]


def test_no_kms_configured_is_a_clear_error():
    with pytest.raises(KeyAccessError, match="heliosdb.crypto.kms.uri"):
        CheckpointCrypto([]).encrypt_bytes(b"x")


def test_config_load_defaults_and_errors_name_the_key(keyring_uri):
    conf = load({"heliosdb.crypto.kms.uri": f"{keyring_uri}; local:///other.json",
                 "heliosdb.crypto.segment-size": "1mb", "heliosdb.crypto.cache.max-age": "30 min",
                 "heliosdb.crypto.kms.aws.region": "eu-west-1", "state.backend.type": "rocksdb"})
    assert conf["heliosdb.crypto.kms.uri"] == [keyring_uri, "local:///other.json"]
    assert conf["heliosdb.crypto.segment-size"] == 1 << 20
    assert conf["heliosdb.crypto.cache.max-age"] == 1800
    assert conf["heliosdb.crypto.algorithm"] == "aes-256-gcm"
    assert conf["heliosdb.crypto.kms.aws.region"] == "eu-west-1"
    with pytest.raises(ConfigError, match="^heliosdb.crypto.kms.uri: is required"):
        load({})
    with pytest.raises(ConfigError, match="^heliosdb.crypto.algorithm: 'des' is not one of"):
        load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.algorithm": "des"})
    with pytest.raises(ConfigError, match="^heliosdb.crypto.segmentsize: unknown option"):
        load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.segmentsize": "1"})
    with pytest.raises(ConfigError, match="^heliosdb.crypto.segment-size: "):
        load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.segment-size": "big"})


def test_config_parsers():
    assert parse_size("256kb") == 262144 and parse_size("16") == 16 and parse_size("2 MiB") == 2 << 20
    assert parse_duration("500ms") == 0.5 and parse_duration("30 d") == 30 * 86400
    assert parse_bool("TRUE") is True and parse_bool("off") is False
    for fn, bad in ((parse_size, "x"), (parse_duration, "soon"), (parse_bool, "maybe")):
        with pytest.raises(ValueError):
            fn(bad)
    assert option("heliosdb.crypto.segment-size").default == 1 << 20
    with pytest.raises(KeyError):
        option("nope")

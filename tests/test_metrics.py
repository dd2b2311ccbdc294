"""Prometheus metrics: scraped over HTTP after real encrypt/decrypt work; bounded, key-free labels."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto, KmsError
from heliosdb_flink_crypto import metrics
from heliosdb_flink_crypto.audit import AuditLog, StreamSink, totals
from heliosdb_flink_crypto.errors import ConfigError
from heliosdb_flink_crypto.metrics import Metrics, MetricsServer, parse_ports, provider_of
from heliosdb_flink_crypto.observe import EventBus

SEED_METRICS = ["heliosdb_checkpoint_encryption_total", "heliosdb_checkpoint_decryption_total",
                "heliosdb_checkpoint_encryption_duration_seconds", "heliosdb_checkpoint_decryption_duration_seconds",
                "heliosdb_kms_call_duration_seconds", "heliosdb_key_rotation_total",
                "heliosdb_encryption_errors_total", "heliosdb_decryption_errors_total",
                "heliosdb_auth_failures_total"]


@pytest.fixture(autouse=True)
def no_process_metrics():
    metrics.shutdown()  # earlier tests (e.g. the Flink hooks' sessions) may have set up process metrics
    yield
    metrics.shutdown()


def free_port_range(n=10) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
    p = min(p, 65535 - n)
    return f"{p}-{p + n - 1}"


def scrape(url) -> dict:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, text


def test_endpoint_serves_every_documented_metric_after_real_work(keyring_uri, keyring, tmp_path):
    bus = EventBus()
    writer = CheckpointCrypto([keyring_uri], bus=bus, tenant="t1", segment_size=64)
    m = metrics.from_config({"heliosdb.crypto.metrics.port": free_port_range()}, bus, crypto=writer)
    assert metrics.from_config({}, bus) is m  # one per process
    reader = CheckpointCrypto([keyring_uri], bus=bus, segment_size=64)
    m.watch_cache(reader.cache)
    files = [writer.encrypt_bytes(os.urandom(1000)) for _ in range(3)]
    for ct in files[:2]:
        assert len(reader.decrypt_bytes(ct, path="/chk/f")) == 1000
    bad = bytearray(files[2])
    bad[-3] ^= 1
    with pytest.raises(AuthenticationError):
        reader.decrypt_bytes(bytes(bad), path="/chk/bad")
    broken = CheckpointCrypto([f"local://{tmp_path}/missing.json"], bus=bus)
    with pytest.raises(KmsError):
        broken.encrypt_bytes(b"x")
    bus.emit("rotate", "ok", kms_uri=keyring_uri, key_version="2", previous_version="1", reason="manual")
    bus.emit("encrypt", "error", path="/chk/e", error="KmsUnavailableError")

    url = metrics.server().url
    assert url.startswith("http://127.0.0.1:")
    v, text = scrape(url)
    for name in SEED_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert v[("heliosdb_checkpoint_encryption_total", (("tenant", "t1"),))] == 3
    assert v[("heliosdb_checkpoint_encrypted_bytes_total", (("tenant", "t1"),))] == 3000
    assert v[("heliosdb_checkpoint_decryption_total", (("tenant", "t1"),))] == 2
    assert v[("heliosdb_checkpoint_decrypted_bytes_total", (("tenant", "t1"),))] == 2000
    assert v[("heliosdb_checkpoint_encryption_duration_seconds_count", ())] == 3
    assert v[("heliosdb_checkpoint_decryption_duration_seconds_count", ())] == 2
    assert v[("heliosdb_auth_failures_total", ())] == 1
    assert v[("heliosdb_decryption_errors_total", (("reason", "AuthenticationError"),))] == 1
    assert v[("heliosdb_encryption_errors_total", (("reason", "KmsAccessDeniedError"),))] == 1
    assert v[("heliosdb_encryption_errors_total", (("reason", "KmsUnavailableError"),))] == 1
    assert v[("heliosdb_key_rotation_total", (("outcome", "ok"), ("provider", "local")))] == 1
    assert v[("heliosdb_kms_calls_total", (("op", "dek_generate"), ("outcome", "ok"), ("provider", "local")))] == 1
    assert v[("heliosdb_kms_calls_total", (("op", "unwrap"), ("outcome", "ok"), ("provider", "local")))] == 1
    assert v[("heliosdb_kms_calls_total", (("op", "dek_generate"), ("outcome", "error"), ("provider", "local")))] == 1
    assert v[("heliosdb_kms_call_duration_seconds_count", (("op", "unwrap"), ("provider", "local")))] == 1
    stats = [writer.cache.stats(), reader.cache.stats()]
    assert v[("heliosdb_dek_cache_hits_total", ())] == sum(s["hits"] for s in stats) > 0
    assert v[("heliosdb_dek_cache_misses_total", ())] == sum(s["misses"] for s in stats) > 0
    assert v[("heliosdb_dek_cache_entries", ())] == sum(s["entries"] for s in stats)
    assert v[("heliosdb_crypto_fips_enabled", ())] == 0
    assert v[("heliosdb_crypto_operations_total", (("op", "rotate"), ("outcome", "ok")))] == 1
    # labels hold schemes, never key URIs, paths or key material
    kek = keyring._data["versions"]["1"]["key"]
    dek = writer.cache._lru[next(iter(writer.cache._lru))][0]
    assert str(tmp_path) not in text and kek not in text and dek.hex() not in text


def test_snapshot_is_the_flat_contract_the_java_shim_polls(keyring_uri):
    bus = EventBus()
    c = CheckpointCrypto([keyring_uri], bus=bus, tenant="t1")
    assert metrics.snapshot() == {}  # nothing set up yet
    m = metrics.from_config({"heliosdb.crypto.metrics.port": "0"}, bus, crypto=c)
    assert metrics.server() is None  # port 0: no endpoint
    c.decrypt_bytes(c.encrypt_bytes(b"x" * 10))
    snap = metrics.snapshot()
    assert snap == metrics.snapshot(m) == json.loads(metrics.snapshot_json())
    assert snap['heliosdb_checkpoint_encryption_total{tenant="t1"}'] == 1.0
    assert snap['heliosdb_kms_calls_total{op="dek_generate",outcome="ok",provider="local"}'] == 1.0
    assert snap["heliosdb_checkpoint_decryption_duration_seconds_count"] == 1.0
    assert snap["heliosdb_checkpoint_decryption_duration_seconds_sum"] >= 0
    assert snap["heliosdb_dek_cache_hits_total"] >= 1 and "heliosdb_audit_events_dropped_total" in snap
    assert all(isinstance(k, str) and isinstance(x, float) for k, x in snap.items())
    assert not any(k.split("{")[0].endswith(("_created", "_bucket")) for k in snap)


def test_tenant_labels_are_capped_and_other_labels_bounded():
    bus = EventBus()
    m = Metrics(bus, max_tenants=2)
    for t in ["a", "b", "c", "d", None]:
        bus.emit("encrypt", tenant=t, bytes=1, seconds=0.01)
    bus.emit("kms_call", "error", kms_uri="https://vault.example/keys/k", kms_op="sign", seconds=0.1)
    bus.emit("kms_call", "weird", kms_op="unwrap", seconds=-1)
    bus.emit("something_new", "ok")
    bus.emit("decrypt", "error", error="a message with /a/path in it")
    bus.emit("auth_failure", "error")
    snap = metrics.snapshot(m)
    tenants = {k for k in snap if k.startswith("heliosdb_checkpoint_encryption_total")}
    assert tenants == {'heliosdb_checkpoint_encryption_total{tenant="a"}',
                       'heliosdb_checkpoint_encryption_total{tenant="b"}',
                       'heliosdb_checkpoint_encryption_total{tenant="_other"}'}
    assert snap['heliosdb_checkpoint_encryption_total{tenant="_other"}'] == 3
    assert snap['heliosdb_kms_calls_total{op="other",outcome="error",provider="other"}'] == 1
    assert snap['heliosdb_kms_calls_total{op="unwrap",outcome="other",provider="none"}'] == 1
    assert 'heliosdb_kms_call_duration_seconds_count{op="unwrap",provider="none"}' not in snap
    assert snap['heliosdb_crypto_operations_total{op="other",outcome="ok"}'] == 1
    assert snap['heliosdb_decryption_errors_total{reason="other"}'] == 1
    assert not any("/a/path" in k or "vault.example" in k for k in snap)
    m.close()
    bus.emit("auth_failure", "error")
    assert metrics.snapshot(m)["heliosdb_auth_failures_total"] == 1  # unsubscribed
    assert [provider_of(u) for u in ["aws-kms://arn", "local:///k", "", None, "http://[bad"]] == \
        ["aws-kms", "local", "none", "none", "other"]
    assert "Metrics" in repr(m)


def test_caches_that_are_gone_stop_being_reported(keyring_uri):
    m = Metrics(EventBus())
    c = CheckpointCrypto([keyring_uri], bus=EventBus())
    m.watch_cache(c.cache)
    c.encrypt_bytes(b"x")
    assert metrics.snapshot(m)["heliosdb_dek_cache_misses_total"] == 1
    del c
    import gc
    gc.collect()
    assert metrics.snapshot(m)["heliosdb_dek_cache_misses_total"] == 0 and m.caches() == []


def test_audit_drops_are_a_metric(tmp_path):
    rfd, wfd = os.pipe()
    stream = os.fdopen(wfd, "w")
    bus = EventBus()
    m = Metrics(bus)
    audit = AuditLog([StreamSink(stream)], bus=bus, queue_size=4)
    for i in range(3000):
        bus.emit("decrypt", file_id=str(i))
    snap = metrics.snapshot(m)
    assert audit.dropped > 0
    assert snap["heliosdb_audit_events_dropped_total"] == totals()["dropped"] >= audit.dropped
    os.close(rfd)  # the reader goes away: the writer's pending write fails and it finishes
    audit.close()
    with contextlib.suppress(BrokenPipeError):
        stream.close()
    assert metrics.snapshot(m)["heliosdb_audit_write_errors_total"] >= 1


def test_port_ranges_and_busy_ports():
    assert parse_ports("0") == [] and parse_ports(9250) == [9250] and parse_ports("9250-9252") == [9250, 9251, 9252]
    for bad in ["x", "9252-9250", "0-3", "70000"]:
        with pytest.raises(ValueError):
            parse_ports(bad)
    with pytest.raises(ConfigError, match="heliosdb.crypto.metrics.port"):
        metrics.from_config({"heliosdb.crypto.metrics.port": "lots"})
    with pytest.raises(ValueError, match="no port"):
        MetricsServer(Metrics(EventBus()).registry, [])
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    p = busy.getsockname()[1]
    m = Metrics(EventBus())
    try:
        with pytest.raises(OSError, match="in use"):
            MetricsServer(m.registry, f"{p}-{p}")
        srv = MetricsServer(m.registry, [p, *range(p + 1, min(p + 20, 65535))])
        assert srv.port != p and "MetricsServer(http://127.0.0.1:" in repr(srv)
        assert b"heliosdb_auth_failures_total" in urllib.request.urlopen(srv.url, timeout=10).read()
        srv.close()
    finally:
        busy.close()

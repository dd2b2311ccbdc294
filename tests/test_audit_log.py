"""The audit log over real crypto work: records, sinks, rotation, restarts, slow sinks, exit."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from heliosdb_flink_crypto import AuthenticationError, CheckpointCrypto
from heliosdb_flink_crypto.audit import (AuditLog, FileSink, StreamSink, SyslogSink, from_config, live_logs,
                                         order_files, totals, verify)
from heliosdb_flink_crypto.errors import ConfigError
from heliosdb_flink_crypto.observe import EventBus


def records(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def test_real_operations_become_chained_records_without_key_material(tmp_path, keyring_uri, keyring):
    bus = EventBus()
    log_path = tmp_path / "audit.log"
    with AuditLog([FileSink(str(log_path))], bus=bus) as audit:
        writer = CheckpointCrypto([keyring_uri], bus=bus, tenant="tenant-a", segment_size=64)
        ct = writer.encrypt_bytes(b"state" * 100)
        reader = CheckpointCrypto([keyring_uri], bus=bus, segment_size=64)
        assert reader.decrypt_bytes(ct, path="/chk/1/_metadata") == b"state" * 100
        bad = bytearray(ct)
        bad[-3] ^= 1
        with pytest.raises(AuthenticationError):
            reader.decrypt_bytes(bytes(bad), path="/chk/2/_metadata")
        # operations of the lifecycle and the store arrive on the same bus
        bus.emit("rotate", "ok", kms_uri=keyring_uri, key_version="2", previous_version="1", reason="manual")
        bus.emit("rewrap", "ok", path="/chk/1/_metadata", file_id="f", kms_uri=keyring_uri, key_version="2")
        bus.emit("delete", "ok", path="/chk/1", checkpoint_id=1)
        assert audit in live_logs()
    recs = records(log_path)
    ops = [(r["op"], r["outcome"]) for r in recs]
    assert ops[0] == ("audit_start", "ok") and ops[-1] == ("audit_stop", "ok")
    for expected in [("dek_generate", "ok"), ("encrypt", "ok"), ("unwrap", "ok"), ("decrypt", "ok"),
                     ("auth_failure", "error"), ("decrypt", "error"), ("rotate", "ok"), ("rewrap", "ok"),
                     ("delete", "ok")]:
        assert expected in ops
    assert "kms_call" not in {r["op"] for r in recs}  # duplicates of dek_generate/unwrap
    enc = next(r for r in recs if r["op"] == "encrypt")
    dec = next(r for r in recs if r["op"] == "decrypt")
    assert enc["tenant"] == "tenant-a" and enc["bytes"] == 500 and enc["kms_uri"] == keyring_uri
    assert dec["file_id"] == enc["file_id"] and dec["path"] == "/chk/1/_metadata" and dec["key_version"] == "1"
    assert all(r["pid"] == os.getpid() and r["host"] == socket.gethostname() and r["time"].endswith("Z")
               for r in recs)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    text = log_path.read_text()
    kek = keyring._data["versions"]["1"]["key"]
    dek = writer.cache._lru[next(iter(writer.cache._lru))][0]
    assert kek not in text and dek.hex() not in text and dek.hex().upper() not in text
    assert verify([str(log_path)]).ok
    assert oct(os.stat(log_path).st_mode & 0o777) == "0o600"


def test_rotation_keeps_the_chain_and_a_restart_continues_it(tmp_path):
    bus = EventBus()
    base = str(tmp_path / "logs" / "audit.log")
    audit = AuditLog([FileSink(base, max_bytes=2048, max_files=0)], bus=bus)
    for i in range(40):
        bus.emit("encrypt", file_id=f"{i:032x}", bytes=i)
    audit.close()
    audit.close()  # idempotent
    rotated = sorted(p for p in os.listdir(tmp_path / "logs") if p != "audit.log")
    assert len(rotated) >= 4 and all(os.path.getsize(tmp_path / "logs" / p) <= 2048 for p in rotated)
    # a restarted process appends to the same log and continues its chain
    audit = AuditLog([FileSink(base, max_bytes=2048, max_files=0)], bus=bus)
    bus.emit("decrypt", file_id="again")
    audit.close()
    (files,) = order_files([base])
    r = verify(files, from_start=True)
    assert r.ok and r.records == 40 + 2 + 3 and r.first_seq == 0 and r.last_seq == 44
    ops = [rec["op"] for f in files for rec in records(f)]
    assert ops.count("audit_start") == 2 and ops.count("audit_stop") == 2
    # old rotated files beyond max_files are deleted; what is left still verifies (with a note)
    audit = AuditLog([FileSink(base, max_bytes=2048, max_files=2)], bus=bus)
    for i in range(20):
        bus.emit("encrypt", file_id=f"{i:032x}")
    audit.close()
    (files,) = order_files([base])
    assert len(files) == 3
    r = verify(files)
    assert r.ok and r.first_seq > 0 and "rotated away" in r.notes[0]


def test_restart_with_a_different_key_setting_is_refused(tmp_path):
    key = os.urandom(32)
    path = str(tmp_path / "audit.log")
    AuditLog([FileSink(path)], key=key, bus=EventBus()).close()
    for other in (None, os.urandom(32)):
        with pytest.raises(ConfigError, match="does not verify with the configured HMAC key") as e:
            AuditLog([FileSink(path)], key=other, bus=EventBus())
        assert key.hex() not in str(e.value)
    AuditLog([FileSink(path)], key=key, bus=EventBus()).close()
    assert verify([path], key).ok


def test_a_partial_line_from_a_crash_is_accepted_when_a_restart_follows(tmp_path):
    path = str(tmp_path / "audit.log")
    bus = EventBus()
    audit = AuditLog([FileSink(path)], bus=bus)
    bus.emit("encrypt", file_id="a")
    audit.close()
    with open(path, "a") as f:
        f.write('{"alg":"sha256","bytes":12,"file_')  # killed mid-write
    r = verify([path])
    assert r.ok and "ends with a partial record" in r.notes[0]
    audit = AuditLog([FileSink(path)], bus=bus)
    bus.emit("encrypt", file_id="b")
    audit.close()
    r = verify([path])
    assert r.ok and r.records == 6 and "then a restart" in r.notes[0]
    # the same gap NOT followed by a restart record is a failure at that line
    lines = open(path).read().splitlines()
    del lines[4]  # the audit_start after the partial line
    open(path, "w").write("\n".join(lines) + "\n")
    r = verify([path])
    assert not r.ok and r.bad_line == 4 and "partial write not followed by a restart" in r.reason


def test_a_stuck_sink_never_blocks_checkpointing_and_drops_are_recorded(tmp_path, keyring_uri):
    rfd, wfd = os.pipe()  # nobody reads: the writer thread blocks once the pipe is full
    stream = os.fdopen(wfd, "w")
    bus = EventBus()
    before = totals()["dropped"]
    audit = AuditLog([StreamSink(stream)], bus=bus, queue_size=16)
    crypto = CheckpointCrypto([keyring_uri], bus=bus, segment_size=64)
    t = time.perf_counter()
    for _ in range(300):  # real encrypt + decrypt work, ~3 records per iteration
        crypto.decrypt_bytes(crypto.encrypt_bytes(b"x" * 256))
    for i in range(2000):
        bus.emit("decrypt", file_id=str(i), bytes=1)
    elapsed = time.perf_counter() - t
    assert elapsed < 5, f"checkpoint work took {elapsed:.2f} s behind a stuck audit sink"
    assert audit.dropped > 0 and totals()["dropped"] - before == audit.dropped
    # the reader comes back: everything queued plus one drop record is written, and the chain holds
    got = []
    drain = threading.Thread(target=lambda: got.append(_read_all(rfd)))
    drain.start()
    audit.close()
    stream.close()
    drain.join(10)
    lines = got[0].decode().splitlines()
    drops = [json.loads(x) for x in lines if '"op":"audit_drop"' in x]
    assert sum(d["dropped"] for d in drops) == audit.dropped and drops[0]["outcome"] == "error"
    assert len(lines) == audit.written == audit.stats()["written"]
    (tmp_path / "piped.log").write_text("\n".join(lines) + "\n")
    assert verify([str(tmp_path / "piped.log")]).ok


def _read_all(fd):
    out = bytearray()
    while True:
        b = os.read(fd, 65536)
        if not b:
            return bytes(out)
        out += b


def test_a_failing_sink_is_counted_and_the_others_still_write(tmp_path):
    broken = open(tmp_path / "gone.log", "w")
    broken.close()
    bus = EventBus()
    path = str(tmp_path / "audit.log")
    before = totals()["write_errors"]
    with AuditLog([StreamSink(broken), FileSink(path)], bus=bus) as audit:
        bus.emit("encrypt", file_id="x")
    assert audit.write_errors >= 3 and totals()["write_errors"] - before == audit.write_errors
    assert [r["op"] for r in records(path)] == ["audit_start", "encrypt", "audit_stop"]


def test_stderr_sink_from_config(capsys):
    bus = EventBus()
    audit = from_config({"heliosdb.crypto.audit.sinks": "stderr"}, bus)
    bus.emit("wrap", kms_uri="local:///k", key_version="1", dek=os.urandom(32))
    audit.close()
    err = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [r["op"] for r in err] == ["audit_start", "wrap", "audit_stop"] and "dek" not in err[1]


def test_syslog_sink_over_udp(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    port = rx.getsockname()[1]
    key = os.urandom(32)
    (tmp_path / "k").write_bytes(key)
    bus = EventBus()
    audit = from_config({"heliosdb.crypto.audit.sinks": "syslog",
                         "heliosdb.crypto.audit.syslog.address": f"127.0.0.1:{port}",
                         "heliosdb.crypto.audit.syslog.facility": "local3",
                         "heliosdb.crypto.audit.hmac-key-file": str(tmp_path / "k")}, bus)
    bus.emit("auth_failure", "error", path="/chk/x", file_id="ab")
    audit.close()
    msgs = [rx.recv(65536).decode() for _ in range(3)]
    rx.close()
    prefix = f"<{19 * 8 + 6}>heliosdb-flink-crypto[{os.getpid()}]: "  # local3.info
    assert all(m.startswith(prefix) for m in msgs)
    recs = [m[len(prefix):].rstrip("\x00") for m in msgs]
    assert json.loads(recs[1])["op"] == "auth_failure"
    (tmp_path / "syslog.log").write_text("\n".join(recs) + "\n")
    assert verify([str(tmp_path / "syslog.log")], key).ok


def test_from_config_validation(tmp_path):
    assert from_config({}) is None
    with pytest.raises(ConfigError, match="heliosdb.crypto.audit.sinks"):
        from_config({"heliosdb.crypto.audit.sinks": "kafka"})
    with pytest.raises(ConfigError, match="heliosdb.crypto.audit.file: is required"):
        from_config({"heliosdb.crypto.audit.sinks": "file"})
    with pytest.raises(ConfigError, match="heliosdb.crypto.audit.syslog.address"):
        from_config({"heliosdb.crypto.audit.sinks": "syslog", "heliosdb.crypto.audit.syslog.address": "nohost"})
    with pytest.raises(ConfigError, match="heliosdb.crypto.audit.queue-size"):
        from_config({"heliosdb.crypto.audit.sinks": "stderr", "heliosdb.crypto.audit.queue-size": "many"})
    with pytest.raises(ValueError, match="at least 1 kb"):
        FileSink(str(tmp_path / "a.log"), max_bytes=10)
    with pytest.raises(ValueError, match="facility"):
        SyslogSink("127.0.0.1:514", "kern")
    with pytest.raises(ValueError, match="sink"):
        AuditLog([])
    with pytest.raises(ValueError, match="queue size"):
        AuditLog([StreamSink()], queue_size=0)
    audit = from_config({"heliosdb.crypto.audit.sinks": "file",
                         "heliosdb.crypto.audit.file": str(tmp_path / "tm-{pid}-{host}.log"),
                         "heliosdb.crypto.audit.file.max-size": "1kb",
                         "heliosdb.crypto.audit.file.max-files": "3"}, EventBus())
    sink = audit.sinks[0]
    assert sink.path == str(tmp_path / f"tm-{os.getpid()}-{socket.gethostname()}.log")
    assert (sink.max_bytes, sink.max_files) == (1024, 3) and "FileSink" in repr(audit)
    audit.close()


def test_records_are_flushed_when_the_process_exits_without_close(tmp_path):
    path = tmp_path / "exit.log"
    code = ("from heliosdb_flink_crypto.audit import AuditLog, FileSink\n"
            "from heliosdb_flink_crypto.observe import BUS\n"
            f"AuditLog([FileSink({str(path)!r})])\n"
            "for i in range(500):\n"
            "    BUS.emit('encrypt', file_id=str(i), bytes=i)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    recs = records(path)
    assert len(recs) == 502 and recs[-1]["op"] == "audit_stop"
    assert verify([str(path)]).ok


def test_one_audit_log_per_process(tmp_path):
    from heliosdb_flink_crypto.audit import close_process_log, process_log
    bus = EventBus()
    conf = {"heliosdb.crypto.audit.sinks": "file", "heliosdb.crypto.audit.file": str(tmp_path / "p.log")}
    close_process_log()  # earlier tests (e.g. the Flink hooks' sessions) may have made the process's log
    try:
        first = process_log(conf, bus)
        assert process_log({**conf, "heliosdb.crypto.audit.file": str(tmp_path / "other.log")}, bus) is first
        bus.emit("encrypt", file_id="x")
    finally:
        close_process_log()
        close_process_log()
    assert [r["op"] for r in records(tmp_path / "p.log")] == ["audit_start", "encrypt", "audit_stop"]
    assert not (tmp_path / "other.log").exists()


def test_an_unwritable_record_is_counted_as_dropped_and_the_writer_goes_on(tmp_path):
    path = str(tmp_path / "audit.log")
    bus = EventBus()
    clock_values = iter([1e6, 1e20] + [1e6] * 50)  # the second timestamp is beyond any calendar
    with AuditLog([FileSink(path)], bus=bus, clock=lambda: next(clock_values)) as audit:
        bus.emit("encrypt", file_id="lost")
        bus.emit("encrypt", file_id="kept")
    ops = [(r["op"], r.get("file_id")) for r in records(path)]
    assert ("encrypt", "kept") in ops and ("encrypt", "lost") not in ops
    assert ("audit_drop", None) in ops and audit.dropped == 1
    assert verify([path]).ok


def test_from_config_accepts_the_parsed_configuration_the_hooks_hold(tmp_path):
    from heliosdb_flink_crypto import config
    conf = config.load({"heliosdb.crypto.kms.uri": "local:///k", "heliosdb.crypto.audit.sinks": "file",
                        "heliosdb.crypto.audit.file": str(tmp_path / "a.log"),
                        "heliosdb.crypto.audit.file.max-size": "2mb", "heliosdb.crypto.audit.queue-size": "7"})
    audit = from_config(conf, EventBus())
    assert audit.sinks[0].max_bytes == 2 << 20 and audit._queue.maxsize == 7
    audit.close()


def test_syslog_sink_over_a_unix_socket(tmp_path):
    path = str(tmp_path / "dev-log")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(5)
    bus = EventBus()
    with AuditLog([SyslogSink(path, "auth")], bus=bus):
        bus.emit("destroy", kms_uri="local:///k", key_version="1")
    msgs = [rx.recv(65536).decode() for _ in range(3)]
    rx.close()
    assert all(m.startswith(f"<{4 * 8 + 6}>heliosdb-flink-crypto[") for m in msgs)  # auth.info
    assert '"op":"destroy"' in msgs[1]

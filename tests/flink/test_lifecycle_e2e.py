"""Key lifecycle in a real Flink job (PyFlink's local MiniCluster, ``enc+file://`` checkpoints).

* Rotation across a job: a job checkpoints under KEK version 1 and is cancelled (its checkpoint
  retained); ``heliosdb-flink-crypto keys rotate`` makes version 2 current; a new run restores from
  the old checkpoint (its files still open under version 1), continues every key exactly, and writes
  its own checkpoint and savepoint under version 2 only; a third run restores from that version-2
  savepoint and finishes with every count exact. ``keys usage`` reports both versions.
* Tenants by path prefix: a job under tenant A's prefix writes headers naming tenant A (wrapped by
  A's keyring, never B's); A's checkpoint copied under tenant B's prefix does not restore: the job
  fails with the tenant-mismatch error and processes nothing.
* Metrics: with ``heliosdb.crypto.metrics.port`` set, the endpoint runs inside the job's JVM and,
  scraped over HTTP while the job runs, shows files encrypted and KMS calls counted.
"""
from __future__ import annotations

import os
import re
import shutil
import threading

import pytest

import harness as h
from cluster import free_port, prom_value, scrape
from heliosdb_flink_crypto.format import parse

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 64


def _job(**kw):
    return dict(records=RECORDS, keys=KEYS, pad=PAD, local_crypto=True, **kw)


def _keyring(root) -> str:
    uri = "local://" + str(root / "keyring.json")
    r = h.cli("keyring", "init", uri)
    assert r.returncode == 0, r.stdout + r.stderr
    return uri


def _headers(root: str) -> dict[str, object]:
    """path -> parsed header of every non-empty file under ``root``."""
    out = {}
    for p in h.all_files(root):
        if os.path.getsize(p):
            with open(p, "rb") as f:
                out[p] = parse(f.read(), p)
    assert out, f"no files under {root}"
    return out


def _versions(root: str) -> set[str]:
    return {s.key_version for hd in _headers(root).values() for s in hd.slots}


def _continued_prefix(out_dir: str) -> dict[int, int]:
    """For a run that was stopped early: every key it touched continued from its restored count
    (first count one above it, the marker it saw names that count) and rose one by one."""
    out = h.read_outputs(out_dir)
    assert out, "the restored run processed nothing"
    restored = {}
    for k, seq in out.items():
        counts = [n for n, _ in seq]
        first, prev = seq[0]
        assert counts == list(range(first, first + len(counts))), f"key {k}: counts jump: {counts[:8]}"
        c = first - 1
        assert prev.startswith(f"HELIOS-MARKER-{k}-{c}-") if c else prev == "", \
            f"key {k}: restored marker {prev!r} does not match the restored count {c}"
        restored[k] = c
    assert sum(restored.values()) > 0, "the restored state was empty: the job started from scratch"
    return restored


# -- 1. rotation across a job -------------------------------------------------------------------
def test_rotation_between_runs_restores_old_version_and_writes_new(tmp_path):
    keyring = _keyring(tmp_path)
    conf = {"heliosdb.crypto.kms.uri": keyring}
    cp1 = f"{tmp_path}/checkpoints-1"
    first = h.run_job(str(tmp_path), "first", f"enc+file://{cp1}", mode="cancel", conf=conf,
                      stop_after=2, **_job(throttle_ms=2))
    assert first.ok, first.describe()
    assert _versions(cp1) == {"1"}

    r = h.cli("keys", "rotate", keyring)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "version 1 -> 2" in r.stdout, r.stdout

    # run 2: restores from the version-1 checkpoint, checkpoints and stops with a savepoint
    cp2, sp2 = f"{tmp_path}/checkpoints-2", f"{tmp_path}/savepoints-2"
    second = h.run_job(str(tmp_path), "second", f"enc+file://{cp2}", mode="stop",
                       savepoint_dir=f"enc+file://{sp2}", restore=first.result["checkpoints"][-1],
                       conf=conf, stop_after=1, **_job(throttle_ms=2))
    assert second.ok, second.describe()
    _continued_prefix(second.out_dir)
    assert _versions(sp2) == {"2"}, "files written after the rotation are not under version 2"
    assert _versions(cp1) == {"1"}, "the old checkpoint changed"

    usage = h.cli("keys", "usage", "--kms", keyring, cp1, sp2)
    assert usage.returncode == 0, usage.stdout + usage.stderr
    assert re.search(r"version 1: [1-9]\d* file", usage.stdout), usage.stdout
    assert re.search(r"version 2: [1-9]\d* file", usage.stdout), usage.stdout
    assert "oldest version still needed: 1" in usage.stdout, usage.stdout

    # run 3: restores from the version-2 savepoint and finishes: every count exact to the end
    third = h.run_job(str(tmp_path), "third", f"enc+file://{tmp_path}/checkpoints-3",
                      restore=second.result["savepoint"], conf=conf, **_job())
    assert third.ok, third.describe()
    h.assert_continued(third.out_dir, RECORDS, KEYS)
    # the state run 3 restored is run 2's (which went on from run 1's), not run 1's again
    restored_1 = _continued_prefix(second.out_dir)
    out3 = h.read_outputs(third.out_dir)
    assert sum(out3[k][0][0] - 1 for k in out3) > sum(restored_1.values())


# -- 2. tenants by path prefix ------------------------------------------------------------------
def test_tenant_checkpoint_copied_under_another_tenant_does_not_restore(tmp_path):
    ring_a, ring_b = _keyring(tmp_path / "ka"), _keyring(tmp_path / "kb")
    a, b = tmp_path / "tenant-a", tmp_path / "tenant-b"
    conf = {"heliosdb.crypto.kms.uri": ring_a, "heliosdb.crypto.tenants.require-match": "true",
            "heliosdb.crypto.tenants.A.path-prefix": f"file://{a}", "heliosdb.crypto.tenants.A.kms.uri": ring_a,
            "heliosdb.crypto.tenants.B.path-prefix": f"file://{b}", "heliosdb.crypto.tenants.B.kms.uri": ring_b}
    run = h.run_job(str(tmp_path), "tenant-a", f"enc+file://{a}/checkpoints", mode="cancel", conf=conf,
                    stop_after=1, **_job(throttle_ms=2))
    assert run.ok, run.describe()
    headers = _headers(str(a / "checkpoints"))
    assert {hd.tenant for hd in headers.values()} == {"A"}
    assert {s.kms_uri for hd in headers.values() for s in hd.slots} == {ring_a}
    assert h.files_with(str(a)) == [], "plaintext state on disk"

    shutil.copytree(a / "checkpoints", b / "checkpoints")
    chk = run.result["checkpoints"][-1].replace(str(a), str(b))
    assert os.path.exists(h.local_path(chk) + "/_metadata")
    bad = h.run_job(str(tmp_path), "tenant-b", f"enc+file://{b}/restored", restore=chk, conf=conf,
                    **_job())
    assert not bad.ok, "a checkpoint copied to another tenant restored silently"
    text = bad.log_text() + bad.result.get("error", "")
    assert "belongs to tenant 'A' but its path belongs to tenant 'B'" in text, bad.describe()
    assert not h.read_outputs(bad.out_dir), "the job processed records without its state"


# -- 3. metrics endpoint inside the running job -------------------------------------------------
def test_metrics_endpoint_in_running_job(tmp_path, crypto_conf):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    stop = tmp_path / "stop"
    conf = dict(crypto_conf, **{"heliosdb.crypto.metrics.port": str(port)})
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("run", h.run_job(
        str(tmp_path), "metrics", f"enc+file://{tmp_path}/checkpoints", mode="hold", stop_file=str(stop),
        conf=conf, timeout=150, **_job(throttle_ms=5))), daemon=True)
    t.start()
    try:
        def scraped():
            text = scrape(url)
            ok = (prom_value(text, "heliosdb_checkpoint_encryption_total") >= 3
                  and prom_value(text, "heliosdb_kms_calls_total", provider="local") > 0)
            return text if ok else ""
        text = h.wait_for(scraped, 110, "metrics endpoint showing encrypted checkpoint files", interval=0.5)
    finally:
        stop.touch()
        t.join(160)
    run = box.get("run")
    assert run is not None and run.ok, run.describe() if run else "the job did not end"
    for name in ("heliosdb_checkpoint_encryption_total", "heliosdb_checkpoint_decryption_total",
                 "heliosdb_checkpoint_encryption_duration_seconds", "heliosdb_checkpoint_decryption_duration_seconds",
                 "heliosdb_kms_call_duration_seconds", "heliosdb_key_rotation_total",
                 "heliosdb_encryption_errors_total", "heliosdb_decryption_errors_total",
                 "heliosdb_auth_failures_total"):
        assert re.search(rf"^# TYPE {name.removesuffix('_total')}(_total)? (counter|histogram)$", text, re.M), \
            f"{name} missing from the endpoint"
    assert prom_value(text, "heliosdb_kms_calls_total", provider="local", op="dek_generate", outcome="ok") > 0, text
    assert prom_value(text, "heliosdb_kms_call_duration_seconds_count", provider="local") > 0
    assert prom_value(text, "heliosdb_checkpoint_encrypted_bytes_total") > 0
    assert prom_value(text, "heliosdb_auth_failures_total") == 0
    assert prom_value(text, "heliosdb_encryption_errors_total") == 0
    assert prom_value(text, "heliosdb_checkpoint_encryption_duration_seconds_count") >= 3
    # labels are bounded and never carry the keyring path
    assert crypto_conf["heliosdb.crypto.kms.uri"].split("://", 1)[1] not in text
    # the endpoint lives and dies with the job's process
    assert scrape(url) == ""

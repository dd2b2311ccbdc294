"""Flink 1.20 LTS end to end, ``python job.py`` (PyFlink 1.20's local MiniCluster) in the venv
``./dev setup`` makes for it (.venv-flink120: PyFlink 1.20 and this package with the metrics extra).

For HashMap and for RocksDB with incremental checkpoints, checkpointing to ``enc+file://``: no byte
of any checkpoint or savepoint file shows the marker that fills the keyed state; every file
authenticates (``verify``); restores from the retained checkpoint and from the savepoint continue
every key exactly; one flipped byte in a state file, or in ``_metadata``, of the retained checkpoint
fails the restore naming that file (the byte is flipped back afterwards). ``local.enable`` picks the
Flink 1.20 jar by itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import harness as h
from cluster import make_distribution, pyflink_home

pytestmark = pytest.mark.slow

RECORDS, KEYS, PAD = 12000, 400, 128


@pytest.fixture(scope="module", params=["hashmap", "rocksdb"])
def first(request, tmp_path_factory, crypto_conf, flink120_python):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"flink120-{backend}")
    kw = dict(backend=backend, incremental=backend == "rocksdb")
    run = h.run_job(str(tmp), "first", f"enc+file://{tmp}/checkpoints", mode="savepoint-cancel",
                    savepoint_dir=f"enc+file://{tmp}/savepoints", conf=crypto_conf, python=flink120_python,
                    records=RECORDS, keys=KEYS, pad=PAD, throttle_ms=2, stop_after=3, local_crypto=True, **kw)
    assert run.ok, run.describe()
    return {"tmp": tmp, "kw": kw, "python": flink120_python, "checkpoint": run.result["checkpoints"][-1],
            "savepoint": run.result["savepoint"]}


def test_the_venv_runs_pyflink_120(flink120_python):
    code = "from pyflink.version import __version__ as v; print(v)"
    out = subprocess.run([flink120_python, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("1.20."), out


def test_a_jar_of_another_line_is_refused_naming_both(tmp_path, crypto_conf, flink120_python):
    """``local.enable`` given the Flink 2.3 jar, and the 2.3 jar copied by hand into a Flink 1.20
    distribution: refused naming both lines (the Flink process stops at start), never a
    NoSuchMethodError later."""
    from heliosdb_flink_crypto.flink import jar_path, versions
    other = jar_path(versions.LINES[0])  # the Flink 2.3 jar
    source = pyflink_home(flink120_python)
    home = make_distribution(str(tmp_path / "flink"), source)
    os.makedirs(os.path.join(home, "plugins", "heliosdb-crypto"))
    shutil.copy(other, os.path.join(home, "plugins", "heliosdb-crypto"))
    shutil.copy(os.path.join(source, "conf", "config.yaml"), os.path.join(home, "conf"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINK_")}
    r = subprocess.run([os.path.join(home, "bin", "flink"), "list"], capture_output=True, text=True, timeout=120,
                       env=dict(env, FLINK_CONF_DIR=os.path.join(home, "conf")))
    assert r.returncode != 0
    assert ("the enc+ FileSystem plugin (enc+file) was built for Flink 2.3 but runs on Flink 1.20."
            in r.stdout + r.stderr), r.stdout + r.stderr
    run = h.run_job(str(tmp_path), "wrong-jar", f"enc+file://{tmp_path}/checkpoints", conf=crypto_conf,
                    python=flink120_python, records=100, keys=10, local_crypto=True, timeout=120,
                    env={"HELIOSDB_SHIM_JAR": other})
    assert run.result["status"] == "ERROR", run.describe()
    assert f"{other} is built for Flink 2.3, but this Flink is 1.20" in run.result["error"], run.describe()


def _restore(first, crypto_conf, name, source, timeout=300):
    return h.run_job(str(first["tmp"]), name, f"enc+file://{first['tmp']}/{name}-checkpoints", restore=source,
                     conf=crypto_conf, python=first["python"], records=RECORDS, keys=KEYS, pad=PAD,
                     local_crypto=True, timeout=timeout, **first["kw"])


def test_checkpoint_and_savepoint_files_are_ciphertext(first, keyring):
    for root in (f"{first['tmp']}/checkpoints", f"{first['tmp']}/savepoints"):
        files = h.all_files(root)
        assert any(os.path.basename(p) != "_metadata" for p in files), f"all state was inline in {root}"
        assert h.files_with(root) == [], "plaintext state on disk"
        assert h.not_encrypted(root) == []
        r = h.cli("verify", "--kms", keyring, root)
        assert r.returncode == 0 and f"verified {len(files)} of {len(files)} files; 0 failed" in r.stdout, r.stdout
        assert any(h.MARKER in data for data in h.decrypt_all(root, keyring).values()), "the control failed"
    if first["kw"]["incremental"]:
        assert [p for p in h.all_files(f"{first['tmp']}/checkpoints") if f"{os.sep}shared{os.sep}" in p], \
            "no shared (incremental) files"


def test_restore_from_retained_checkpoint_continues_exactly(first, crypto_conf):
    run = _restore(first, crypto_conf, "from-checkpoint", first["checkpoint"])
    assert run.ok, run.describe()
    h.assert_continued(run.out_dir, RECORDS, KEYS)


def test_restore_from_savepoint_continues_exactly(first, crypto_conf):
    run = _restore(first, crypto_conf, "from-savepoint", first["savepoint"])
    assert run.ok, run.describe()
    h.assert_continued(run.out_dir, RECORDS, KEYS)


@pytest.mark.parametrize("target", ["state-file", "_metadata"])
def test_tampered_checkpoint_fails_the_restore_naming_the_file(first, crypto_conf, target):
    chk = h.local_path(first["checkpoint"])
    victim = os.path.join(chk, "_metadata") if target == "_metadata" else h.checkpoint_state_file(chk)
    name = f"tampered-{target}"
    with h.flipped(victim):
        run = _restore(first, crypto_conf, name, first["checkpoint"], timeout=200)
    assert run.result["status"] == "ERROR", run.describe()
    error = run.result.get("error", "") + run.result.get("traceback", "") + run.log_text()
    assert os.path.basename(victim) in error, f"the error does not name {victim}:\n{run.describe()}"
    assert "authentication failed" in error.lower(), run.describe()
    assert not any(h.read_outputs(run.out_dir).values()), "records were processed on tampered state"

"""Fixtures for the real-Flink end-to-end tests (all ``@pytest.mark.slow``).

Each job run is its own ``python counter_job.py`` process (PyFlink's local MiniCluster in one JVM),
exactly how a user runs ``python job.py``; the encrypted schemes are enabled in it with
``heliosdb_flink_crypto.flink.local.enable``. A module runs its first job once (a fixture) and its
tests share the checkpoint and savepoint that run leaves behind.
"""
from __future__ import annotations

import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import s3_plugin  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def keyring(tmp_path_factory) -> str:
    """A local keyring made at test time; its URI."""
    uri = "local://" + str(tmp_path_factory.mktemp("keyring") / "keyring.json")
    r = harness.cli("keyring", "init", uri)
    assert r.returncode == 0, r.stderr
    return uri


@pytest.fixture(scope="session")
def crypto_conf(keyring) -> dict[str, str]:
    return {"heliosdb.crypto.kms.uri": keyring}


@pytest.fixture(scope="session")
def flink120_python() -> str:
    """The interpreter of the Flink 1.20 venv ``./dev setup`` makes (PyFlink 1.20 and this package,
    editable, without extras); ``HELIOSDB_PYTHON_1_20`` points elsewhere."""
    python = os.environ.get("HELIOSDB_PYTHON_1_20") or os.path.join(ROOT, ".venv-flink120", "bin", "python")
    assert os.access(python, os.X_OK), f"{python} is missing: ./dev setup makes it (PyFlink 1.20)"
    return python


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 (stopped after the module), with a bucket ``bucket``; Flink's S3
    plugin fetched here, not inside a job's timeout."""
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    s3_plugin.s3_client(endpoint).create_bucket(Bucket="bucket")
    s3_plugin.plugins_dir()
    yield endpoint
    server.stop()

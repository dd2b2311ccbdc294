"""The base install (no extras) is enough for the Flink path with a local keyring; every optional
dependency is imported only where its feature is switched on, and its absence names the extra.

Each case runs in a fresh interpreter with the optional modules made unimportable
(``sys.modules[name] = None``: ``import`` raises ImportError exactly as when the package is not
installed), so nothing imported earlier by this test session can hide a missing import.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: every optional dependency of the package (its extras: metrics, aws, azure, gcp, pkcs11, store)
OPTIONAL = ("prometheus_client", "boto3", "botocore", "azure", "google", "grpc", "pkcs11", "pyarrow")


def run_without_extras(code: str, *args: str) -> subprocess.CompletedProcess:
    prelude = f"import sys\nfor _m in {OPTIONAL!r}:\n    sys.modules[_m] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120)


SHIM_ROUND_TRIP = """
import json
from heliosdb_flink_crypto.flink import hooks
conf = json.loads(sys.argv[1])
sid = hooks.dispatch("configure", json.dumps(conf))
path = "/ckpt/job/chk-1/_metadata"
handle, header, seg, _ = hooks.dispatch("writer", sid, path)
sealed = hooks.dispatch("seal_bytes", handle, 0, True, b"state bytes")
hooks.dispatch("finish", handle, 11)
reader = hooks.dispatch("reader", sid, path, header)
assert hooks.dispatch("open_bytes", reader, 0, True, sealed) == b"state bytes"
hooks.dispatch("close", reader)
print("snapshot", hooks.dispatch("metrics_snapshot"))
try:
    hooks.dispatch("flink_metrics", json.dumps(conf))
except ImportError as e:
    print("flink_metrics:", e)
"""


CLI = """
from heliosdb_flink_crypto.cli import main
uri, src, enc, out = sys.argv[1:]
for argv in (["keyring", "init", uri], ["encrypt", "--kms", uri, src, enc], ["decrypt", "--kms", uri, enc, out],
             ["verify", "--kms", uri, enc], ["inspect", enc]):
    rc = main(argv)
    assert rc == 0, (argv, rc)
"""


def test_the_shim_path_and_the_cli_with_a_local_keyring_need_no_extra(keyring_uri, tmp_path):
    """What the Java shim calls on every checkpoint file (configure, writer, seal, reader, open), and
    the CLI's file commands."""
    conf = {"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.rotation.enabled": "false"}
    r = run_without_extras(SHIM_ROUND_TRIP, json.dumps(conf))
    assert r.returncode == 0, r.stderr
    assert "snapshot {}" in r.stdout
    # the lib jar's metered state backend switches metrics on: then the extra is named
    assert ("flink_metrics: heliosdb.crypto.metrics (the Prometheus endpoint or the lib jar's Flink metrics) "
            "needs the Python package 'prometheus_client', which is not installed: "
            "pip install 'heliosdb-flink-crypto[metrics]'") in r.stdout, r.stdout

    (tmp_path / "state").write_bytes(b"x" * 100_000)
    uri = f"local://{tmp_path}/cli/keyring.json"
    r = run_without_extras(CLI, uri, str(tmp_path / "state"), str(tmp_path / "state.enc"), str(tmp_path / "out"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out").read_bytes() == b"x" * 100_000


def test_a_metrics_endpoint_without_prometheus_client_names_the_extra(keyring_uri):
    conf = {"heliosdb.crypto.kms.uri": keyring_uri, "heliosdb.crypto.rotation.enabled": "false",
            "heliosdb.crypto.metrics.port": "9250-9260"}
    r = run_without_extras(SHIM_ROUND_TRIP, json.dumps(conf))
    assert r.returncode != 0
    assert "MissingExtraError" in r.stderr and "pip install 'heliosdb-flink-crypto[metrics]'" in r.stderr, r.stderr


@pytest.mark.parametrize("uri, module, extra", [
    ("aws-kms://alias/checkpoints?region=eu-west-1", "boto3", "aws"),
    ("azure-kv://vault.example.net/keys/checkpoints", "azure.keyvault.keys", "azure"),
    ("gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k", "google.cloud.kms_v1", "gcp"),
    ("pkcs11://token/key?module=/usr/lib/softhsm/libsofthsm2.so", "pkcs11", "pkcs11"),
])
def test_a_kms_uri_without_its_sdk_names_the_extra(uri, module, extra):
    code = """
    from heliosdb_flink_crypto.kms import open_provider
    try:
        open_provider(sys.argv[1], {"heliosdb.crypto.kms.pkcs11.pin-password": "1234"})
    except ImportError as e:
        print(type(e).__name__, e)
    """
    r = run_without_extras(code, uri)
    scheme = uri.split("://")[0]
    assert r.stdout.strip() == (f"MissingExtraError the KMS URI {scheme}:// needs the Python package {module!r}, "
                                f"which is not installed: pip install 'heliosdb-flink-crypto[{extra}]'"), \
        r.stdout + r.stderr


def test_the_cli_names_the_extra_of_a_kms_uri():
    code = """
    from heliosdb_flink_crypto.cli import main
    sys.exit(main(["kms", "check", "aws-kms://alias/checkpoints?region=eu-west-1"]))
    """
    r = run_without_extras(code)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install 'heliosdb-flink-crypto[aws]'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_in_this_process_too_a_missing_sdk_or_prometheus_client_names_the_extra(monkeypatch):
    from heliosdb_flink_crypto import metrics
    from heliosdb_flink_crypto.errors import MissingExtraError
    from heliosdb_flink_crypto.kms import open_provider
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'heliosdb-flink-crypto\[aws\]'"):
        open_provider("aws-kms://alias/checkpoints?region=eu-west-1")
    metrics.shutdown()
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert not metrics.switched_on({}) and metrics.snapshot() == {}
    with pytest.raises(MissingExtraError, match=r"pip install 'heliosdb-flink-crypto\[metrics\]'"):
        metrics.from_config({"heliosdb.crypto.metrics.port": "9250"})
    with pytest.raises(MissingExtraError):
        metrics.Metrics  # noqa: B018 - the lazy attribute needs prometheus_client
    assert metrics.MetricsServer.__name__ == "MetricsServer"  # its import is deferred to the endpoint's start
    with pytest.raises(AttributeError):
        metrics.no_such_thing  # noqa: B018

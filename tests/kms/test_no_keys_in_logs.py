"""Key material never reaches logs, at any verbosity (issue 11 §3), for every provider against its
stand-in: every CLI command that touches keys runs with ``-v`` and then also with
``--insecure-sdk-wire-log``; no DEK (unwrapped through the library afterwards) and no KEK (from the
stand-in or keyring) appears raw, in hex, base64 or base64url in stdout, stderr, the audit log or
the metrics. SoftHSMv2's KEKs never leave the token (sensitive, non-extractable): DEKs only there."""
from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
from prometheus_client import generate_latest

from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.audit import AuditLog, FileSink
from heliosdb_flink_crypto.cli import main
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.kms import open_provider
from heliosdb_flink_crypto.metrics import Metrics
from heliosdb_flink_crypto.observe import BUS

pytestmark = pytest.mark.kms
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{43,44}={0,2}")
_HEX = re.compile(rb"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")


class Kms:
    def __init__(self, uri, settings=None, keks=lambda: []):
        self.uri, self.settings, self.keks = uri, dict(settings or {}), keks

    def d(self):
        return [x for k, v in self.settings.items() for x in ("-D", f"{k}={v}")]


def _local(request, tmp_path):
    uri = request.getfixturevalue("keyring_uri")
    path = uri[len("local://"):]
    return Kms(uri, keks=lambda: [base64.b64decode(v["key"]) for v in json.load(open(path))["versions"].values()
                                  if "key" in v])


def _aws(request, tmp_path):
    from moto.kms.models import kms_backends
    aws = request.getfixturevalue("aws")
    md = aws.client().create_key()["KeyMetadata"]
    backend = kms_backends[md["AWSAccountId"]][aws.region]
    return Kms("aws-kms://" + md["Arn"], aws.settings(), lambda: [backend.keys[md["KeyId"]].key_material])


def _azure(request, tmp_path):
    azure = request.getfixturevalue("azure")
    name = f"logs-{uuid.uuid4().hex[:6]}"
    azure.create_key(name, "oct-HSM")
    p = "heliosdb.crypto.kms.azure."
    settings = {**azure.settings(), p + "tenant-id": azure.tenant_id, p + "client-id": "app",
                p + "client-secret": "not-a-key", p + "authority-host": azure.vault_url,
                p + "disable-instance-discovery": "true"}
    return Kms(f"azure-kv://{azure.host}/keys/{name}", settings,
               lambda: [e["secret"] for v, e in azure.keys[name].items() if v != "order"])


def _gcp(request, tmp_path):
    gcp = request.getfixturevalue("gcp")
    name = gcp.create_key(key=f"logs-{uuid.uuid4().hex[:6]}")
    return Kms("gcp-kms://" + name, gcp.settings(),
               lambda: [v["material"] for v in gcp.keys[name]["versions"].values() if v["material"]])


def _pkcs11(request, tmp_path):
    token = request.getfixturevalue("hsm_token")
    uri = token.uri(f"logs-{uuid.uuid4().hex[:6]}")
    p = open_provider(uri, token.settings())
    p.create_key()
    p.close()
    return Kms(uri, token.settings())


@pytest.fixture(params=["local", "aws", "azure", "gcp", "pkcs11"])
def kms(request, tmp_path):
    return globals()["_" + request.param](request, tmp_path)


def encodings(key: bytes) -> list[bytes]:
    b64, b64u = base64.b64encode(key), base64.urlsafe_b64encode(key)
    return [key, key.hex().encode(), key.hex().upper().encode(), b64, b64.rstrip(b"="), b64u, b64u.rstrip(b"="),
            repr(key)[2:-1].encode()]


def key_like_tokens(blob: bytes) -> list[bytes]:
    """Anything in ``blob`` shaped like a 32-byte key in hex or base64 (DEKs of ``kms check``, which
    nothing can unwrap afterwards, are found this way)."""
    found = _HEX.findall(blob)
    for t in _B64.findall(blob):
        s = t.replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
        try:
            if len(base64.b64decode(s + b"=" * (-len(s) % 4), validate=True)) == 32:
                found.append(t)
        except ValueError:
            pass
    return found


def run_every_command(kms: Kms, tmp_path, flags: list[str], capsysbinary) -> tuple[bytes, list[bytes]]:
    """Every key-touching command once; returns (stdout + stderr, every version of every file written)."""
    tree = tmp_path / f"tree{len(flags)}"
    (tree / "chk-1").mkdir(parents=True)
    plain = tmp_path / "plain"
    plain.write_bytes(b"state " * 5000)
    trust, state = ["--kms", kms.uri, *kms.d()], ["--state-file", str(tmp_path / "rotation.json")]
    files = []

    def snapshot():
        files.extend(p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file())

    out = b""
    steps = [["kms", "check", kms.uri, "-n", "2", *kms.d()],
             ["encrypt", "--kms", kms.uri, *kms.d(), str(plain), str(tree / "chk-1" / "_metadata")],
             ["encrypt", "--kms", kms.uri, *kms.d(), str(plain), str(tree / "chk-1" / "state")],
             ["decrypt", *trust, str(tree / "chk-1" / "state"), str(tmp_path / "decrypted")],
             ["verify", *trust, str(tree)],
             ["keys", "rotate", kms.uri, *state, *kms.d()],
             ["keys", "status", kms.uri, *state, *kms.d()],
             ["rewrap", *trust, str(tree)],
             ["reencrypt", *trust, str(tree)],
             ["keys", "usage", *trust, str(tree)],
             ["keys", "min-version", kms.uri, "1", "--check", str(tree), *trust],
             ["keys", "destroy", kms.uri, "--check", str(tree), *trust]]
    for argv in steps:
        code = main([*flags, *argv])
        got = capsysbinary.readouterr()
        out += got.out + got.err
        assert code in (0, 1, 2), argv
        if argv[0] in ("encrypt", "rewrap", "reencrypt"):
            assert code == 0, (argv, got.err)
            snapshot()
    assert (tmp_path / "decrypted").read_bytes() == plain.read_bytes()
    return out, files


def test_no_key_material_in_output_audit_or_metrics(kms, tmp_path, capsysbinary):
    audit_path = tmp_path / "audit.log"
    audit = AuditLog([FileSink(str(audit_path))], bus=BUS)
    metrics = Metrics(bus=BUS)
    try:
        quiet, files = run_every_command(kms, tmp_path, ["-v"], capsysbinary)
        loud, more = run_every_command(kms, tmp_path, ["-v", "--insecure-sdk-wire-log"], capsysbinary)
    finally:
        audit.close()
        metrics.close()
    assert b"DEBUG heliosdb_flink_crypto" in quiet  # -v did log this package's debug messages
    assert b"DEBUG botocore" not in quiet and b"DEBUG urllib3" not in quiet
    if kms.uri.startswith("aws-kms"):
        assert b"DEBUG botocore" in loud  # the loud flag did turn the SDK's wire log on
    reader = CheckpointCrypto([kms.uri], settings=kms.settings)
    deks = {reader.data_key(parse(blob)) for blob in files + more}
    keks = kms.keks()
    assert len(deks) >= 4 and all(len(k) == 32 for k in deks)
    channels = {"stdout/stderr": quiet + loud, "audit log": audit_path.read_bytes(),
                "metrics": generate_latest(metrics.registry)}
    assert b'"op": "unwrap"' in channels["audit log"] or b'"op":"unwrap"' in channels["audit log"]
    for what, blob in channels.items():
        for key in deks | set(keks):
            for form in encodings(key):
                assert form not in blob, f"key material ({form[:8]!r}...) in {what}"
    assert key_like_tokens(quiet + loud) == []

"""``heliosdb-flink-crypto kms check`` against the stand-ins."""
from __future__ import annotations

import json
import uuid

import pytest

from heliosdb_flink_crypto.cli import main

pytestmark = pytest.mark.kms


def _d(settings):
    return [x for k, v in settings.items() for x in ("-D", f"{k}={v}")]


def test_check_ok_prints_latencies(gcp, capsys):
    key = gcp.create_key(key="cli-" + uuid.uuid4().hex[:6])
    assert main(["kms", "check", "gcp-kms://" + key, "-n", "2", *_d(gcp.settings())]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"gcp-kms://{key}: ok")
    assert f"{key}/cryptoKeyVersions/1" in out and "wrap" in out and " ms median" in out


def test_check_json(aws, capsys):
    arn = aws.client().create_key()["KeyMetadata"]["Arn"]
    assert main(["kms", "check", "--json", "aws-kms://" + arn, *_d(aws.settings())]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["ok"] and r["key_version"] == arn and r["round_trips"] == 3
    assert r["wrap_ms_median"] > 0 and r["unwrap_ms_median"] > 0 and r["generate_data_key_ms"] > 0
    assert "testing" not in json.dumps(r)  # no credentials echoed


def test_check_refused_exits_1(aws, capsys, fast_retry):
    arn = aws.client().create_key()["KeyMetadata"]["Arn"]
    aws.faults.fail("Encrypt", "AccessDeniedException", times=None)
    args = ["kms", "check", "--json", "aws-kms://" + arn, *_d({**fast_retry("aws"), **aws.settings()})]
    assert main(args) == 1
    captured = capsys.readouterr()
    r = json.loads(captured.out)
    assert not r["ok"] and r["error_type"] == "KmsAccessDeniedError"
    assert "FAILED" in captured.err and "AccessDenied" in captured.err
    assert main(args[:2] + args[3:]) == 1  # the plain-text form too


def test_check_down_exits_1_and_bad_args_exit_2(gcp, capsys, fast_retry):
    key = gcp.create_key(key="cli-" + uuid.uuid4().hex[:6])
    gcp.stop()
    assert main(["kms", "check", "gcp-kms://" + key, *_d({**fast_retry("gcp"), **gcp.settings()})]) == 1
    assert "FAILED" in capsys.readouterr().err
    gcp.start()
    assert main(["kms", "check", "nope://x"]) == 2
    assert main(["kms", "check", "gcp-kms://" + key, "-n", "0", *_d(gcp.settings())]) == 2
    assert main(["kms", "check", "gcp-kms://" + key, "-D", "novalue"]) == 2

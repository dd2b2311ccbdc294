"""aws-kms:// through boto3 against moto's KMS server (with protocol-level fault injection)."""
from __future__ import annotations

import os
import time

import pytest

from heliosdb_flink_crypto import (CheckpointCrypto, KmsAccessDeniedError, KmsInvalidCiphertextError,
                                   KmsUnavailableError, open_provider)
from heliosdb_flink_crypto.errors import ConfigError, KeyAccessError
from heliosdb_flink_crypto.kms.aws import AwsKmsProvider, parse_uri
from heliosdb_flink_crypto.observe import EventBus

pytestmark = pytest.mark.kms


@pytest.fixture
def key(aws):
    return aws.client().create_key(Description="checkpoints")["KeyMetadata"]["Arn"]


def provider(aws, uri, fast_retry=None, **extra):
    settings = dict(fast_retry("aws")) if fast_retry else {}
    settings.update(aws.settings(**extra))
    return open_provider(uri, settings)


def test_parse_uri_forms():
    assert parse_uri("aws-kms://alias/ckpt?region=eu-west-1") == ("alias/ckpt", {"region": "eu-west-1"})
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"
    assert parse_uri("aws-kms://" + arn) == (arn, {})
    with pytest.raises(ValueError, match="names no key"):
        parse_uri("aws-kms://?region=x")
    with pytest.raises(ValueError, match="unknown parameter"):
        parse_uri("aws-kms://alias/x?colour=red")
    with pytest.raises(ValueError, match="not an AWS"):
        parse_uri("gcp-kms://x")


def test_region_from_arn_and_query(aws):
    arn = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd"
    p = AwsKmsProvider("aws-kms://" + arn, {k: v for k, v in aws.settings().items() if not k.endswith(".region")})
    assert p.region == "eu-central-1"
    q = AwsKmsProvider("aws-kms://alias/x?region=ap-south-1", aws.settings())
    assert q.region == "ap-south-1"


def test_connect_wrap_unwrap_roundtrip(aws, key, ctx):
    p = provider(aws, "aws-kms://" + key)
    p.test_connection()
    assert p.current_key_version() == key
    dek = os.urandom(32)
    wrapped, version = p.wrap(dek, ctx)
    assert version == key and dek not in wrapped
    assert p.unwrap(wrapped, version, ctx) == dek
    plain, blob, v2 = p.generate_data_key(ctx)
    assert len(plain) == 32 and v2 == key
    assert p.unwrap(blob, v2, ctx) == plain
    assert "testing" not in repr(p)


def test_wrong_context_and_tampered_blob_are_invalid_ciphertext(aws, key, ctx):
    p = provider(aws, "aws-kms://" + key)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    other = dict(ctx, **{"heliosdb:tenant": "tenant-b"})
    with pytest.raises(KmsInvalidCiphertextError) as e:
        p.unwrap(wrapped, v, other)
    assert e.value.provider == "aws-kms" and e.value.operation == "unwrap" and key in str(e.value)
    with pytest.raises(KmsInvalidCiphertextError):
        p.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), v, ctx)


def test_wrong_key_is_refused(aws, key, ctx):
    other = aws.client().create_key()["KeyMetadata"]["Arn"]
    wrapped, v = provider(aws, "aws-kms://" + key).wrap(os.urandom(32), ctx)
    p2 = provider(aws, "aws-kms://" + other)
    with pytest.raises(KmsAccessDeniedError, match="does not belong"):
        p2.unwrap(wrapped, v, ctx)  # a header naming a foreign key is not followed


def test_alias_rotation_old_files_still_open(aws, key, tmp_path):
    kms = aws.client()
    name = f"alias/rot-{time.time_ns()}"
    kms.create_alias(AliasName=name, TargetKeyId=key)
    uri = "aws-kms://" + name
    cc = CheckpointCrypto([uri], settings=aws.settings(version_cache="0 s"))
    old = cc.encrypt_bytes(b"before rotation")
    assert cc.provider(uri).current_key_version() == key
    new_key = kms.create_key()["KeyMetadata"]["Arn"]
    kms.update_alias(AliasName=name, TargetKeyId=new_key)
    cc.cache.invalidate()
    assert cc.provider(uri).current_key_version() == new_key
    new = cc.encrypt_bytes(b"after rotation")
    fresh = CheckpointCrypto([uri], settings=aws.settings(version_cache="0 s"))
    assert fresh.decrypt_bytes(old) == b"before rotation"
    assert fresh.decrypt_bytes(new) == b"after rotation"
    # KMS's own on-demand rotation keeps the ARN: nothing changes for us
    kms.rotate_key_on_demand(KeyId=new_key)
    assert fresh.decrypt_bytes(new) == b"after rotation"


def test_disabled_and_pending_deletion_keys_are_refused(aws, key, ctx, fast_retry):
    kms, key_id = aws.client(), key.rsplit("/", 1)[-1]
    p = provider(aws, "aws-kms://" + key, fast_retry)
    wrapped, v = p.wrap(os.urandom(32), ctx)
    kms.disable_key(KeyId=key_id)
    with pytest.raises(KmsAccessDeniedError, match="Disabled"):
        p.test_connection()
    for call in (lambda: p.wrap(os.urandom(32), ctx), lambda: p.generate_data_key(ctx),
                 lambda: p.unwrap(wrapped, v, ctx)):
        with pytest.raises(KmsAccessDeniedError, match="DisabledException"):
            call()
    kms.enable_key(KeyId=key_id)
    assert len(p.unwrap(wrapped, v, ctx)) == 32
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(KmsAccessDeniedError, match="KMSInvalidStateException"):
        p.unwrap(wrapped, v, ctx)
    with pytest.raises(KmsAccessDeniedError, match="PendingDeletion"):
        p.test_connection()


@pytest.mark.parametrize("code,err", [("DisabledException", KmsAccessDeniedError),
                                      ("AccessDeniedException", KmsAccessDeniedError),
                                      ("NotFoundException", KmsAccessDeniedError),
                                      ("KMSInvalidStateException", KmsAccessDeniedError),
                                      ("IncorrectKeyException", KmsInvalidCiphertextError)])
def test_refusals_are_not_retried(aws, key, ctx, fast_retry, code, err):
    p = provider(aws, "aws-kms://" + key, fast_retry)
    aws.faults.fail("Encrypt", code, times=None)
    with pytest.raises(err) as e:
        p.wrap(os.urandom(32), ctx)
    assert code in e.value.reason and e.value.operation == "wrap"
    assert aws.faults.calls["Encrypt"] == 1


def test_missing_key(aws, ctx, fast_retry):
    p = provider(aws, "aws-kms://alias/does-not-exist", fast_retry)
    with pytest.raises(KmsAccessDeniedError, match="NotFound"):
        p.wrap(os.urandom(32), ctx)


@pytest.mark.parametrize("code", ["ThrottlingException", "KMSInternalException", "ServiceUnavailable"])
def test_transient_errors_are_retried(aws, key, ctx, fast_retry, code):
    p = provider(aws, "aws-kms://" + key, fast_retry)
    aws.faults.fail("GenerateDataKey", code, times=2)
    plain, blob, _ = p.generate_data_key(ctx)
    assert aws.faults.calls["GenerateDataKey"] == 3 and len(plain) == 32
    aws.faults.fail("GenerateDataKey", code, times=None)
    with pytest.raises(KmsUnavailableError, match=code):
        p.generate_data_key(ctx)


def test_timeout_is_unavailable(aws, key, ctx, fast_retry):
    p = provider(aws, "aws-kms://" + key, fast_retry, timeout="300 ms", max_attempts="2")
    aws.faults.delay(1.0, "Decrypt")
    wrapped, v = p.wrap(os.urandom(32), ctx)
    t = time.monotonic()
    with pytest.raises(KmsUnavailableError, match="Timeout"):
        p.unwrap(wrapped, v, ctx)
    assert time.monotonic() - t < 2.0


def test_server_down_is_unavailable(aws, key, ctx, fast_retry):
    p = provider(aws, "aws-kms://" + key, fast_retry)
    aws.stop()
    with pytest.raises(KmsUnavailableError) as e:
        p.wrap(os.urandom(32), ctx)
    assert e.value.retryable
    aws.start()
    assert p.wrap(os.urandom(32), ctx)[1] == key


def test_bad_settings_name_the_key(aws):
    with pytest.raises(ConfigError, match="aws.timeout"):
        provider(aws, "aws-kms://alias/x", timeout="soon")
    with pytest.raises(ConfigError, match="secret-access-key"):
        AwsKmsProvider("aws-kms://alias/x", {"heliosdb.crypto.kms.aws.access-key-id": "AKIA",
                                            "heliosdb.crypto.kms.aws.region": "us-east-1"})
    with pytest.raises(ConfigError, match="aws.profile"):
        AwsKmsProvider("aws-kms://alias/x?region=us-east-1&profile=nope-not-here", {})
    with pytest.raises(ConfigError, match="version-cache"):
        provider(aws, "aws-kms://alias/x", version_cache="never")


def test_no_credentials_is_denied(aws, ctx, fast_retry, monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s = {"heliosdb.crypto.kms.aws.endpoint": aws.endpoint, **fast_retry("aws")}
    p = AwsKmsProvider("aws-kms://alias/x?region=us-east-1", s)
    with pytest.raises(KmsAccessDeniedError, match="credentials"):
        p.wrap(os.urandom(32), ctx)


def test_endpoint_from_boto3_environment(aws, key, ctx, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws.endpoint)
    s = {k: v for k, v in aws.settings().items() if not k.endswith(".endpoint")}
    p = AwsKmsProvider("aws-kms://" + key, s)
    assert p.unwrap(*p.wrap(b"k" * 32, ctx), ctx) == b"k" * 32


def test_assume_role(aws, key, ctx):
    iam_role = "arn:aws:iam::123456789012:role/checkpoint-writer"
    p = provider(aws, "aws-kms://" + key, role_arn=iam_role, role_session_name="tester")
    wrapped, v = p.wrap(b"r" * 32, ctx)
    assert p.unwrap(wrapped, v, ctx) == b"r" * 32
    assert aws.faults.calls["/"] >= 1  # STS AssumeRole went through the same endpoint


def test_kms_calls_reach_the_event_bus(aws, key):
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    cc = CheckpointCrypto(["aws-kms://" + key], settings=aws.settings(), bus=bus)
    blob = cc.encrypt_bytes(b"x" * 1000)
    CheckpointCrypto(["aws-kms://" + key], settings=aws.settings(), bus=bus).decrypt_bytes(blob)
    calls = [e for e in events if e["op"] == "kms_call"]
    assert [c["kms_op"] for c in calls] == ["dek_generate", "unwrap"]
    assert all(c["outcome"] == "ok" and c["seconds"] > 0 and c["kms_uri"].startswith("aws-kms://") for c in calls)
    aws.faults.fail("Decrypt", "AccessDeniedException", times=None)
    del events[:]
    with pytest.raises(KeyAccessError, match="AccessDenied"):
        CheckpointCrypto(["aws-kms://" + key], settings=aws.settings(), bus=bus).decrypt_bytes(blob)
    failed = [e for e in events if e["op"] == "kms_call"]
    assert [(e["kms_op"], e["outcome"]) for e in failed] == [("unwrap", "error")]
    unwrap = [e for e in events if e["op"] == "unwrap"][0]
    assert unwrap["outcome"] == "error" and "AccessDeniedException" in unwrap["error"]


def test_no_region_names_the_setting(monkeypatch, tmp_path):
    for k in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="aws.region"):
        AwsKmsProvider("aws-kms://alias/x", {})


def test_other_errors_are_not_retried_and_cache_is_used(aws, key, ctx, fast_retry):
    from heliosdb_flink_crypto.errors import KmsError
    p = provider(aws, "aws-kms://" + key, fast_retry)
    aws.faults.fail("Encrypt", "ValidationException", times=None)
    with pytest.raises(KmsError, match="ValidationException") as e:
        p.wrap(os.urandom(32), ctx)
    assert type(e.value) is KmsError and aws.faults.calls["Encrypt"] == 1
    bad_role = provider(aws, "aws-kms://" + key, fast_retry, role_arn="arn:aws:iam::123456789012:role/r",
                        role_session_name="x")  # too short: botocore refuses the AssumeRole call itself
    with pytest.raises(KmsError, match="ParamValidationError"):
        bad_role.wrap(os.urandom(32), ctx)
    plain, blob, v = p.generate_data_key(ctx)
    assert p.unwrap(blob, "", ctx) == plain  # a slot without version: the URI's key
    assert p.current_key_version() == p.current_key_version() == key
    assert aws.faults.calls["DescribeKey"] == 1  # the second came from the version cache

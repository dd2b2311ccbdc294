"""KMS call latency and errors per provider reach the Prometheus metrics through the event bus."""
from __future__ import annotations

import uuid

import pytest

from heliosdb_flink_crypto import CheckpointCrypto
from heliosdb_flink_crypto.errors import KeyAccessError
from heliosdb_flink_crypto.kms.azure import AzureKeyVaultProvider
from heliosdb_flink_crypto.observe import EventBus
from heliosdb_flink_crypto.testing.azure import StaticTokenCredential

pytestmark = pytest.mark.kms


def test_kms_calls_per_provider_in_metrics(aws, azure, gcp, hsm_token):
    import prometheus_client

    from heliosdb_flink_crypto.metrics import Metrics

    bus = EventBus()
    metrics = Metrics(bus=bus, registry=prometheus_client.CollectorRegistry())
    az_name = "m-" + uuid.uuid4().hex[:6]
    azure.create_key(az_name)
    az_uri = f"azure-kv://{azure.host}/keys/{az_name}"
    uris = {"aws-kms": "aws-kms://" + aws.client().create_key()["KeyMetadata"]["Arn"],
            "azure-kv": az_uri,
            "gcp-kms": "gcp-kms://" + gcp.create_key(key="m-" + uuid.uuid4().hex[:6]),
            "pkcs11": hsm_token.uri("m-" + uuid.uuid4().hex[:6])}
    settings = {**aws.settings(), **azure.settings(), **gcp.settings(), **hsm_token.settings()}

    def crypto():
        az = AzureKeyVaultProvider(az_uri, settings, credential=StaticTokenCredential())
        return CheckpointCrypto(list(uris.values()), settings=settings, bus=bus, providers={az_uri: az})
    crypto().provider(uris["pkcs11"]).create_key()
    blob = crypto().encrypt_bytes(b"metrics")
    assert crypto().decrypt_bytes(blob) == b"metrics"
    aws.faults.fail("Decrypt", "AccessDeniedException", times=None)
    gcp.faults.fail("Decrypt", "PERMISSION_DENIED", times=None)
    azure.faults.fail("unwrapkey", "Forbidden", status=403, times=None)
    clouds = [u for k, u in uris.items() if k != "pkcs11"]  # a reader that does not trust the HSM slot
    reader = CheckpointCrypto(clouds, settings=settings, bus=bus, providers={az_uri: AzureKeyVaultProvider(
        az_uri, settings, credential=StaticTokenCredential())})
    with pytest.raises(KeyAccessError):  # every cloud KMS refuses: all three errors counted
        reader.decrypt_bytes(blob)

    get = metrics.registry.get_sample_value
    assert get("heliosdb_kms_calls_total", {"provider": "aws-kms", "op": "dek_generate", "outcome": "ok"}) == 1
    for p in ("azure-kv", "gcp-kms", "pkcs11"):
        assert get("heliosdb_kms_calls_total", {"provider": p, "op": "wrap", "outcome": "ok"}) == 1
    assert get("heliosdb_kms_calls_total", {"provider": "aws-kms", "op": "unwrap", "outcome": "ok"}) == 1
    for p in ("aws-kms", "azure-kv", "gcp-kms"):  # the first readable slot (AWS) served the good read
        assert get("heliosdb_kms_calls_total", {"provider": p, "op": "unwrap", "outcome": "error"}) == 1
        assert get("heliosdb_kms_call_duration_seconds_count", {"provider": p, "op": "unwrap"}) == \
            (2 if p == "aws-kms" else 1)
    assert get("heliosdb_kms_call_duration_seconds_sum", {"provider": "gcp-kms", "op": "wrap"}) > 0
    metrics.close()

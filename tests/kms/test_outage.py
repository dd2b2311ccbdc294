"""Behaviour through KMS outages: cached DEKs keep writes going for the grace window, then writes fail
closed and recover when the KMS returns; with two KMSs either one can decrypt."""
from __future__ import annotations

import uuid

import pytest

from heliosdb_flink_crypto import CachePolicy, CheckpointCrypto, DekCache, KmsUnavailableError
from heliosdb_flink_crypto.errors import KeyAccessError
from heliosdb_flink_crypto.format import parse
from heliosdb_flink_crypto.kms.azure import AzureKeyVaultProvider
from heliosdb_flink_crypto.observe import EventBus
from heliosdb_flink_crypto.testing.azure import StaticTokenCredential

pytestmark = pytest.mark.kms


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_outage_grace_then_fail_closed_then_recover(aws, fast_retry):
    arn = aws.client().create_key()["KeyMetadata"]["Arn"]
    uri = "aws-kms://" + arn
    settings = {**fast_retry("aws", timeout="300 ms", attempts="2"), **aws.settings()}
    clock = Clock()
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    cc = CheckpointCrypto([uri], settings=settings, bus=bus,
                          cache=DekCache(CachePolicy(max_age=60, outage_grace=120), clock=clock))
    files = [cc.encrypt_bytes(b"before outage")]
    aws.stop()
    clock.now += 30  # DEK still fresh: no KMS call at all
    files.append(cc.encrypt_bytes(b"fresh dek"))
    clock.now += 60  # past max age, KMS down: the cached DEK keeps sealing (grace)
    files.append(cc.encrypt_bytes(b"in grace"))
    assert cc.cache.stats()["grace_uses"] == 1
    assert any(e["op"] == "kms_call" and e["outcome"] == "error" for e in events)
    clock.now += 100  # past max age + grace: fail closed
    with pytest.raises(KmsUnavailableError):
        cc.encrypt_bytes(b"must not be written")
    aws.start()  # the KMS is back: writes resume with a new DEK
    files.append(cc.encrypt_bytes(b"after outage"))
    dek_ids = {parse(f).dek_id for f in files}
    assert len(dek_ids) == 2
    fresh = CheckpointCrypto([uri], settings=settings)
    assert [fresh.decrypt_bytes(f) for f in files] == [b"before outage", b"fresh dek", b"in grace", b"after outage"]


@pytest.fixture
def two_kms(gcp, azure, fast_retry):
    gkey = gcp.create_key(key="multi-" + uuid.uuid4().hex[:6])
    aname = "multi-" + uuid.uuid4().hex[:6]
    azure.create_key(aname, "RSA")
    g_uri, a_uri = "gcp-kms://" + gkey, f"azure-kv://{azure.host}/keys/{aname}"
    settings = {**fast_retry("gcp", timeout="500 ms", attempts="2"), **gcp.settings(),
                **fast_retry("azure", timeout="500 ms", attempts="2"), **azure.settings()}

    def fresh():
        """A new process: empty cache, new clients."""
        az = AzureKeyVaultProvider(a_uri, settings, credential=StaticTokenCredential())
        return CheckpointCrypto([g_uri, a_uri], settings=settings, providers={a_uri: az})
    return g_uri, a_uri, fresh


def test_multi_kms_either_one_decrypts(gcp, azure, two_kms):
    g_uri, a_uri, fresh = two_kms
    blob = fresh().encrypt_bytes(b"wrapped twice")
    assert [s.kms_uri for s in parse(blob).slots] == [g_uri, a_uri]
    gcp.stop()
    assert fresh().decrypt_bytes(blob) == b"wrapped twice"  # through Azure
    gcp.start()
    azure.stop()
    assert fresh().decrypt_bytes(blob) == b"wrapped twice"  # through GCP
    gcp.stop()
    with pytest.raises(KeyAccessError) as e:
        fresh().decrypt_bytes(blob)
    assert g_uri in str(e.value) or "gcp-kms" in str(e.value)
    assert "azure-kv" in str(e.value)
    gcp.start()
    azure.start()
    assert fresh().decrypt_bytes(blob) == b"wrapped twice"


def test_multi_kms_writes_while_any_kms_answers(gcp, azure, two_kms):
    """Disaster recovery: a new DEK is wrapped by every KMS that answers. With one down, files carry
    the other's slot only (and stay readable through it); with both down the write fails closed naming
    both; one back is enough to resume; a DEK missing a slot is replaced once every KMS answers again."""
    g_uri, a_uri, fresh = two_kms
    azure.stop()
    c = fresh()
    blob = c.encrypt_bytes(b"x")
    assert [s.kms_uri for s in parse(blob).slots] == [g_uri]
    gcp.stop()
    with pytest.raises(KmsUnavailableError) as e:
        fresh().encrypt_bytes(b"z")
    assert "gcp-kms" in str(e.value) and "azure-kv" in str(e.value)
    azure.start()  # one back: writes resume, wrapped by Azure alone
    only_azure = fresh().encrypt_bytes(b"w")
    assert [s.kms_uri for s in parse(only_azure).slots] == [a_uri]
    gcp.start()
    assert fresh().decrypt_bytes(blob) == b"x" and fresh().decrypt_bytes(only_azure) == b"w"
    assert [s.kms_uri for s in parse(fresh().encrypt_bytes(b"v")).slots] == [g_uri, a_uri]
    # a long-lived writer replaces its incomplete DEK (incomplete_max_age) instead of keeping it max_age
    now = [0.0]
    c.cache._clock = lambda: now[0]
    c.cache._current.clear()
    azure.stop()
    first = parse(c.encrypt_bytes(b"a"))
    azure.start()
    now[0] = c.cache.policy.incomplete_max_age + 1
    second = parse(c.encrypt_bytes(b"b"))
    assert len(first.slots) == 1 and len(second.slots) == 2 and first.dek_id != second.dek_id

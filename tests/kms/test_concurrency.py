"""One provider shared by many threads (Flink's task threads): every wrap/unwrap stays correct."""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from heliosdb_flink_crypto import open_provider
from heliosdb_flink_crypto.engine import kms_context
from heliosdb_flink_crypto.kms.azure import AzureKeyVaultProvider
from heliosdb_flink_crypto.testing.azure import StaticTokenCredential

pytestmark = pytest.mark.kms


@pytest.fixture(params=["aws", "azure", "gcp", "pkcs11"])
def shared_provider(request):
    kind = request.param
    if kind == "aws":
        aws = request.getfixturevalue("aws")
        return open_provider("aws-kms://" + aws.client().create_key()["KeyMetadata"]["Arn"], aws.settings())
    if kind == "azure":
        azure = request.getfixturevalue("azure")
        name = "cc-" + uuid.uuid4().hex[:6]
        azure.create_key(name, "oct-HSM")
        return AzureKeyVaultProvider(f"azure-kv://{azure.host}/keys/{name}", azure.settings(),
                                     credential=StaticTokenCredential())
    if kind == "gcp":
        gcp = request.getfixturevalue("gcp")
        return open_provider("gcp-kms://" + gcp.create_key(key="cc-" + uuid.uuid4().hex[:6]), gcp.settings())
    token = request.getfixturevalue("hsm_token")
    p = open_provider(token.uri("cc-" + uuid.uuid4().hex[:6]), token.settings())
    p.create_key()
    return p


def test_threads_share_one_provider(shared_provider):
    p = shared_provider

    def work(i):
        ctx = kms_context(os.urandom(16), f"tenant-{i % 3}")
        out = []
        for _ in range(5):
            dek = os.urandom(32)
            wrapped, v = p.wrap(dek, ctx)
            out.append(p.unwrap(wrapped, v, ctx) == dek)
        return all(out)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(16)))
    p.close()

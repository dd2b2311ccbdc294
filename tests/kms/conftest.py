"""Stand-ins for the KMS tests: started once per session on 127.0.0.1, faults cleared per test."""
from __future__ import annotations

import pytest

from heliosdb_flink_crypto.engine import kms_context


@pytest.fixture(scope="session")
def moto_kms():
    from heliosdb_flink_crypto.testing.aws import MotoKms
    with MotoKms() as kms:
        yield kms


@pytest.fixture
def aws(moto_kms):
    moto_kms.start()
    moto_kms.faults.clear()
    yield moto_kms
    moto_kms.faults.clear()
    moto_kms.start()


@pytest.fixture
def ctx():
    return kms_context(b"\x01" * 16, "tenant-a")


@pytest.fixture
def fast_retry():
    """Retry settings that keep failing tests quick (short timeout, tiny backoff)."""
    def make(provider: str, timeout: str = "1 s", attempts: str = "3") -> dict[str, str]:
        p = f"heliosdb.crypto.kms.{provider}."
        return {p + "timeout": timeout, p + "max-attempts": attempts, p + "backoff": "10 ms",
                p + "max-backoff": "50 ms"}
    return make


@pytest.fixture(scope="session")
def gcp_server():
    from heliosdb_flink_crypto.testing.gcp import GcpKmsStandIn
    with GcpKmsStandIn() as s:
        yield s


@pytest.fixture
def gcp(gcp_server):
    gcp_server.start()
    gcp_server.faults.clear()
    yield gcp_server
    gcp_server.faults.clear()
    gcp_server.start()


@pytest.fixture(scope="session")
def azure_server():
    from heliosdb_flink_crypto.testing.azure import AzureKeyVaultStandIn
    with AzureKeyVaultStandIn() as s:
        yield s


@pytest.fixture
def azure(azure_server):
    azure_server.start()
    azure_server.faults.clear()
    azure_server.tokens = None
    yield azure_server
    azure_server.faults.clear()
    azure_server.tokens = None
    azure_server.start()


@pytest.fixture(scope="session")
def softhsm():
    from heliosdb_flink_crypto.testing.softhsm import SoftHsm
    with SoftHsm() as hsm:
        yield hsm


@pytest.fixture(scope="session")
def hsm_token(softhsm):
    return softhsm.create_token("ckpt")

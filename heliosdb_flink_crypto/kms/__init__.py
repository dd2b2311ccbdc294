"""Key providers by URI scheme. Cloud SDKs are optional extras, imported only when a URI of their
scheme is opened; a missing one is a MissingExtraError naming the extra."""
from __future__ import annotations

import importlib
from typing import Mapping
from urllib.parse import urlsplit

from ..errors import MissingExtraError
from .base import KeyProvider

# scheme -> (module, class, pip extra that brings its SDK)
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "local": ("heliosdb_flink_crypto.kms.local", "LocalKeyring", None),
    "aws-kms": ("heliosdb_flink_crypto.kms.aws", "AwsKmsProvider", "aws"),
    "azure-kv": ("heliosdb_flink_crypto.kms.azure", "AzureKeyVaultProvider", "azure"),
    "gcp-kms": ("heliosdb_flink_crypto.kms.gcp", "GcpKmsProvider", "gcp"),
    "pkcs11": ("heliosdb_flink_crypto.kms.pkcs11", "Pkcs11Provider", "pkcs11"),
}

#: the SDK modules each extra brings (checked when a provider of that scheme is opened)
SDKS: dict[str, tuple[str, ...]] = {
    "aws-kms": ("boto3", "botocore"),
    "azure-kv": ("azure.keyvault.keys", "azure.identity"),
    "gcp-kms": ("google.cloud.kms_v1",),
    "pkcs11": ("pkcs11",),
}


def open_provider(uri: str, settings: Mapping[str, str] | None = None) -> KeyProvider:
    """A provider for ``uri``; ``settings`` are the ``heliosdb.crypto.kms.*`` options."""
    scheme = urlsplit(uri).scheme
    if scheme not in PROVIDERS:
        raise ValueError(f"unknown KMS URI scheme {scheme!r} in {uri!r}; known: {', '.join(PROVIDERS)}")
    module, cls, extra = PROVIDERS[scheme]
    for sdk in SDKS.get(scheme, ()):
        try:
            importlib.import_module(sdk)
        except ImportError:
            raise MissingExtraError(f"the KMS URI {scheme}://", sdk, extra) from None
    return getattr(importlib.import_module(module), cls)(uri, settings or {})


__all__ = ["KeyProvider", "PROVIDERS", "SDKS", "open_provider"]

"""Key providers by URI scheme. Cloud SDKs are optional extras, imported only when used."""
from __future__ import annotations

import importlib
from typing import Mapping
from urllib.parse import urlsplit

from .base import KeyProvider

# scheme -> (module, class, pip extra that brings its SDK)
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "local": ("heliosdb_flink_crypto.kms.local", "LocalKeyring", None),
    "aws-kms": ("heliosdb_flink_crypto.kms.aws", "AwsKmsProvider", "aws"),
    "azure-kv": ("heliosdb_flink_crypto.kms.azure", "AzureKeyVaultProvider", "azure"),
    "gcp-kms": ("heliosdb_flink_crypto.kms.gcp", "GcpKmsProvider", "gcp"),
    "pkcs11": ("heliosdb_flink_crypto.kms.pkcs11", "Pkcs11Provider", "pkcs11"),
}


def open_provider(uri: str, settings: Mapping[str, str] | None = None) -> KeyProvider:
    """A provider for ``uri``; ``settings`` are the ``heliosdb.crypto.kms.*`` options."""
    scheme = urlsplit(uri).scheme
    if scheme not in PROVIDERS:
        raise ValueError(f"unknown KMS URI scheme {scheme!r} in {uri!r}; known: {', '.join(PROVIDERS)}")
    module, cls, extra = PROVIDERS[scheme]
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        hint = f"pip install 'heliosdb-flink-crypto[{extra}]'" if extra else "reinstall the package"
        raise ImportError(f"{scheme}:// needs an optional dependency ({e.name}): {hint}") from e
    return getattr(mod, cls)(uri, settings or {})


__all__ = ["KeyProvider", "PROVIDERS", "open_provider"]

"""The key provider interface: wrap and unwrap data keys under a key-encryption key (KEK) in a KMS.

A provider is addressed by a URI (``local:///path``, ``aws-kms://...``, ``azure-kv://...``,
``gcp-kms://...``, ``pkcs11://...``). Four calls, each raising only the package's KmsError tree:

* ``wrap(dek, context) -> (wrapped, key_version)``: wrap a 32-byte DEK under the current KEK version,
  binding ``context`` (string map) as encryption context / AAD.
* ``unwrap(wrapped, key_version, context) -> dek``: the same context must be given back.
* ``current_key_version() -> str``
* ``test_connection()``: one cheap authenticated call; raises if the key cannot be used.

``generate_data_key`` has a default (random DEK + wrap); providers whose service generates keys
(AWS GenerateDataKey) override it.
"""
from __future__ import annotations

import abc
import os
from typing import Mapping

Context = Mapping[str, str]


class KeyProvider(abc.ABC):
    scheme: str = ""

    def __init__(self, uri: str):
        self.uri = uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    @classmethod
    @abc.abstractmethod
    def key_identity(cls, uri: str, settings: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """The key ``uri`` (of this provider's scheme) names, apart from how a client reaches it
        (kms.identity.key_identity)."""

    @property
    def identity(self) -> tuple[str, ...]:
        """The key this provider uses: what cache entries are keyed by."""
        return self.key_identity(self.uri)

    @abc.abstractmethod
    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        """Wrap ``dek``; returns (wrapped bytes, KEK version used)."""

    @abc.abstractmethod
    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        """Unwrap a DEK wrapped under ``key_version`` with the same ``context``."""

    @abc.abstractmethod
    def current_key_version(self) -> str:
        """The KEK version new wraps use."""

    @abc.abstractmethod
    def test_connection(self) -> None:
        """Raise a KmsError if the key cannot be reached or used."""

    def generate_data_key(self, context: Context) -> tuple[bytes, bytes, str]:
        """A new 32-byte DEK: (plaintext, wrapped, key version)."""
        dek = os.urandom(32)
        wrapped, version = self.wrap(dek, context)
        return dek, wrapped, version

    def close(self) -> None:
        """Release clients and sessions."""

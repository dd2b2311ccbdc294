"""Canonical key identities: which KEK a KMS URI names, apart from how a client reaches it.

A file's header names the KMS of each key slot by URI, but headers are read before anything
authenticates, so a header never decides which provider is opened nor how (rule: trust comes from
configuration). :func:`key_identity` reduces a URI to the key it names:

==============  =====================================================================
``local``       the keyring file's absolute path
``aws-kms``     region + key id, alias or ARN (region: ``?region=``, else the setting
                ``heliosdb.crypto.kms.aws.region``, else the ARN's)
``azure-kv``    vault host (lower case) + key name (a pinned version is not part of it)
``gcp-kms``     the CryptoKey resource name
``pkcs11``      token label + key label
==============  =====================================================================

Query parameters that configure a client (``module``, ``profile``, endpoints, credentials) are not
part of an identity. A header slot is used only when its identity equals that of a configured
(trusted) URI, and then only through the provider opened from the configured URI.
:func:`stored_uri` is what new headers record: the configured URI without such parameters.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..text import shown
from .aws import AwsKmsProvider, aws_identity
from .azure import AzureKeyVaultProvider
from .gcp import GcpKmsProvider
from .local import LocalKeyring
from .pkcs11 import Pkcs11Provider

Identity = tuple[str, ...]

# query parameters that only configure the client; never stored in a header, never an identity
CLIENT_PARAMS = {"aws-kms": {"profile"}, "pkcs11": {"module"}}


_PROVIDERS = {p.scheme: p for p in (LocalKeyring, AwsKmsProvider, AzureKeyVaultProvider, GcpKmsProvider,
                                      Pkcs11Provider)}


def key_identity(uri: str, settings: Mapping[str, str] | None = None) -> Identity:
    """The key ``uri`` names (each provider's ``key_identity``); ValueError if it is not a KMS URI
    of a known provider."""
    scheme = urlsplit(uri).scheme
    provider = _PROVIDERS.get(scheme)
    if provider is None:
        raise ValueError(f"unknown KMS URI scheme {scheme!r} in {shown(uri)}")
    return provider.key_identity(uri, settings)


def stored_uri(uri: str) -> str:
    """``uri`` as a header records it: without the query parameters that configure a client."""
    scheme = urlsplit(uri).scheme
    drop = CLIENT_PARAMS.get(scheme)
    base, sep, query = uri.partition("?")
    if not drop or not sep:
        return uri
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in drop]
    return base + ("?" + urlencode(kept) if kept else "")


def untrusted_message(uris, any_trusted: bool) -> str:
    """Why a header's key slots cannot be used, and how to trust a KMS (no key material)."""
    what = ("its key slots name only KMS URIs that are not trusted here: " if any_trusted
            else "no KMS is trusted for decryption; its key slots name: ")
    return (what + ", ".join(uris) + ". Trust a KMS from configuration, never from a file: --kms URI "
            "or HELIOSDB_CRYPTO_KMS (CLI), heliosdb.crypto.kms.uri / heliosdb.crypto.kms.decrypt-uris "
            "(a config file or Flink's configuration)")


class TrustedSet:
    """The configured KMS URIs by key identity (the first URI wins for an identity)."""

    #: header URIs whose identity is remembered, the least recently asked for forgotten first (a
    #: deployment's headers name a handful; a hostile folder naming more cannot grow the memo)
    MEMO = 64

    def __init__(self, uris, settings: Mapping[str, str] | None = None):
        self.settings = dict(settings or {})
        self.by_identity: dict[Identity, str] = {}
        # every file's open asks for its slots' identities; working one out (a local keyring:
        # normalising a path) took some 20 us of a cold open
        self.identity = lru_cache(maxsize=self.MEMO)(self._identity)
        for uri in uris:
            self.by_identity.setdefault(key_identity(uri, self.settings), uri)

    def __bool__(self) -> bool:
        return bool(self.by_identity)

    def uri_for(self, slot_uri: str) -> str | None:
        """The configured URI whose key ``slot_uri`` (from a header) names, else None."""
        ident = self.identity(slot_uri)
        return None if ident is None else self.by_identity.get(ident)

    def _identity(self, slot_uri: str) -> Identity | None:
        """``slot_uri``'s key identity, None if it is no KMS URI (``identity``: the same, remembered)."""
        try:
            return key_identity(slot_uri, self.settings)
        except ValueError:
            return None


__all__ = ["CLIENT_PARAMS", "Identity", "TrustedSet", "aws_identity", "key_identity", "stored_uri",
           "untrusted_message"]

"""``azure-kv://VAULT-HOST/keys/NAME[/VERSION]``: Azure Key Vault or Managed HSM (azure-keyvault-keys).

Examples: ``azure-kv://myvault.vault.azure.net/keys/checkpoints``,
``azure-kv://myhsm.managedhsm.azure.net/keys/checkpoints``. Without a version new DEKs are wrapped by
the key's latest version; with one, always by that version.

Algorithms: RSA-OAEP-256 for RSA / RSA-HSM keys, A256KW for oct-HSM keys (Managed HSM). Both the
wrap and the unwrap are done by the vault: the SDK would wrap RSA locally with the public key
(harmless) but wraps oct keys with a *random local key* when the vault withholds the key bytes
(azure-keyvault-keys 4.11), which would lose the DEK; so this provider keeps the SDK's client in
remote-only mode.

Context binding: Key Vault's wrapKey takes no AAD, so the provider wraps ``DEK || SHA-256(label ||
canonical context)`` (64 bytes) and on unwrap checks the digest in constant time; a wrapped key
copied into another file's header (other DEK id or tenant) is refused with
:class:`KmsInvalidCiphertextError`. The key version is the full versioned key id (``kid``), so old
files unwrap through the version that wrapped them after a rotation (:meth:`rotate`).

Settings (``heliosdb.crypto.kms.azure.<name>``): ``tenant-id`` + ``client-id`` + ``client-secret``
(a service principal), or ``managed-identity-client-id`` (a user-assigned managed identity; the
value ``system`` means the system-assigned one); otherwise ``DefaultAzureCredential``.
``authority-host`` (the Entra ID authority for sovereign clouds, e.g. ``https://login.chinacloudapi.cn``;
with it ``ca-file`` also verifies the authority) and ``disable-instance-discovery`` (true for a
private authority).
``ca-file`` (a PEM bundle to verify the vault's TLS certificate), ``verify-challenge-resource``
(default true), ``version-cache`` (how long the latest version is reused, default 5 min), and the
retry settings of :mod:`.retry`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

from ..config import parse_bool, parse_duration
from ..errors import ConfigError, KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError
from . import retry
from .base import Context, KeyProvider

PREFIX = "heliosdb.crypto.kms.azure."
PROVIDER = "azure-kv"
_LABEL = b"heliosdb-flink-crypto/azure-kv/context\0"
RSA_ALG, OCT_ALG = "RSA-OAEP-256", "A256KW"
_WRAPPED_OCT_LEN = 72  # A256KW of the 64-byte payload


def parse_uri(uri: str) -> tuple[str, str, str | None]:
    """-> (vault URL, key name, pinned version or None)."""
    if not uri.startswith(PROVIDER + "://"):
        raise ValueError(f"not an Azure Key Vault URI: {uri!r}")
    host, _, path = uri[len(PROVIDER) + 3:].partition("/")
    parts = [p for p in path.split("/") if p]
    if not host or len(parts) not in (2, 3) or parts[0] != "keys":
        raise ValueError(f"Azure Key Vault URI must be azure-kv://VAULT-HOST/keys/NAME[/VERSION]: {uri!r}")
    return f"https://{host}", parts[1], parts[2] if len(parts) == 3 else None


def context_digest(context: Context) -> bytes:
    return hashlib.sha256(_LABEL + json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()).digest()


class AzureKeyVaultProvider(KeyProvider):
    scheme = PROVIDER

    @classmethod
    def key_identity(cls, uri: str, settings=None) -> tuple[str, ...]:
        """Vault host (lower case) and key name; a pinned version is not part of it."""
        vault, name, _ = parse_uri(uri)
        return (PROVIDER, vault.lower(), name)

    def __init__(self, uri: str, settings=None, *, credential=None):
        super().__init__(uri)
        s = dict(settings or {})
        self.vault_url, self.name, self.pinned = parse_uri(uri)
        self.key = f"{self.vault_url}/keys/{self.name}"
        self.policy = retry.RetryPolicy.from_settings(s, "azure")
        try:
            self.version_ttl = parse_duration(s.get(PREFIX + "version-cache", "300"))
        except ValueError as e:
            raise ConfigError(PREFIX + "version-cache", str(e)) from None
        try:
            verify_resource = parse_bool(s.get(PREFIX + "verify-challenge-resource", "true"))
        except ValueError as e:
            raise ConfigError(PREFIX + "verify-challenge-resource", str(e)) from None
        self._kw = {"retry_total": 0, "connection_timeout": self.policy.timeout, "read_timeout": self.policy.timeout,
                    "verify_challenge_resource": verify_resource}
        if s.get(PREFIX + "ca-file"):
            self._kw["connection_verify"] = s[PREFIX + "ca-file"]
        self._credential = credential or _credential(s)
        from azure.keyvault.keys import KeyClient
        self._keys = KeyClient(self.vault_url, self._credential, **self._kw)
        self._crypto: dict[str, object] = {}
        self._current: tuple[float, str, str] | None = None  # (fetched, kid, kty)
        self._lock = threading.Lock()

    # -- clients -------------------------------------------------------------------
    def _crypto_client(self, kid: str):
        with self._lock:
            c = self._crypto.get(kid)
            if c is None:
                from azure.keyvault.keys.crypto import CryptographyClient
                c = CryptographyClient(kid, self._credential, **self._kw)
                if not hasattr(c, "_initialized"):  # pragma: no cover - guards an SDK change
                    raise ImportError("unsupported azure-keyvault-keys version: cannot force remote key wrapping")
                c._initialized = True  # remote-only: never fetch the key for local (random-key) wrapping
                self._crypto[kid] = c
            return c

    def _classify(self, op: str):
        from azure.core import exceptions as ax

        def classify(e: BaseException) -> KmsError | None:
            if isinstance(e, ax.ClientAuthenticationError) and getattr(e, "status_code", None) is None:
                return KmsAccessDeniedError(PROVIDER, self.key, op, f"no usable Azure credential: {type(e).__name__}")
            if isinstance(e, ax.HttpResponseError):
                status = e.status_code or 0
                code = getattr(getattr(e, "error", None), "code", None) or getattr(e, "reason", "") or ""
                reason = retry.short(f"HTTP {status} {code}: {getattr(getattr(e, 'error', None), 'message', '')}")
                if status in (401, 403, 404):
                    return KmsAccessDeniedError(PROVIDER, self.key, op, reason)
                if status == 400 and op == "unwrap":
                    return KmsInvalidCiphertextError(PROVIDER, self.key, op, reason)
                if status == 429 or status >= 500 or status == 408:
                    return retry.unavailable(PROVIDER, self.key, op, reason)
                return KmsError(PROVIDER, self.key, op, reason)
            if isinstance(e, (ax.ServiceRequestError, ax.ServiceResponseError)):
                return retry.unavailable(PROVIDER, self.key, op, type(e).__name__)
            if isinstance(e, ax.AzureError):
                return KmsError(PROVIDER, self.key, op, retry.short(type(e).__name__))
            return None
        return classify

    def _call(self, op: str, fn):
        return retry.call_logged(self.policy, fn, self._classify(op), PROVIDER, self.key, op)

    # -- versions ------------------------------------------------------------------
    def _latest(self, op: str) -> tuple[str, str]:
        with self._lock:
            cur = self._current
        if cur and time.monotonic() - cur[0] < self.version_ttl:
            return cur[1], cur[2]
        k = self._call(op, lambda: self._keys.get_key(self.name, self.pinned))
        if not k.properties.enabled:
            raise KmsAccessDeniedError(PROVIDER, self.key, op, f"key version {k.id} is disabled")
        kty = str(getattr(k.key_type, "value", k.key_type))
        if kty not in ("RSA", "RSA-HSM", "oct", "oct-HSM"):
            raise KmsAccessDeniedError(PROVIDER, self.key, op, f"key type {kty} cannot wrap keys")
        with self._lock:
            self._current = (time.monotonic(), k.id, kty)
        return k.id, kty

    def current_key_version(self) -> str:
        return self._latest("describe")[0]

    def test_connection(self) -> None:
        with self._lock:
            self._current = None
        self._latest("test")

    # -- KeyProvider ---------------------------------------------------------------
    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        kid, kty = self._latest("wrap")
        alg = RSA_ALG if kty.startswith("RSA") else OCT_ALG
        client = self._crypto_client(kid)
        r = self._call("wrap", lambda: client.wrap_key(alg, dek + context_digest(context)))
        return r.encrypted_key, kid

    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        kid = key_version or self._latest("unwrap")[0]
        if not kid.startswith(self.key + "/"):
            raise KmsAccessDeniedError(PROVIDER, self.key, "unwrap",
                                       f"key version {kid!r} does not belong to this KMS URI")
        alg = OCT_ALG if len(wrapped) == _WRAPPED_OCT_LEN else RSA_ALG
        client = self._crypto_client(kid)
        payload = self._call("unwrap", lambda: client.unwrap_key(alg, wrapped)).key
        if len(payload) != 64 or not hmac.compare_digest(payload[32:], context_digest(context)):
            raise KmsInvalidCiphertextError(PROVIDER, self.key, "unwrap",
                                            "wrapped key is bound to another context (file, tenant or DEK id)")
        return payload[:32]

    def rotate(self) -> str:
        """A new key version (Key Vault's rotate); new DEKs are wrapped by it, old files keep opening."""
        if self.pinned:
            raise KmsError(PROVIDER, self.key, "rotate", "the URI pins a key version; remove it to rotate")
        k = self._call("rotate", lambda: self._keys.rotate_key(self.name))
        with self._lock:
            self._current = None
        return k.id

    def close(self) -> None:
        with self._lock:
            clients, self._crypto = list(self._crypto.values()), {}
        for c in clients:
            c.close()
        self._keys.close()


def _credential(s: dict):
    """The credential the settings ask for; secrets are passed to azure-identity, never logged."""
    from azure import identity
    tenant, client, secret = (s.get(PREFIX + k) for k in ("tenant-id", "client-id", "client-secret"))
    mi = s.get(PREFIX + "managed-identity-client-id")
    kw = {}
    if s.get(PREFIX + "authority-host"):
        kw["authority"] = s[PREFIX + "authority-host"]
        try:
            kw["disable_instance_discovery"] = parse_bool(s.get(PREFIX + "disable-instance-discovery", "false"))
        except ValueError as e:
            raise ConfigError(PREFIX + "disable-instance-discovery", str(e)) from None
        if s.get(PREFIX + "ca-file"):
            kw["connection_verify"] = s[PREFIX + "ca-file"]
    if secret or (tenant and client):
        missing = [k for k, v in (("tenant-id", tenant), ("client-id", client), ("client-secret", secret)) if not v]
        if missing:
            raise ConfigError(PREFIX + missing[0], "tenant-id, client-id and client-secret go together")
        return identity.ClientSecretCredential(tenant, client, secret, **kw)
    if mi:
        return identity.ManagedIdentityCredential(client_id=None if mi == "system" else mi)
    return identity.DefaultAzureCredential(**({"authority": kw["authority"]} if "authority" in kw else {}))

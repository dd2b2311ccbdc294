"""``gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K``: Google Cloud KMS (google-cloud-kms).

Wrap = ``Encrypt`` with ``additional_authenticated_data`` = the canonical context (sorted compact
JSON), unwrap = ``Decrypt`` on the key with the same AAD. CRC32C is checked both ways, as Google
asks: request checksums for plaintext/ciphertext and AAD, and the response's ``verified_*`` flags and
``ciphertext_crc32c`` / ``plaintext_crc32c``; a mismatch (corruption in transit) is a retryable
:class:`KmsUnavailableError`. The key version is the full ``.../cryptoKeyVersions/N`` name Encrypt
reports; rotation = a new primary version (:meth:`GcpKmsProvider.rotate`), old versions keep
decrypting until disabled or destroyed (:meth:`GcpKmsProvider.destroy`).

Settings (``heliosdb.crypto.kms.gcp.<name>``): ``endpoint`` (host:port, default Google's),
``credentials-file`` (a service-account JSON file; default: Application Default Credentials),
``insecure-plaintext`` (true: plaintext gRPC without credentials, only for a local stand-in),
``version-cache`` (how long the primary version from GetCryptoKey is reused, default 5 min), and
the retry settings of :mod:`.retry`.
"""
from __future__ import annotations

import json
import threading
import time

from ..config import parse_bool, parse_duration
from ..errors import ConfigError, KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError
from . import retry
from .base import Context, KeyProvider

PREFIX = "heliosdb.crypto.kms.gcp."
PROVIDER = "gcp-kms"
_NAME = ("projects", "locations", "keyRings", "cryptoKeys")

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Cloud KMS's ``*_crc32c`` fields carry it."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def canonical_context(context: Context) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def key_name(uri: str) -> str:
    """``gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k`` -> the CryptoKey resource name."""
    if not uri.startswith(PROVIDER + "://"):
        raise ValueError(f"not a GCP KMS URI: {uri!r}")
    name = uri[len(PROVIDER) + 3:].strip("/")
    parts = name.split("/")
    if len(parts) != 8 or tuple(parts[0::2]) != _NAME or not all(parts[1::2]):
        raise ValueError(f"GCP KMS URI must be gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K: {uri!r}")
    return name


class GcpKmsProvider(KeyProvider):
    scheme = PROVIDER

    @classmethod
    def key_identity(cls, uri: str, settings=None) -> tuple[str, ...]:
        """The CryptoKey resource name."""
        return (PROVIDER, key_name(uri))

    def __init__(self, uri: str, settings=None, *, client=None):
        super().__init__(uri)
        s = dict(settings or {})
        self.key = key_name(uri)
        self.policy = retry.RetryPolicy.from_settings(s, "gcp")
        try:
            self.version_ttl = parse_duration(s.get(PREFIX + "version-cache", "300"))
            insecure = parse_bool(s.get(PREFIX + "insecure-plaintext", "false"))
        except ValueError as e:
            raise ConfigError(PREFIX + ("version-cache" if "duration" in str(e) else "insecure-plaintext"),
                              str(e)) from None
        self._version: tuple[float, str] | None = None
        self._lock = threading.Lock()
        self._channel = None
        self._client = client or self._make_client(s, insecure)

    def _make_client(self, s: dict, insecure: bool):
        from google.cloud import kms_v1
        from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport

        endpoint = s.get(PREFIX + "endpoint") or None
        options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 2000),
                   # grpc-core shares subchannels (and their reconnect back-off) process-wide by
                   # default: a KMS that comes back would stay "down" for every new client too
                   ("grpc.use_local_subchannel_pool", 1)]
        if insecure:
            if not endpoint:
                raise ConfigError(PREFIX + "endpoint", "insecure-plaintext needs an endpoint (a local stand-in)")
            import grpc
            self._channel = grpc.insecure_channel(endpoint, options=options)
            return kms_v1.KeyManagementServiceClient(
                transport=KeyManagementServiceGrpcTransport(channel=self._channel))
        kwargs = {"client_options": {"api_endpoint": endpoint}} if endpoint else {}
        path = s.get(PREFIX + "credentials-file")
        if path:
            try:
                return kms_v1.KeyManagementServiceClient.from_service_account_file(path, **kwargs)
            except (OSError, ValueError) as e:
                raise ConfigError(PREFIX + "credentials-file", f"unusable: {type(e).__name__}") from None
        return kms_v1.KeyManagementServiceClient(**kwargs)

    # -- errors --------------------------------------------------------------------
    def _classify(self, op: str):
        from google.api_core import exceptions as gx
        from google.auth import exceptions as ax

        def classify(e: BaseException) -> KmsError | None:
            reason = retry.short(f"{type(e).__name__}: {getattr(e, 'message', e)}")
            if isinstance(e, gx.InvalidArgument) and op == "unwrap":
                return KmsInvalidCiphertextError(PROVIDER, self.key, op, reason)
            if isinstance(e, (gx.PermissionDenied, gx.Unauthenticated, gx.NotFound, gx.FailedPrecondition,
                              ax.DefaultCredentialsError, ax.RefreshError)):
                return KmsAccessDeniedError(PROVIDER, self.key, op, reason)
            if isinstance(e, (gx.ServiceUnavailable, gx.DeadlineExceeded, gx.TooManyRequests,
                              gx.InternalServerError, gx.Aborted, gx.RetryError, ax.TransportError)):
                return retry.unavailable(PROVIDER, self.key, op, reason)
            if isinstance(e, gx.GoogleAPIError):
                return KmsError(PROVIDER, self.key, op, reason)
            return None
        return classify

    def _call(self, op: str, fn):
        return retry.call_logged(self.policy, fn, self._classify(op), PROVIDER, self.key, op)

    def _corrupt(self, op: str) -> KmsError:
        return retry.unavailable(PROVIDER, self.key, op, "CRC32C check failed: response corrupted in transit")

    # -- KeyProvider ---------------------------------------------------------------
    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        aad = canonical_context(context)

        def encrypt():
            r = self._client.encrypt(request={
                "name": self.key, "plaintext": dek, "plaintext_crc32c": crc32c(dek),
                "additional_authenticated_data": aad, "additional_authenticated_data_crc32c": crc32c(aad)},
                timeout=self.policy.timeout, retry=None)
            if not (r.verified_plaintext_crc32c and r.verified_additional_authenticated_data_crc32c
                    and r.ciphertext_crc32c == crc32c(r.ciphertext)):
                raise self._corrupt("wrap")
            if not r.name.startswith(self.key + "/cryptoKeyVersions/"):
                raise KmsError(PROVIDER, self.key, "wrap", f"service answered for another key: {r.name}")
            return r.ciphertext, r.name
        return self._call("wrap", encrypt)

    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        if key_version and not key_version.startswith(self.key + "/cryptoKeyVersions/"):
            raise KmsAccessDeniedError(PROVIDER, self.key, "unwrap",
                                       f"key version {key_version!r} does not belong to this KMS URI")
        aad = canonical_context(context)

        def decrypt():
            r = self._client.decrypt(request={
                "name": self.key, "ciphertext": wrapped, "ciphertext_crc32c": crc32c(wrapped),
                "additional_authenticated_data": aad, "additional_authenticated_data_crc32c": crc32c(aad)},
                timeout=self.policy.timeout, retry=None)
            if r.plaintext_crc32c != crc32c(r.plaintext):
                raise self._corrupt("unwrap")
            return r.plaintext
        return self._call("unwrap", decrypt)

    def _get_key(self, op: str):
        return self._call(op, lambda: self._client.get_crypto_key(
            request={"name": self.key}, timeout=self.policy.timeout, retry=None))

    def current_key_version(self) -> str:
        with self._lock:
            if self._version and time.monotonic() - self._version[0] < self.version_ttl:
                return self._version[1]
        name = self._get_key("describe").primary.name
        with self._lock:
            self._version = (time.monotonic(), name)
        return name

    def test_connection(self) -> None:
        from google.cloud import kms_v1
        k = self._get_key("test")
        if k.purpose != kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT:
            raise KmsAccessDeniedError(PROVIDER, self.key, "test", f"key purpose is {k.purpose.name}")
        if k.primary.state != kms_v1.CryptoKeyVersion.CryptoKeyVersionState.ENABLED:
            raise KmsAccessDeniedError(PROVIDER, self.key, "test",
                                       f"primary version {k.primary.name} is {k.primary.state.name}")

    # -- lifecycle (used by the rotation manager and lifecycle.admin) ----------------
    def rotate(self) -> str:
        """Create a new key version and make it primary; returns its name."""
        v = self._call("rotate", lambda: self._client.create_crypto_key_version(
            request={"parent": self.key, "crypto_key_version": {}}, timeout=self.policy.timeout, retry=None))
        vid = v.name.rsplit("/", 1)[-1]
        self._call("rotate", lambda: self._client.update_crypto_key_primary_version(
            request={"name": self.key, "crypto_key_version_id": vid}, timeout=self.policy.timeout, retry=None))
        with self._lock:
            self._version = (time.monotonic(), v.name)
        return v.name

    def destroy(self, version: str | None = None) -> list[str]:
        """Schedule destruction of one version (Cloud KMS destroys it after its grace period). Destroying
        every version at once is refused: name the versions to destroy one by one."""
        if version is None:
            raise ValueError("gcp-kms: name the key version to destroy")
        name = version if "/" in version else f"{self.key}/cryptoKeyVersions/{version}"
        if not name.startswith(self.key + "/cryptoKeyVersions/"):
            raise ValueError(f"{version!r} is not a version of {self.key}")
        self._call("destroy", lambda: self._client.destroy_crypto_key_version(
            request={"name": name}, timeout=self.policy.timeout, retry=None))
        return [name]

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        else:
            transport = getattr(self._client, "transport", None)
            if transport is not None:
                transport.close()

"""``aws-kms://KEY``: AWS KMS through boto3.

URI forms (``KEY`` is what KMS calls a KeyId):

* ``aws-kms://alias/checkpoints?region=eu-west-1``
* ``aws-kms://arn:aws:kms:eu-west-1:111122223333:key/1234abcd-...`` (region taken from the ARN)
* ``aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/checkpoints``
* ``aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1``

Query parameters: ``region``, ``profile``. Settings (``heliosdb.crypto.kms.aws.<name>``):
``region``, ``endpoint`` (else boto3's own ``AWS_ENDPOINT_URL_KMS`` / ``AWS_ENDPOINT_URL``),
``profile``, ``access-key-id`` + ``secret-access-key`` (+ ``session-token-secret``), ``role-arn``
(+ ``role-session-name``) to assume a role, ``version-cache`` (how long the key's ARN from
DescribeKey is reused, default 5 min), and the retry settings of :mod:`.retry`. With none of the
credential settings boto3's default chain applies (env, profile, web identity, ECS/EC2 role).

Each wrap binds the context as KMS EncryptionContext; new DEKs come from GenerateDataKey. The key
version is the key's ARN as KMS reports it: re-pointing an alias to a new key is a rotation, and old
files unwrap through the ARN in their header (KMS's own automatic rotation is transparent to us).
An unwrap is only attempted with the URI's key (when the URI names a key, not an alias) or with a
key of the same account and region (alias URIs), so a forged header cannot steer us elsewhere.
"""
from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

from ..config import parse_duration
from ..errors import ConfigError, KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError
from . import retry
from .base import Context, KeyProvider

PREFIX = "heliosdb.crypto.kms.aws."
PROVIDER = "aws-kms"

DENIED = {"AccessDeniedException", "DisabledException", "NotFoundException", "KMSInvalidStateException",
          "InvalidKeyUsageException", "UnrecognizedClientException", "InvalidSignatureException",
          "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken",
          "AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch"}
INVALID = {"InvalidCiphertextException", "IncorrectKeyException"}
TRANSIENT = {"ThrottlingException", "LimitExceededException", "KMSInternalException", "KeyUnavailableException",
             "DependencyTimeoutException", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
             "RequestTimeoutException", "Throttling", "TooManyRequestsException"}


def parse_uri(uri: str) -> tuple[str, dict[str, str]]:
    """``aws-kms://KEY?region=..`` -> (KEY, query parameters)."""
    if not uri.startswith(PROVIDER + "://"):
        raise ValueError(f"not an AWS KMS URI: {uri!r}")
    rest = uri[len(PROVIDER) + 3:]
    key, _, query = rest.partition("?")
    if not key:
        raise ValueError(f"AWS KMS URI names no key: {uri!r}")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(params) - {"region", "profile"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} in {uri!r}; known: region, profile")
    return key, params


def _arn_region(key: str) -> str | None:
    parts = key.split(":")
    return parts[3] if key.startswith("arn:") and len(parts) > 5 and parts[3] else None


def region_of(key: str, params: dict[str, str], settings) -> str | None:
    """The region a URI's key lives in: ``?region=``, else the region setting, else the ARN's."""
    return params.get("region") or settings.get(PREFIX + "region") or _arn_region(key)


def aws_identity(key: str, region: str | None) -> tuple[str, ...]:
    return (PROVIDER, region or "", key)


class AwsKmsProvider(KeyProvider):
    scheme = PROVIDER

    @classmethod
    def key_identity(cls, uri: str, settings=None) -> tuple[str, ...]:
        """Region and key id, alias or ARN (region: ``?region=``, else the setting
        ``heliosdb.crypto.kms.aws.region``, else the ARN's)."""
        key, params = parse_uri(uri)
        return aws_identity(key, region_of(key, params, settings or {}))

    def __init__(self, uri: str, settings=None, *, client=None):
        super().__init__(uri)
        settings = dict(settings or {})
        self.key_id, params = parse_uri(uri)
        self.policy = retry.RetryPolicy.from_settings(settings, "aws")
        self.region = region_of(self.key_id, params, settings)
        try:
            self.version_ttl = parse_duration(settings.get(PREFIX + "version-cache", "300"))
        except ValueError as e:
            raise ConfigError(PREFIX + "version-cache", str(e)) from None
        self._version: tuple[float, str] | None = None
        self._lock = threading.Lock()
        self._client = client or self._make_client(settings, params.get("profile"))

    @property
    def identity(self) -> tuple[str, ...]:
        return aws_identity(self.key_id, self.region)

    # -- client --------------------------------------------------------------------
    def _make_client(self, s: dict, profile: str | None):
        import boto3
        import botocore.config
        import botocore.exceptions

        kwargs = {}
        if s.get(PREFIX + "access-key-id") or s.get(PREFIX + "secret-access-key"):
            if not (s.get(PREFIX + "access-key-id") and s.get(PREFIX + "secret-access-key")):
                raise ConfigError(PREFIX + "secret-access-key", "access-key-id and secret-access-key go together")
            kwargs = {"aws_access_key_id": s[PREFIX + "access-key-id"],
                      "aws_secret_access_key": s[PREFIX + "secret-access-key"],
                      "aws_session_token": s.get(PREFIX + "session-token-secret") or None}
        try:
            session = boto3.Session(profile_name=profile or s.get(PREFIX + "profile") or None,
                                    region_name=self.region, **kwargs)
        except botocore.exceptions.ProfileNotFound as e:
            raise ConfigError(PREFIX + "profile", str(e)) from None
        config = botocore.config.Config(connect_timeout=self.policy.timeout, read_timeout=self.policy.timeout,
                                        retries={"total_max_attempts": 1, "mode": "standard"},
                                        user_agent_extra="heliosdb-flink-crypto")
        endpoint = s.get(PREFIX + "endpoint") or None
        if s.get(PREFIX + "role-arn"):
            self._assume_role(session, s, endpoint, config)
        try:
            return session.client("kms", endpoint_url=endpoint, config=config)
        except botocore.exceptions.NoRegionError:
            raise ConfigError(PREFIX + "region", "no region: set it, use ?region= or an ARN, or AWS_REGION") from None

    @staticmethod
    def _assume_role(session, s: dict, endpoint, config) -> None:
        """Swap the session's credentials for auto-refreshing ones of the role (as boto3's own
        ``role_arn`` profile setting does), with STS at the same endpoint override if one is set."""
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        core = session._session  # boto3 exposes no public hook for this; it is what profiles use

        def client_creator(service, **kw):
            kw.setdefault("config", config)
            if endpoint:
                kw.setdefault("endpoint_url", endpoint)
            return core.create_client(service, **kw)

        fetcher = AssumeRoleCredentialFetcher(
            client_creator, core.get_credentials(), s[PREFIX + "role-arn"],
            extra_args={"RoleSessionName": s.get(PREFIX + "role-session-name") or "heliosdb-flink-crypto"})
        core._credentials = DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")

    # -- error mapping -------------------------------------------------------------
    def _classify(self, op: str):
        import botocore.exceptions as bx

        def classify(e: BaseException) -> KmsError | None:
            if isinstance(e, bx.ClientError):
                err = e.response.get("Error", {})
                code, status = err.get("Code", ""), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                reason = retry.short(f"{code}: {err.get('Message', '')}")
                if code in INVALID:
                    return KmsInvalidCiphertextError(PROVIDER, self.key_id, op, reason)
                if code in DENIED or status in (401, 403):
                    return KmsAccessDeniedError(PROVIDER, self.key_id, op, reason)
                if code in TRANSIENT or status >= 500 or status == 429:
                    return retry.unavailable(PROVIDER, self.key_id, op, reason)
                return KmsError(PROVIDER, self.key_id, op, reason)
            if isinstance(e, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
                return KmsAccessDeniedError(PROVIDER, self.key_id, op, f"no usable AWS credentials: {type(e).__name__}")
            if isinstance(e, (bx.ConnectionError, bx.HTTPClientError)):  # timeouts, refused, reset
                return retry.unavailable(PROVIDER, self.key_id, op, type(e).__name__)
            if isinstance(e, bx.BotoCoreError):
                return KmsError(PROVIDER, self.key_id, op, retry.short(type(e).__name__))
            return None
        return classify

    def _call(self, op: str, fn):
        return retry.call_logged(self.policy, fn, self._classify(op), PROVIDER, self.key_id, op)

    # -- KeyProvider ---------------------------------------------------------------
    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        r = self._call("wrap", lambda: self._client.encrypt(KeyId=self.key_id, Plaintext=dek,
                                                              EncryptionContext=dict(context)))
        return r["CiphertextBlob"], r["KeyId"]

    def generate_data_key(self, context: Context) -> tuple[bytes, bytes, str]:
        r = self._call("generate_data_key", lambda: self._client.generate_data_key(
            KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context)))
        return r["Plaintext"], r["CiphertextBlob"], r["KeyId"]

    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        key = self._check_version(key_version)
        r = self._call("unwrap", lambda: self._client.decrypt(CiphertextBlob=wrapped, KeyId=key,
                                                                EncryptionContext=dict(context)))
        return r["Plaintext"]

    def _check_version(self, key_version: str) -> str:
        if not key_version:
            return self.key_id
        if "alias/" in self.key_id:
            cur = self.current_key_version().split(":")
            ver = key_version.split(":")
            if key_version.startswith("arn:") and len(ver) > 5 and ver[:5] == cur[:5]:
                return key_version
        elif key_version == self.key_id or key_version.endswith(":key/" + self.key_id):
            return key_version
        raise KmsAccessDeniedError(PROVIDER, self.key_id, "unwrap",
                                   f"key version {key_version!r} does not belong to this KMS URI")

    def _describe(self) -> dict:
        return self._call("describe", lambda: self._client.describe_key(KeyId=self.key_id))["KeyMetadata"]

    def current_key_version(self) -> str:
        with self._lock:
            if self._version and time.monotonic() - self._version[0] < self.version_ttl:
                return self._version[1]
        arn = self._describe()["Arn"]
        with self._lock:
            self._version = (time.monotonic(), arn)
        return arn

    def test_connection(self) -> None:
        md = self._describe()
        state = md.get("KeyState", "Enabled")
        if state != "Enabled" or md.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise KmsAccessDeniedError(PROVIDER, self.key_id, "test",
                                       f"key is {state} with usage {md.get('KeyUsage')}")

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close:
            close()

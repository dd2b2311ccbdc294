"""``pkcs11://TOKEN-LABEL/KEY-LABEL?module=/path/to/module.so``: a PKCS#11 HSM (python-pkcs11).

Example with SoftHSMv2: ``pkcs11://checkpoints/kek?module=/usr/lib/softhsm/libsofthsm2.so``.
The module comes from ``?module=``, else the setting ``heliosdb.crypto.kms.pkcs11.module``, else the
environment variable ``PKCS11_MODULE``. The user PIN comes from the setting
``heliosdb.crypto.kms.pkcs11.pin-password`` (Flink masks keys containing ``password``), else the
environment variable ``HELIOSDB_PKCS11_PIN``.

The KEK never leaves the HSM: a wrap is ``C_Encrypt`` with CKM_AES_GCM under the token's AES-256 key,
a fresh 96-bit IV, and the canonical context as AAD, stored as ``IV || ciphertext || tag``. Key
versions are AES secret-key objects with CKA_LABEL = KEY-LABEL and CKA_ID = the version number in
ASCII (``1``, ``2``, ...); the highest is current. :meth:`Pkcs11Provider.rotate` generates a new
object (sensitive, non-extractable, on the token), :meth:`Pkcs11Provider.destroy` erases one or all
(crypto-shredding), :meth:`Pkcs11Provider.create_key` makes version 1.

Calls are in-process, so ``timeout`` is not enforced here (a network HSM's module has its own);
transient failures (session or device errors) reopen the session and retry per :mod:`.retry`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from urllib.parse import parse_qs, urlsplit

from ..config import number
from ..errors import ConfigError, KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError
from . import retry
from .base import Context, KeyProvider

log = logging.getLogger(__name__)
PREFIX = "heliosdb.crypto.kms.pkcs11."
PROVIDER = "pkcs11"
PIN_ENV, MODULE_ENV = "HELIOSDB_PKCS11_PIN", "PKCS11_MODULE"
_IV = 12


def parse_uri(uri: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(uri)
    if parts.scheme != PROVIDER:
        raise ValueError(f"not a PKCS#11 URI: {uri!r}")
    key = parts.path.strip("/")
    if not parts.netloc or not key or "/" in key:
        raise ValueError(f"PKCS#11 URI must be pkcs11://TOKEN-LABEL/KEY-LABEL[?module=PATH]: {uri!r}")
    return parts.netloc, key, {k: v[-1] for k, v in parse_qs(parts.query).items()}


def canonical_context(context: Context) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


class Pkcs11Provider(KeyProvider):
    scheme = PROVIDER

    @classmethod
    def key_identity(cls, uri: str, settings=None) -> tuple[str, ...]:
        """Token label and key label."""
        token, key, _ = parse_uri(uri)
        return (PROVIDER, token, key)

    def __init__(self, uri: str, settings=None):
        super().__init__(uri)
        s = dict(settings or {})
        self.token_label, self.key_label, q = parse_uri(uri)
        self.key = f"{self.token_label}/{self.key_label}"
        self.policy = retry.RetryPolicy.from_settings(s, "pkcs11")
        module = q.get("module") or s.get(PREFIX + "module") or os.environ.get(MODULE_ENV)
        if not module:
            raise ConfigError(PREFIX + "module", f"no PKCS#11 module: use ?module=, this setting or {MODULE_ENV}")
        self._pin = s.get(PREFIX + "pin-password") or os.environ.get(PIN_ENV)
        if not self._pin:
            raise ConfigError(PREFIX + "pin-password", f"no user PIN: set it or {PIN_ENV}")
        import pkcs11
        try:
            self._lib = pkcs11.lib(module)
        except (RuntimeError, OSError, pkcs11.PKCS11Error) as e:
            raise ConfigError(PREFIX + "module", f"cannot load {module}: {type(e).__name__}") from None
        self._session = None
        self._lock = threading.RLock()

    # -- sessions and errors ------------------------------------------------------
    def _open(self):
        import pkcs11.exceptions as px
        token = self._lib.get_token(token_label=self.token_label)
        try:
            return token.open(rw=True, user_pin=self._pin)
        except px.UserAlreadyLoggedIn:  # another session of this process logged the token in
            return token.open(rw=True)

    def _classify(self, op: str):
        import pkcs11.exceptions as px

        def classify(e: BaseException) -> KmsError | None:
            reason = type(e).__name__
            if isinstance(e, (px.SessionHandleInvalid, px.SessionClosed, px.DeviceError, px.DeviceRemoved,
                              px.DeviceMemory, px.TokenNotPresent, px.FunctionFailed, px.SessionCount)) or (
                    isinstance(e, px.GeneralError) and op != "unwrap"):
                with self._lock:
                    self._session = None  # reopen on the next attempt
                return retry.unavailable(PROVIDER, self.key, op, reason)
            if op == "unwrap" and isinstance(e, (px.GeneralError, px.EncryptedDataInvalid,
                                                  px.EncryptedDataLenRange, px.DataLenRange, px.ArgumentsBad)):
                return KmsInvalidCiphertextError(PROVIDER, self.key, op, "wrapped key does not open under this "
                                                 "key and context")
            if isinstance(e, (px.PinIncorrect, px.PinLocked, px.PinExpired, px.PinInvalid, px.PinLenRange,
                              px.UserNotLoggedIn, px.NoSuchToken, px.NoSuchKey, px.KeyHandleInvalid,
                              px.ObjectHandleInvalid, px.MultipleTokensReturned)):
                return KmsAccessDeniedError(PROVIDER, self.key, op, reason)
            if isinstance(e, px.PKCS11Error):
                return KmsError(PROVIDER, self.key, op, reason)
            return None
        return classify

    def _run(self, op: str, fn):
        """``fn(session)`` under the lock with a (re)opened session, classified and retried."""
        def attempt():
            with self._lock:
                if self._session is None:
                    self._session = self._open()
                return fn(self._session)

        def on_retry(n, err):
            log.warning("pkcs11 %s with key %s: attempt %d failed (%s); retrying", op, self.key, n, err.reason)
        return retry.call(self.policy, attempt, self._classify(op), on_retry=on_retry)

    def _versions(self, session) -> dict[int, object]:
        from pkcs11 import Attribute, ObjectClass
        out = {}
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: self.key_label}):
            vid = bytes(obj[Attribute.ID] or b"").decode("ascii", "replace")
            if number(vid) is not None:
                out[number(vid)] = obj
        return out

    def _version(self, session, op: str, version: str | None = None):
        versions = self._versions(session)
        if not versions:
            raise KmsAccessDeniedError(PROVIDER, self.key, op, "no key with this label on the token")
        if version is None:
            n = max(versions)
            return n, versions[n]
        n = number(version)
        if n not in versions:
            raise KmsAccessDeniedError(PROVIDER, self.key, op, f"no key version {version!r} (destroyed or never made)")
        return n, versions[n]

    # -- KeyProvider ---------------------------------------------------------------
    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        def do(session):
            n, key = self._version(session, "wrap")
            iv = os.urandom(_IV)
            ct = key.encrypt(dek, mechanism=Mechanism.AES_GCM,
                             mechanism_param=GCMParams(iv, canonical_context(context)))
            return iv + bytes(ct), str(n)
        return self._run("wrap", do)

    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams
        if len(wrapped) < _IV + 16 + 1:
            raise KmsInvalidCiphertextError(PROVIDER, self.key, "unwrap", "wrapped key too short")

        def do(session):
            _, key = self._version(session, "unwrap", key_version)
            return bytes(key.decrypt(wrapped[_IV:], mechanism=Mechanism.AES_GCM,
                                     mechanism_param=GCMParams(wrapped[:_IV], canonical_context(context))))
        return self._run("unwrap", do)

    def current_key_version(self) -> str:
        return str(self._run("describe", lambda s: self._version(s, "describe")[0]))

    def test_connection(self) -> None:
        self._run("test", lambda s: self._version(s, "test"))

    # -- lifecycle -----------------------------------------------------------------
    def _generate(self, session, n: int) -> str:
        from pkcs11 import Attribute, KeyType
        session.generate_key(KeyType.AES, 256, label=self.key_label, id=str(n).encode(), store=True,
                             template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                       Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
        return str(n)

    def create_key(self) -> str:
        """Make version 1 if the token holds no key with this label yet; returns the current version."""
        def do(session):
            versions = self._versions(session)
            return str(max(versions)) if versions else self._generate(session, 1)
        return self._run("create", do)

    def rotate(self) -> str:
        """A new key object with the next version number; it wraps new DEKs, old ones still unwrap."""
        return self._run("rotate", lambda s: self._generate(s, max(self._versions(s) or {0: None}) + 1))

    def destroy(self, version: str | None = None) -> list[str]:
        """Erase one key version (or every one) from the token: files wrapped by it become unreadable."""
        def do(session):
            versions = self._versions(session)
            names = [number(version)] if version is not None else sorted(versions)
            if None in names:
                raise ValueError(f"{self.key}: key version {version!r} is not a number")
            for n in names:
                if n not in versions:
                    raise ValueError(f"{self.key}: no key version {n}")
                versions[n].destroy()
            return [str(n) for n in names]
        return self._run("destroy", do)

    def close(self) -> None:
        with self._lock:
            s, self._session = self._session, None
        if s is not None:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - already invalid after a reinitialise
                pass

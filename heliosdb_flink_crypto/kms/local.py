"""``local://PATH``: a keyring file of versioned AES-256 KEKs, for development and tests.

The file is JSON, created with 0600 permissions; a rotate adds a version, old versions still
unwrap until destroyed (crypto-shredding) or below the minimum decryption version. Key bytes
live in the file in the clear: protect it like a private key, and use a real KMS in production.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import time
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError
from .base import Context, KeyProvider

KEYRING_FORMAT = 1


def keyring_path(uri: str) -> str:
    """``local:///abs/path`` or ``local://relative/path`` -> a filesystem path."""
    parts = urlsplit(uri)
    if parts.scheme != "local":
        raise ValueError(f"not a local keyring URI: {uri!r}")
    path = (parts.netloc + parts.path) if parts.netloc else parts.path
    if not path:
        raise ValueError(f"local keyring URI names no file: {uri!r}")
    return path


def canonical_context(context: Context) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class LocalKeyring(KeyProvider):
    scheme = "local"

    def __init__(self, uri: str, settings=None):
        super().__init__(uri)
        self.path = keyring_path(uri)
        self._stamp = None
        self._data: dict = {}
        self._load()

    # -- file handling -------------------------------------------------------------
    @classmethod
    def create(cls, uri: str) -> "LocalKeyring":
        path = keyring_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        data = {"format": KEYRING_FORMAT, "current": "1", "min_decrypt_version": 1,
                "versions": {"1": _new_version()}}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ValueError(f"{path}: keyring exists already; not overwritten") from None
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        return cls(uri)

    def _fail(self, op: str, reason: str, cls=KmsError):
        return cls("local", self.path, op, reason)

    def _load(self) -> None:
        try:
            st = os.stat(self.path)
            if (st.st_mtime_ns, st.st_size) == self._stamp:
                return
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise self._fail("open", "keyring file does not exist", KmsAccessDeniedError) from None
        except (OSError, ValueError) as e:
            raise self._fail("open", f"keyring unreadable: {type(e).__name__}") from None
        if data.get("format") != KEYRING_FORMAT or data.get("current") not in data.get("versions", {}):
            raise self._fail("open", "not a keyring file of format 1")
        self._data, self._stamp = data, (st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def _editing(self):
        """Lock, reload, let the caller change ``self._data``, write atomically with 0600."""
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._stamp = None
            self._load()
            yield self._data
            tmp = f"{self.path}.tmp{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self._data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._stamp = None
            self._load()

    # -- lifecycle -----------------------------------------------------------------
    def rotate(self) -> str:
        with self._editing() as d:
            new = str(max(int(v) for v in d["versions"]) + 1)
            d["versions"][new] = _new_version()
            d["current"] = new
        return new

    def destroy(self, version: str | None = None) -> list[str]:
        """Erase key material (all versions, or one). Files wrapped under it become unreadable."""
        with self._editing() as d:
            names = [version] if version else list(d["versions"])
            for v in names:
                if v not in d["versions"]:
                    raise ValueError(f"{self.path}: no key version {v}")
                d["versions"][v] = {"state": "destroyed", "created": d["versions"][v].get("created"),
                                    "destroyed": time.time()}
        return names

    def set_min_decrypt_version(self, version: int) -> None:
        with self._editing() as d:
            d["min_decrypt_version"] = int(version)

    def versions(self) -> dict[str, dict]:
        """Version -> {state, created} (no key bytes)."""
        self._load()
        return {v: {k: x for k, x in e.items() if k != "key"} for v, e in self._data["versions"].items()}

    @property
    def min_decrypt_version(self) -> int:
        self._load()
        return int(self._data.get("min_decrypt_version", 1))

    # -- KeyProvider ---------------------------------------------------------------
    def _kek(self, version: str, op: str) -> AESGCM:
        self._load()
        entry = self._data["versions"].get(version)
        if entry is None:
            raise self._fail(op, f"no key version {version!r}", KmsAccessDeniedError)
        if entry.get("state") != "enabled":
            raise self._fail(op, f"key version {version} is {entry.get('state')}", KmsAccessDeniedError)
        if op == "unwrap" and version.isdigit() and int(version) < self.min_decrypt_version:
            raise self._fail(op, f"key version {version} is below the minimum decryption version "
                             f"{self.min_decrypt_version}", KmsAccessDeniedError)
        return AESGCM(base64.b64decode(entry["key"]))

    def current_key_version(self) -> str:
        self._load()
        return self._data["current"]

    def wrap(self, dek: bytes, context: Context) -> tuple[bytes, str]:
        version = self.current_key_version()
        nonce = os.urandom(12)
        return nonce + self._kek(version, "wrap").encrypt(nonce, dek, canonical_context(context)), version

    def unwrap(self, wrapped: bytes, key_version: str, context: Context) -> bytes:
        kek = self._kek(key_version, "unwrap")
        try:
            return kek.decrypt(wrapped[:12], wrapped[12:], canonical_context(context))
        except (InvalidTag, ValueError):
            raise self._fail("unwrap", "wrapped key does not open under this key and context",
                             KmsInvalidCiphertextError) from None

    def test_connection(self) -> None:
        self._kek(self.current_key_version(), "test")


def _new_version() -> dict:
    return {"state": "enabled", "created": time.time(), "key": _b64(AESGCM.generate_key(256))}

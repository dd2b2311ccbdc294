"""``local://PATH``: a keyring file of versioned AES-256 KEKs, for development and tests.

The file is JSON, created with 0600 permissions; a rotate adds a version, old versions still
unwrap until destroyed (crypto-shredding) or below the minimum decryption version. Key bytes
live in the file in the clear: protect it like a private key, and use a real KMS in production.
"""
from __future__ import annotations

import base64
import contextlib
import binascii
import fcntl
import json
import os
import stat
import tempfile
import time
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import number
from ..errors import KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError, NotRegularFileError
from ..localfile import open_regular
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

    @classmethod
    def key_identity(cls, uri: str, settings=None) -> tuple[str, ...]:
        """The keyring file's absolute path."""
        return ("local", os.path.normpath(os.path.abspath(keyring_path(uri))))

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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise ValueError(f"{path}: keyring exists already; not overwritten") from None
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        return cls(uri)

    def _fail(self, op: str, reason: str, cls=KmsError):
        return cls("local", self.path, op, reason)

    def _load(self) -> None:
        try:
            st = os.lstat(self.path)
            if (st.st_mtime_ns, st.st_size) == self._stamp and stat.S_ISREG(st.st_mode):
                return
            with os.fdopen(open_regular(self.path, follow=False)) as f:
                st = os.fstat(f.fileno())
                data = json.load(f)
        except FileNotFoundError:
            raise self._fail("open", "keyring file does not exist", KmsAccessDeniedError) from None
        except NotRegularFileError as e:
            raise self._fail("open", f"keyring path is {e.what}; refused (name the keyring file itself)") from None
        except (OSError, ValueError) as e:
            raise self._fail("open", f"keyring unreadable: {type(e).__name__}") from None
        wrong = _shape_error(data)
        if wrong:
            raise self._fail("open", f"not a keyring file of format {KEYRING_FORMAT}: {wrong}")
        self._data, self._stamp = data, (st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def _editing(self):
        """Lock, reload, let the caller change ``self._data``, write atomically with 0600: a new
        file from mkstemp in the keyring's own folder (no name anyone can plant a link at), renamed
        over the keyring. Never follows a symbolic link."""
        lock_fd = os.open(self.path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(lock_fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._stamp = None
            self._load()
            yield self._data
            folder, name = os.path.split(os.path.abspath(self.path))
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "w") as f:
                    os.fchmod(f.fileno(), 0o600)
                    json.dump(self._data, f, indent=1)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
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
        n = number(version)
        if op == "unwrap" and n is not None and n < self.min_decrypt_version:
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


def _shape_error(data) -> str:
    """What is wrong with the shape of a loaded keyring ("" if nothing). Names no key material."""
    if not isinstance(data, dict) or data.get("format") != KEYRING_FORMAT:
        return "not an object with \"format\": 1"
    versions = data.get("versions")
    if not isinstance(versions, dict) or not versions:
        return "no \"versions\" object"
    for name, e in versions.items():
        if number(name) is None:
            return f"version name {name!r} is not a number"
        if not isinstance(e, dict) or not isinstance(e.get("state"), str) \
                or not isinstance(e.get("created", 0), (int, float)):
            return f"version {name} is not an object with a state and a creation time"
        if e["state"] == "enabled" and not _is_key(e.get("key")):
            return f"version {name} holds no 256-bit key"
    if not isinstance(data.get("current"), str) or data["current"] not in versions:
        return "\"current\" names no version"
    if type(data.get("min_decrypt_version", 1)) is not int:
        return "\"min_decrypt_version\" is not a whole number"
    return ""


def _is_key(text) -> bool:
    try:
        return isinstance(text, str) and len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _new_version() -> dict:
    return {"state": "enabled", "created": time.time(), "key": _b64(AESGCM.generate_key(256))}

"""Rotation state: when each KMS URI last rotated, in a small JSON file that survives restarts."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from typing import Iterable

from ..errors import HeliosCryptoError


def default_state_path(uris: Iterable[str], configured: str = "") -> str:
    if configured:
        return configured
    for uri in uris:
        if uri.startswith("local:"):
            from ..kms.local import keyring_path
            return keyring_path(uri) + ".rotation.json"
        break
    return os.path.join(os.path.expanduser("~"), ".heliosdb-flink-crypto", "rotation.json")


class RotationState:
    """``{"format": 1, "keys": {uri: {"version": v, "last_rotation": unix seconds}}}``."""

    def __init__(self, path: str):
        self.path = path

    def read(self) -> dict[str, dict]:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise HeliosCryptoError(f"{self.path}: rotation state unreadable ({type(e).__name__})") from None
        return dict(data.get("keys", {}))

    def get(self, uri: str) -> dict | None:
        return self.read().get(uri)

    def record(self, uri: str, version: str, when: float) -> None:
        with self._locked():
            keys = self.read()
            keys[uri] = {"version": version, "last_rotation": when}
            tmp = f"{self.path}.tmp{os.getpid()}.{threading.get_ident()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": 1, "keys": keys}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _locked(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

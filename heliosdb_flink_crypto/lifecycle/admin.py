"""Retiring key versions: minimum decryption version and destruction (crypto-shredding).

Both act on the provider (the local keyring implements them; other providers where their KMS can,
see docs/operations.md) and then drop every in-process cached DEK that came through the retired
versions, so this process stops decrypting such files at once. Other processes drop theirs when
the cache entry ages out (``heliosdb.crypto.cache.max-age`` + ``outage-grace``) or on restart.
"""
from __future__ import annotations

from typing import Iterable

from ..config import number
from ..errors import KmsError
from ..kms import KeyProvider
from ..observe import BUS, EventBus


def _unsupported(p: KeyProvider, op: str, what: str) -> KmsError:
    return KmsError(p.scheme or type(p).__name__, p.uri, op,
                    f"this provider cannot {what} from here; use the KMS's own controls (docs/operations.md)")


def set_min_version(p: KeyProvider, minimum: int, cryptos: Iterable = (), bus: EventBus | None = None) -> int:
    """Refuse unwrapping under versions below ``minimum``; returns cached DEKs dropped."""
    fn = getattr(p, "set_min_decrypt_version", None)
    if fn is None:
        raise _unsupported(p, "min-version", "set a minimum decryption version")
    if int(minimum) < 1:
        raise ValueError("the minimum version is 1 or more")
    fn(int(minimum))
    n = _drop(cryptos, lambda ref: ref.key == p.identity and number(str(ref.key_version)) is not None
              and number(str(ref.key_version)) < int(minimum))
    (bus or BUS).emit("min_version", "ok", kms_uri=p.uri, key_version=str(minimum))
    return n


def destroy(p: KeyProvider, version: str | None = None, cryptos: Iterable = (),
            bus: EventBus | None = None) -> list[str]:
    """Destroy key material (one version, or all): every file needing it becomes unreadable."""
    fn = getattr(p, "destroy", None)
    if fn is None:
        raise _unsupported(p, "destroy", "destroy key material")
    gone = [str(v) for v in (fn(version) if version is not None else fn())]
    _drop(cryptos, lambda ref: ref.key == p.identity and (version is None or str(ref.key_version) == str(version)))
    (bus or BUS).emit("destroy", "ok", kms_uri=p.uri, key_version=",".join(gone))
    return gone


def _drop(cryptos, predicate) -> int:
    n = 0
    for c in cryptos:
        n += c.cache.invalidate(predicate)
    return n

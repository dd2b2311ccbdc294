"""Envelope: build a file header for a data key, and authenticate a header once its DEK is known."""
from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass, field, replace

from ..errors import AuthenticationError
from ..format import Header, KeySlot, serialize_unsigned, validate_segment_size
from .suites import FileKeys


@dataclass(frozen=True)
class DataKey:
    """A plaintext DEK with its wrappings. The key bytes never appear in a repr."""

    dek_id: bytes
    key: bytes = field(repr=False)
    slots: tuple[KeySlot, ...]
    tenant: str = ""
    complete: bool = True  # False: some configured KMS was unreachable and holds no slot


def kms_context(dek_id: bytes, tenant: str) -> dict[str, str]:
    """Encryption context / AAD given to every KMS for a wrap (F-23)."""
    return {"heliosdb:format": "1", "heliosdb:tenant": tenant, "heliosdb:dek-id": dek_id.hex()}


def new_header(data_key: DataKey, suite: int, segment_size: int, rng=os.urandom,
               clock=time.time) -> tuple[Header, bytes, FileKeys]:
    """A fresh header (new salt and nonce prefix) for one file, its bytes, and its keys."""
    validate_segment_size(segment_size)
    h = Header(suite, segment_size, rng(32), rng(7), data_key.dek_id, int(clock() * 1000),
               data_key.tenant, data_key.slots)
    keys = FileKeys(data_key.key, h)
    return seal_header(h, keys)


def seal_header(h: Header, keys: FileKeys) -> tuple[Header, bytes, FileKeys]:
    signed = serialize_unsigned(h) + keys.commitment
    mac = keys.header_mac(signed)
    return replace(h, commitment=keys.commitment, mac=mac), signed + mac, keys


def open_header(h: Header, raw: bytes, dek: bytes, path: str | None = None) -> FileKeys:
    """Keys of a parsed header ``h`` (raw bytes ``raw``) after checking commitment and MAC."""
    keys = FileKeys(dek, h)
    signed = bytes(raw[:h_len(raw) - 32])
    ok = hmac.compare_digest(keys.commitment, h.commitment)
    ok &= hmac.compare_digest(keys.header_mac(signed), h.mac)
    if not ok:
        raise AuthenticationError(path)
    return keys


def h_len(raw: bytes) -> int:
    return int.from_bytes(raw[8:12], "big")

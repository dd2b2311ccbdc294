"""Envelope: build a file header for a data key, and authenticate a header once its DEK is known."""
from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass, field, replace

from ..errors import AuthenticationError, FormatError, MisplacedFileError
from ..format import (VERSION, VERSION_1, Header, KeySlot, binding_name, mac_input, serialize_unsigned,
                      validate_segment_size)
from ..format.binding import is_uri
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
               clock=time.time, *, name: str = "", version: int = VERSION) -> tuple[Header, bytes, FileKeys]:
    """A fresh header (new salt and nonce prefix) for one file bound to ``name`` (F-24), its bytes,
    and its keys. ``version=1`` only reproduces the version 1 vectors."""
    validate_segment_size(segment_size)
    h = Header(suite, segment_size, rng(32), rng(7), data_key.dek_id, int(clock() * 1000),
               data_key.tenant, data_key.slots, version=version, name=name)
    keys = FileKeys(data_key.key, h)
    return seal_header(h, keys)


def seal_header(h: Header, keys: FileKeys) -> tuple[Header, bytes, FileKeys]:
    signed = serialize_unsigned(h) + keys.commitment
    mac = keys.header_mac(signed)
    return replace(h, commitment=keys.commitment, mac=mac), signed + mac, keys


def open_header(h: Header, raw: bytes, dek: bytes, path: str | None = None) -> FileKeys:
    """Keys of a parsed header ``h`` (raw bytes ``raw``) after checking commitment and MAC."""
    keys = FileKeys(dek, h)
    signed = mac_input(raw)
    ok = hmac.compare_digest(keys.commitment, h.commitment)
    ok &= hmac.compare_digest(keys.header_mac(signed), h.mac)
    if not ok:
        raise AuthenticationError(path)
    return keys


def check_version(h: Header, read_v1: bool, path: str | None = None) -> None:
    """Version 1 files carry no binding (F-24): read only where explicitly enabled (F-30)."""
    if h.version == VERSION_1 and not read_v1:
        raise FormatError("format version 1 file (not bound to its place): reading version 1 is off; "
                          "enable it (heliosdb.crypto.format.read-v1, CLI --read-v1) and rewrap such files",
                          path)


def name_for(path: str | None) -> str:
    """The binding name (F-24) of ``path``: a URI, or a local path (a relative one taken from the
    current directory, so ``chk-7/_metadata`` gets its job folder); "" without a path."""
    if path is None:
        return ""
    path = os.fspath(path)
    return binding_name(path if is_uri(path) else os.path.abspath(path))


def check_binding(h: Header, expected: str, path: str | None = None) -> None:
    """After the header authenticated: it must be sealed for ``expected`` (F-24). Version 1 headers
    carry no name (check_version decides whether they may be read at all)."""
    if h.version != VERSION_1 and h.name != expected:
        raise MisplacedFileError(path, h.name, expected)


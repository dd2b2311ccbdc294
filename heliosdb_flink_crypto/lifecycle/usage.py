"""Which KEK versions the files under a path still need (``keys usage``).

Reads headers only (no KMS call, no key): per KMS URI and key version, how many files and bytes
name it, their age range and tenants. A file needs *one* of its key slots, so :func:`blocked_by`
names the files that a retirement (minimum version, destroy) would leave with no usable slot. Key
slots are matched to the trusted (configured) KMS URIs by key identity (kms.identity).
Headers are not authenticated here (that needs the keys): run ``verify`` for that.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from ..errors import FormatError
from ..kms.identity import TrustedSet, key_identity, shown
from .files import is_encrypted, iter_files, read_header


def scan(paths: Iterable[str]) -> Iterable[tuple[str, object, int]]:
    """(path, header or an error string, file size) for every file under ``paths``."""
    for path in iter_files(paths):
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if not is_encrypted(f):
                    yield path, "not encrypted", size
                    continue
                h, _ = read_header(f, path)
        except (FormatError, OSError) as e:
            yield path, f"unreadable header: {e}", 0
            continue
        yield path, h, size


def key_usage(paths: Iterable[str], trust: TrustedSet | None = None) -> dict:
    """``{"files": n, "encrypted": n, "other": {path: why}, "keys": {uri: {version: {...}}},
    "untrusted": {uri: {version: {...}}}}``. With ``trust``, a slot counts under the configured URI
    that names its key; slots naming no trusted key are listed under ``untrusted`` (their files
    cannot be opened with this configuration). Without it, every slot counts under its own URI."""
    keys: dict[str, dict[str, dict]] = {}
    untrusted: dict[str, dict[str, dict]] = {}
    report = {"files": 0, "encrypted": 0, "other": {}, "keys": keys, "untrusted": untrusted}
    for path, h, size in scan(paths):
        report["files"] += 1
        if isinstance(h, str):
            report["other"][path] = h
            continue
        report["encrypted"] += 1
        for s in h.slots:
            uri = s.kms_uri if trust is None else trust.uri_for(s.kms_uri)
            table, uri = (keys, uri) if uri is not None else (untrusted, shown(s.kms_uri))
            e = table.setdefault(uri, {}).setdefault(s.key_version, {
                "files": 0, "bytes": 0, "oldest_ms": h.created_ms, "newest_ms": h.created_ms,
                "tenants": [], "example": path})
            e["files"] += 1
            e["bytes"] += size
            e["oldest_ms"] = min(e["oldest_ms"], h.created_ms)
            e["newest_ms"] = max(e["newest_ms"], h.created_ms)
            if h.tenant not in e["tenants"]:
                e["tenants"].append(h.tenant)
    for table in (keys, untrusted):
        for versions in table.values():
            for e in versions.values():
                e["tenants"].sort()
    return report


def version_key(v: str):
    return (0, int(v), "") if v.isdigit() else (1, 0, v)


def blocked_by(paths: Iterable[str], retired: Callable[[str, str], bool],
               trust: TrustedSet | None = None) -> list[tuple[str, str]]:
    """``(path, why)`` for the files that a retirement leaves with no usable key slot: ``why`` is
    ``retired`` (every slot naming a trusted key is ``retired(kms_uri, key_version)``) or
    ``untrusted`` (no slot names a trusted key at all; only with ``trust``)."""
    out = []
    for path, h, _ in scan(paths):
        if isinstance(h, str):
            continue
        usable = [s for s in h.slots if trust is None or trust.uri_for(s.kms_uri) is not None]
        if not usable:
            out.append((path, "untrusted"))
        elif all(retired(s.kms_uri, s.key_version) for s in usable):
            out.append((path, "retired"))
    return out


def _same_key(uri: str, settings) -> Callable[[str], bool]:
    want = key_identity(uri, settings)

    def same(u: str) -> bool:
        try:
            return key_identity(u, settings) == want
        except ValueError:
            return False
    return same


def below(uri: str, minimum: int, settings=None) -> Callable[[str, str], bool]:
    """A ``retired`` predicate: versions of ``uri``'s key below ``minimum``."""
    same = _same_key(uri, settings)
    return lambda u, v: same(u) and v.isdigit() and int(v) < minimum


def destroyed(uri: str, version: str | None, settings=None) -> Callable[[str, str], bool]:
    """A ``retired`` predicate: ``version`` of ``uri``'s key (every version when None)."""
    same = _same_key(uri, settings)
    return lambda u, v: same(u) and (version is None or v == version)

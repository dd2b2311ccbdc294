"""Which KEK versions the files under a path still need (``keys usage``).

Reads headers only (no KMS call, no key): per KMS URI and key version, how many files and bytes
name it, their age range and tenants. A file needs *one* of its key slots, so :func:`blocked_by`
names the files that a retirement (minimum version, destroy) would leave with no usable slot.
Headers are not authenticated here (that needs the keys): run ``verify`` for that.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from ..errors import FormatError
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


def key_usage(paths: Iterable[str]) -> dict:
    """``{"files": n, "encrypted": n, "other": {path: why}, "keys": {uri: {version: {...}}}}``."""
    keys: dict[str, dict[str, dict]] = {}
    report = {"files": 0, "encrypted": 0, "other": {}, "keys": keys}
    for path, h, size in scan(paths):
        report["files"] += 1
        if isinstance(h, str):
            report["other"][path] = h
            continue
        report["encrypted"] += 1
        for s in h.slots:
            e = keys.setdefault(s.kms_uri, {}).setdefault(s.key_version, {
                "files": 0, "bytes": 0, "oldest_ms": h.created_ms, "newest_ms": h.created_ms,
                "tenants": [], "example": path})
            e["files"] += 1
            e["bytes"] += size
            e["oldest_ms"] = min(e["oldest_ms"], h.created_ms)
            e["newest_ms"] = max(e["newest_ms"], h.created_ms)
            if h.tenant not in e["tenants"]:
                e["tenants"].append(h.tenant)
    for versions in keys.values():
        for e in versions.values():
            e["tenants"].sort()
    return report


def version_key(v: str):
    return (0, int(v), "") if v.isdigit() else (1, 0, v)


def blocked_by(paths: Iterable[str], retired: Callable[[str, str], bool]) -> list[str]:
    """Files every one of whose key slots ``retired(kms_uri, key_version)`` would make unusable."""
    out = []
    for path, h, _ in scan(paths):
        if not isinstance(h, str) and all(retired(s.kms_uri, s.key_version) for s in h.slots):
            out.append(path)
    return out


def below(uri: str, minimum: int) -> Callable[[str, str], bool]:
    """A ``retired`` predicate: versions of ``uri`` below ``minimum``."""
    return lambda u, v: u == uri and v.isdigit() and int(v) < minimum


def destroyed(uri: str, version: str | None) -> Callable[[str, str], bool]:
    """A ``retired`` predicate: ``version`` of ``uri`` (every version when None)."""
    return lambda u, v: u == uri and (version is None or v == version)

"""Which KEK versions the files under a path still need (``keys usage``).

Reads headers only (no KMS call, no key): per KMS URI and key version, how many files and bytes
name it, their age range and tenants. A file needs *one* of its key slots, so :func:`blocked_by`
names the files that a retirement (minimum version, destroy) would leave with no usable slot, and
the ones it could not judge (unreadable, not a regular file, a version that is not a number). Key
slots are matched to the trusted (configured) KMS URIs by key identity (kms.identity).
Headers are not authenticated here (that needs the keys): run ``verify`` for that.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator, NamedTuple, Optional

from ..config import number
from ..errors import FormatError
from ..kms.identity import TrustedSet, key_identity
from ..text import shown
from .files import is_encrypted, iter_files, open_file, read_header, reason


class Scanned(NamedTuple):
    path: str
    header: object = None  # the parsed header of an encrypted file, else None
    size: int = 0
    problem: str = ""  # why the file could not be checked (a failure)
    note: str = ""  # not encrypted, or skipped on purpose (not a failure)


def scan(paths: Iterable[str]) -> Iterator[Scanned]:
    """One :class:`Scanned` for every entry under ``paths``."""
    for e in iter_files(paths):
        if e.problem or e.note:
            yield Scanned(e.path, problem=e.problem, note=e.note)
            continue
        try:
            with open_file(e.path) as f:
                size = os.fstat(f.fileno()).st_size
                if not is_encrypted(f):
                    yield Scanned(e.path, size=size, note="not encrypted")
                    continue
                h, _ = read_header(f, e.path)
        except (FormatError, OSError) as err:
            yield Scanned(e.path, problem=f"unreadable header: {reason(err, e.path)}")
            continue
        yield Scanned(e.path, h, size)


def key_usage(paths: Iterable[str], trust: TrustedSet | None = None) -> dict:
    """``{"files": n, "encrypted": n, "other": {path: why}, "failed": {path: why}, "keys": {uri:
    {version: {...}}}, "untrusted": {uri: {version: {...}}}}``; ``failed``: entries that could not be
    checked. With ``trust``, a slot counts under the configured URI that names its key; slots naming
    no trusted key are listed under ``untrusted`` (their files cannot be opened with this
    configuration). Without it, every slot counts under its own URI."""
    keys: dict[str, dict[str, dict]] = {}
    untrusted: dict[str, dict[str, dict]] = {}
    report = {"files": 0, "encrypted": 0, "other": {}, "failed": {}, "keys": keys, "untrusted": untrusted}
    for scanned in scan(paths):
        path, h, size = scanned.path, scanned.header, scanned.size
        report["files"] += 1
        if h is None:
            report["failed" if scanned.problem else "other"][path] = scanned.problem or scanned.note
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
    n = number(v)
    return (0, n, "") if n is not None else (1, 0, v)


#: ``retired(kms_uri, key_version)``: True (unusable after the retirement), False (still usable),
#: None (cannot tell: the version is not a number)
Retired = Callable[[str, str], Optional[bool]]


def blocked_by(paths: Iterable[str], retired: Retired, trust: TrustedSet | None = None
               ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``([(path, why)], {path: problem})``: the files that a retirement leaves with no usable key
    slot, ``why`` being ``retired`` (every slot naming a trusted key is ``retired(kms_uri,
    key_version)``) or ``untrusted`` (no slot names a trusted key at all; only with ``trust``); and the
    entries that could not be checked. A caller must not retire anything while the second is not empty."""
    blocked, unchecked = [], {}
    for s in scan(paths):
        if s.problem:
            unchecked[s.path] = s.problem
        if s.header is None:
            continue
        usable = [slot for slot in s.header.slots if trust is None or trust.uri_for(slot.kms_uri) is not None]
        if not usable:
            blocked.append((s.path, "untrusted"))
            continue
        verdicts = [retired(slot.kms_uri, slot.key_version) for slot in usable]
        if False in verdicts:
            continue
        if None in verdicts:
            odd = ", ".join(shown(repr(slot.key_version)) for slot, v in zip(usable, verdicts) if v is None)
            unchecked[s.path] = f"key version {odd} is not a number"
        else:
            blocked.append((s.path, "retired"))
    return blocked, unchecked


def _same_key(uri: str, settings) -> Callable[[str], bool]:
    want = key_identity(uri, settings)

    def same(u: str) -> bool:
        try:
            return key_identity(u, settings) == want
        except ValueError:
            return False
    return same


def below(uri: str, minimum: int, settings=None) -> Retired:
    """A ``retired`` predicate: versions of ``uri``'s key below ``minimum``."""
    same = _same_key(uri, settings)

    def retired(u: str, v: str) -> bool | None:
        if not same(u):
            return False
        n = number(v)
        return None if n is None else n < minimum
    return retired


def destroyed(uri: str, version: str | None, settings=None) -> Retired:
    """A ``retired`` predicate: ``version`` of ``uri``'s key (every version when None)."""
    same = _same_key(uri, settings)
    return lambda u, v: same(u) and (version is None or v == version)

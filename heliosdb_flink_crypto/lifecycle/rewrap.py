"""Rewrap and reencrypt every encrypted file under a checkpoint or savepoint directory.

*Rewrap* (after a rotation or a KMS move): the file's DEK is unwrapped once and wrapped again under
the target KMS URIs' current versions; only the header changes. The body keys come from the DEK
and header fields the slots do not touch (engine/suites.py), so the body is copied byte for byte.
The header MAC is recomputed over the new slots. The header may change length, so each file is
written anew beside the old one and renamed over it (files.replacing: crash-safe).

*Reencrypt* (compromise recovery: a DEK or KEK may be known to an attacker): every byte is
decrypted, authenticated and encrypted again under a new DEK wrapped by the target URIs.

Both keep the tenant, suite, segment size and binding name (rule F-24), and emit one ``rewrap`` /
``reencrypt`` event per file. A format version 1 file (read only with ``read_v1``) becomes a version 2
file bound to its path; its body keys change with the version, so rewrap seals its body again under
the same DEK. ``rebind=True`` (rewrap) accepts whatever name a file is sealed for and binds it to its
path: for trees an operator moved or renamed on purpose (it accepts a file swapped in just as well).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

from ..crypto import CheckpointCrypto, name_for
from ..engine import DataKey, EncryptingWriter, new_header, open_header, seal_header
from ..errors import HeliosCryptoError, KeyAccessError
from ..format import VERSION, VERSION_1, parse
from ..kms.cache import DekCache
from ..kms.identity import stored_uri
from ..text import shown
from .files import is_encrypted, iter_files, open_file, read_header, reason, replacing

COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileResult:
    path: str
    status: str  # rewrapped, reencrypted, current, skipped, failed
    detail: str = ""


@dataclass
class Summary:
    results: list[FileResult]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


def rewrap_file(path: str, crypto: CheckpointCrypto, targets: Sequence[str] | None = None,
                verify: bool = False, rebind: bool = False) -> FileResult:
    """Rewrap one file's DEK under ``targets`` (default: the trusted URIs its header's slots name),
    current versions; with ``rebind`` also bind it to ``path`` whatever name it is sealed for.

    ``crypto`` opens the file (its trusted URIs decide which KMS may unwrap) and wraps for the targets.
    """
    t0 = time.perf_counter()
    with open_file(path, follow=False) as f:
        st = os.fstat(f.fileno())
        if not is_encrypted(f):
            return FileResult(path, "skipped", "not an encrypted file")
        h, raw = read_header(f, path)
        accept = h.name if rebind else None  # None: the name its path gives (F-24)
        h, keys = crypto.open_file(raw, path, name=accept)
        name = name_for(path) if rebind or h.version == VERSION_1 else h.name
        uris = list(targets) if targets else same_keys(crypto, h, path)
        current = [(stored_uri(u), crypto.provider(u).current_key_version()) for u in uris]
        before = [(s.kms_uri, s.key_version) for s in h.slots]
        if before == current and h.version == VERSION and h.name == name:
            return FileResult(path, "current", "already wrapped under " + _names(current))
        if verify:
            with crypto.reader(f, path=path, name=accept) as r:
                r.verify_all()
        dek = crypto.data_key(h, path)  # in the cache since open_file
        slots, _ = crypto.wrap_dek(dek, h.dek_id, h.tenant, uris, path=path, file_id=h.file_id)
        if h.version == VERSION_1:  # other body keys in version 2: the body is sealed again
            _, new_raw, new_keys = new_header(DataKey(h.dek_id, dek, tuple(slots), h.tenant), h.suite,
                                              h.segment_size, name=name)
            with crypto.reader(f, path=path) as r, replacing(path, st) as out:
                with EncryptingWriter(out, new_raw, new_keys, h.segment_size) as w:
                    shutil.copyfileobj(r, w, COPY_CHUNK)
        else:
            new_h, new_raw, _ = seal_header(replace(h, slots=tuple(slots), name=name), keys)
            open_header(parse(new_raw, path), new_raw, dek, path)  # the new header authenticates
            with replacing(path, st) as out:
                out.write(new_raw)
                f.seek(h.length)
                shutil.copyfileobj(f, out, COPY_CHUNK)
    after = [(s.kms_uri, s.key_version) for s in slots]
    crypto.bus.emit("rewrap", "ok", path=path, file_id=h.file_id, tenant=h.tenant, kms_uri=uris[0],
                    key_version=after[0][1], previous=_names(before), seconds=time.perf_counter() - t0)
    return FileResult(path, "rewrapped", f"{_names(before)} -> {_names(after)}")


def same_keys(crypto: CheckpointCrypto, h, path: str | None = None) -> list[str]:
    """The configured URIs that name the keys of ``h``'s slots (a rotation's targets). Every slot
    must name a trusted key: a slot is never dropped silently, nor its URI ever opened."""
    uris, untrusted = [], []
    for s in h.slots:
        uri = crypto.trusted_uri(s.kms_uri)
        if uri is None:
            untrusted.append(shown(s.kms_uri))
        elif uri not in uris:
            uris.append(uri)
    if untrusted:
        raise KeyAccessError(f"key slot(s) name KMS URIs that are not trusted here: {', '.join(untrusted)}; "
                             "trust them (--kms) or choose the targets with --to", path)
    return uris


def reencrypt_file(path: str, opener: CheckpointCrypto, writers: Callable[[object], CheckpointCrypto]) -> FileResult:
    """Decrypt ``path`` with ``opener`` and encrypt it again with ``writers(header)`` (a new DEK)."""
    t0 = time.perf_counter()
    with open_file(path, follow=False) as f:
        st = os.fstat(f.fileno())
        if not is_encrypted(f):
            return FileResult(path, "skipped", "not an encrypted file")
        h, _ = read_header(f, path)
        w = writers(h)
        with opener.reader(f, path=path) as r, replacing(path, st) as out:
            with w.writer(out, tenant=h.tenant, name=name_for(path)) as enc:
                shutil.copyfileobj(r, enc, COPY_CHUNK)
    opener.bus.emit("reencrypt", "ok", path=path, file_id=h.file_id, tenant=h.tenant, kms_uri=w.kms_uris[0],
                    bytes=r.size, seconds=time.perf_counter() - t0)
    return FileResult(path, "reencrypted", f"{r.size} bytes under a new data key ({', '.join(w.kms_uris)})")


def _names(pairs) -> str:
    return ", ".join(f"{u} v{v}" if v else u for u, v in pairs)


def run(paths: Iterable[str], one: Callable[[str], FileResult], progress=None, bus=None) -> Summary:
    """Apply ``one`` to every file under ``paths``; a failing file is recorded, never fatal, and so is
    every entry that could not be checked (files.iter_files).
    ``progress(total)`` makes an object with ``step(path)`` and ``done()`` (cli.progress.Progress)."""
    entries = list(iter_files(paths))
    if progress is not None:
        progress = progress(sum(1 for e in entries if not (e.problem or e.note)))
    results = []
    for e in entries:
        path = e.path
        if e.problem or e.note:
            results.append(FileResult(path, "failed" if e.problem else "skipped", e.problem or e.note))
            continue
        try:
            res = one(path)
        except FileNotFoundError:
            res = FileResult(path, "skipped", "deleted meanwhile")
        except (HeliosCryptoError, OSError, ValueError) as err:
            res = FileResult(path, "failed", reason(err, path))
            if bus is not None:
                bus.emit("rewrap", "error", path=path, error=str(err))
        results.append(res)
        if progress is not None:
            progress.step(path)
    if progress is not None:
        progress.done()
    return Summary(results)


def reencrypt_writers(targets: Sequence[str] | None, settings=None, bus=None,
                      opener: CheckpointCrypto | None = None) -> Callable[[object], CheckpointCrypto]:
    """Per (targets, suite, segment size, tenant) one CheckpointCrypto with a fresh DEK cache, so no
    data key from before the recovery is ever reused. Without ``targets``, the trusted URIs of
    ``opener`` that the header's slots name (:func:`same_keys`)."""
    made: dict[tuple, CheckpointCrypto] = {}

    def for_header(h) -> CheckpointCrypto:
        if not targets and opener is None:
            raise ValueError("reencrypt needs target KMS URIs or a crypto whose trusted URIs name them")
        uris = tuple(targets) if targets else tuple(same_keys(opener, h))
        key = (uris, h.suite, h.segment_size, h.tenant)
        if key not in made:
            made[key] = CheckpointCrypto(uris, suite=h.suite, segment_size=h.segment_size, tenant=h.tenant,
                                         settings=settings, cache=DekCache(), bus=bus)
        return made[key]
    return for_header

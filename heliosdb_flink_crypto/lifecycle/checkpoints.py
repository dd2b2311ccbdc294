"""Check checkpoint and savepoint folders as a whole (``verify --checkpoint``).

A folder holding ``_metadata`` is one checkpoint (``chk-<n>``, inside its job's folder) or a
savepoint; a folder holding ``chk-*``, ``shared`` or ``taskowned`` is a job's folder (every retained
checkpoint in it, i.e. every ``chk-<n>`` holding a ``_metadata``); a folder of those is each of them.
For each checkpoint checked: ``_metadata``
authenticates, is bound to its place and holds checkpoint ``<n>``; every file it references exists,
authenticates as a whole, is bound to its place and holds the number of bytes ``_metadata`` records.
Then every file under the job's folder (or the savepoint folder) that no retained checkpoint
references is an orphan. Files are opened through :class:`CheckpointCrypto` only: nothing is
trusted before it authenticated. What is found: :mod:`.checkpoint_report`.
"""
from __future__ import annotations

import os
import re

from ..crypto import CheckpointCrypto
from ..errors import HeliosCryptoError
from ..flink.metadata import CheckpointMetadata, FileRef, parse_metadata
from .checkpoint_report import Checked, CheckpointVerification, Problem, problem_kind
from .files import FOLDER_NOT_READ, iter_files

METADATA = "_metadata"
CHECKPOINT_DIR = re.compile(r"chk-([0-9]+)")
JOB_SUBDIRS = ("shared", "taskowned")
LOCAL_SCHEMES = ("", "file", "enc+file")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def verify_checkpoints(crypto: CheckpointCrypto, paths) -> CheckpointVerification:
    """Check every checkpoint, savepoint or job folder in ``paths`` (see the module docstring)."""
    out = CheckpointVerification()
    scopes: dict[str, set[str]] = {}  # job or savepoint folder -> checkpoint folders to check
    for p in paths:
        for scope, wanted in _targets(os.path.abspath(p), out):
            scopes.setdefault(scope, set()).update(wanted)
    for scope, wanted in scopes.items():
        _Scope(crypto, scope, out).check(sorted(wanted, key=_checkpoint_order))
    return out


def _checkpoint_order(folder: str):
    m = CHECKPOINT_DIR.fullmatch(os.path.basename(folder))
    return (0, int(m.group(1)), "") if m else (1, 0, folder)


def _targets(path: str, out: CheckpointVerification) -> list[tuple[str, list[str]]]:
    """(scope folder, checkpoint folders to check) for ``path``: a checkpoint, savepoint or job
    folder, or a folder of those (``execution.checkpointing.dir``, a savepoint directory) whose
    other entries are reported, never skipped silently."""
    if os.path.basename(path) == METADATA and os.path.isfile(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        out.problems.append(Problem(path, "unreadable", "not a folder (give a checkpoint, savepoint or job folder)"))
        return []
    found = _classify(path)
    if found:
        return [found]
    try:
        entries = sorted(os.listdir(path))
    except OSError as e:
        out.problems.append(Problem(path, "unreadable", f"folder not readable ({e.strerror})"))
        return []
    targets, others = [], []
    for name in entries:
        sub = os.path.join(path, name)
        found = _classify(sub) if os.path.isdir(sub) and not os.path.islink(sub) else None
        (targets.append(found) if found else others.append(sub))
    if not targets:
        out.problems.append(Problem(path, "unreadable", "holds no _metadata and no chk-* folders: not a "
                                    "checkpoint, savepoint or job folder, nor a folder of those"))
    for sub in others if targets else ():
        out.problems.append(Problem(sub, "unchecked", "not a checkpoint, savepoint or job folder"))
    return targets


def _classify(path: str) -> tuple[str, list[str]] | None:
    """(scope folder, checkpoint folders to check) if ``path`` is a checkpoint, savepoint or job folder."""
    if os.path.isfile(os.path.join(path, METADATA)):
        parent = os.path.dirname(path)
        return (parent if CHECKPOINT_DIR.fullmatch(os.path.basename(path)) else path), [path]
    try:
        names = os.listdir(path)
    except OSError:
        return None
    if any(CHECKPOINT_DIR.fullmatch(n) or n in JOB_SUBDIRS for n in names):
        return path, _retained(path)
    return None


def _retained(job: str) -> list[str]:
    """The retained checkpoints of a job's folder: chk-<n> folders holding a _metadata file."""
    try:
        names = os.listdir(job)
    except OSError:
        return []
    found = [os.path.join(job, n) for n in names if CHECKPOINT_DIR.fullmatch(n)]
    return sorted((d for d in found if os.path.isfile(os.path.join(d, METADATA))), key=_checkpoint_order)


def components(uri: str) -> tuple[str, list[str]]:
    """(scheme, path components) of a path or URI, the authority dropped."""
    m = _SCHEME.match(uri)
    scheme, rest = (m.group(1).lower(), uri[m.end():]) if m and len(m.group(1)) > 1 else ("", uri)
    if scheme and rest.startswith("//"):
        rest = rest[2:].partition("/")[2]
    return scheme, [c for c in rest.split("/") if c not in ("", ".")]


class _Scope:
    """One job folder (its retained checkpoints) or one savepoint folder."""

    def __init__(self, crypto: CheckpointCrypto, folder: str, out: CheckpointVerification):
        self.crypto, self.folder, self.out = crypto, folder, out
        self.is_job = not os.path.isfile(os.path.join(folder, METADATA))
        self.verified: dict[str, int | None] = {}  # local path -> plaintext length (None: failed)

    def problem(self, path: str, kind: str, detail: str) -> None:
        self.out.problems.append(Problem(path, kind, detail))

    def check(self, wanted: list[str]) -> None:
        retained = _retained(self.folder) if self.is_job else [self.folder]
        referenced, complete = set(), True
        for folder in sorted(set(retained) | set(wanted), key=_checkpoint_order):
            checked = Checked(folder, "checkpoint" if CHECKPOINT_DIR.fullmatch(os.path.basename(folder))
                              else "savepoint")
            if folder in wanted:
                self.out.checked.append(checked)
            meta = self.load(folder, checked)
            if meta is None:
                complete = False
                continue
            referenced.add(os.path.join(folder, METADATA))
            referenced.update(path for _, path in self.resolved(folder, meta) if path)
            if folder in wanted:
                self.verify_refs(folder, meta, checked)
        if complete:
            self.orphans(referenced)
        else:
            self.problem(self.folder, "unchecked", "orphans not looked for: a retained checkpoint's "
                         "_metadata could not be read, so what it references is unknown")

    def load(self, folder: str, checked: Checked) -> CheckpointMetadata | None:
        """The authenticated, parsed _metadata of ``folder``; None (a problem reported) on failure."""
        path = os.path.join(folder, METADATA)
        try:
            with self.crypto.open_path(path) as r:
                data = r.read()
                r.verify_all()
            meta = parse_metadata(data, path)
        except (HeliosCryptoError, OSError) as e:
            self.problem(path, *problem_kind(e))
            return None
        self.count(path, len(data))
        checked.checkpoint_id, checked.metadata_version = meta.checkpoint_id, meta.version
        checked.inline = len(meta.inline)
        m = CHECKPOINT_DIR.fullmatch(os.path.basename(folder))
        if m and int(m.group(1)) != meta.checkpoint_id:
            self.problem(path, "checkpoint-id", f"holds checkpoint {meta.checkpoint_id}, but lies in "
                         f"{os.path.basename(folder)}: another checkpoint's _metadata (rolled back or swapped)")
            return None
        return meta

    def count(self, path: str, nbytes: int) -> None:
        self.verified[path] = nbytes
        self.out.files_verified += 1
        self.out.bytes_verified += nbytes

    def resolved(self, folder: str, meta: CheckpointMetadata) -> list[tuple[FileRef, str | None]]:
        return [(ref, self.local(folder, ref)) for ref in meta.files]

    def local(self, folder: str, ref: FileRef) -> str | None:
        """Where ``ref`` is on this machine: relative handles below the _metadata folder; absolute
        ones below the folder checked, also when that tree was copied or moved (found by the folder's
        name followed by what Flink writes there); else the path itself on a local filesystem; None
        for a file on another filesystem outside the folder checked."""
        scheme, parts = components(ref.path)
        if ".." in parts or (ref.relative and (scheme or ref.path.startswith("/"))):
            return None
        if ref.relative:
            return os.path.join(folder, *parts)
        as_is = "/" + "/".join(parts)
        if scheme in LOCAL_SCHEMES and as_is.startswith(self.folder + os.sep):
            return as_is
        name = os.path.basename(self.folder)
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] == name and (not self.is_job or parts[i + 1] in JOB_SUBDIRS
                                     or CHECKPOINT_DIR.fullmatch(parts[i + 1])):
                return os.path.join(self.folder, *parts[i + 1:])
        return as_is if scheme in LOCAL_SCHEMES else None

    def verify_refs(self, folder: str, meta: CheckpointMetadata, checked: Checked) -> None:
        meta_name = os.path.join(os.path.basename(folder), METADATA)
        seen = set()
        for ref, path in self.resolved(folder, meta):
            why = f"referenced by {meta_name} ({ref.where})"
            if path is None:
                self.problem(ref.path, "unchecked", f"{why}: " + (
                    "a relative path out of its folder (Flink writes none)" if ref.relative else
                    "outside the folder checked, on a filesystem this machine cannot open; check that folder too"))
                continue
            if path not in seen:
                seen.add(path)
                checked.files += 1
                checked.external += not path.startswith(self.folder + os.sep)
            size = self.verify_file(path, why)
            if size is None:
                continue
            if ref.segment and ref.offset + ref.size > size:
                self.problem(path, "size", f"{why}: segment of {ref.size} bytes at {ref.offset} lies "
                             f"beyond the file's {size} bytes")
            elif not ref.segment and ref.size >= 0 and (ref.size != size if ref.exact else ref.size > size):
                self.problem(path, "size", f"{why}: _metadata records {ref.size} bytes, the file holds "
                             f"{size} (another file's content under this name?)")

    def verify_file(self, path: str, why: str) -> int | None:
        """The file's plaintext length once it authenticated as a whole (each file once)."""
        if path in self.verified:
            return self.verified[path]
        self.verified[path] = None
        if not os.path.lexists(path):
            self.problem(path, "missing", f"{why}, but not there")
            return None
        if os.path.islink(path) or not os.path.isfile(path):
            self.problem(path, "unreadable", f"{why}, but not a regular file")
            return None
        try:
            with self.crypto.open_path(path) as r:
                size = r.verify_all()
        except (HeliosCryptoError, OSError) as e:
            self.problem(path, *problem_kind(e))
            return None
        self.count(path, size)
        return size

    def orphans(self, referenced: set[str]) -> None:
        """Every entry under the folder that no retained checkpoint references (files.iter_files:
        links are not followed; a folder that cannot be read is named)."""
        for entry in iter_files([self.folder]):
            if entry.problem.startswith(FOLDER_NOT_READ):
                self.problem(entry.path, "unreadable", f"{entry.problem}: its files could not be looked at")
            elif entry.path not in referenced:
                self.problem(entry.path, "orphan", "referenced by no retained checkpoint"
                             if self.is_job else "not referenced by the savepoint's _metadata")

"""File helpers shared by rewrap, reencrypt and the usage report: walk a tree, read a header,
replace a file crash-safely."""
from __future__ import annotations

import contextlib
import os
import secrets

from ..format import MAGIC, PREFIX_LEN, Header, parse, parse_prefix

TMP_MARK = ".hfc-tmp-"


def iter_files(paths):
    """Regular files under ``paths`` (files or directories), sorted, symlinks not followed, our own
    temporary files (``*.hfc-tmp-*``, left by an interrupted run) skipped."""
    for p in paths:
        p = local_path(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if TMP_MARK not in name and not os.path.islink(full):
                        yield full
        else:
            yield p


def local_path(p: str) -> str:
    """A ``file://`` or ``enc+file://`` URI as a plain path (other strings unchanged)."""
    for scheme in ("enc+file://", "file://"):
        if p.startswith(scheme):
            return p[len(scheme):]
    return p


def is_encrypted(f) -> bool:
    f.seek(0)
    return f.read(len(MAGIC)) == MAGIC


def read_header(f, path: str | None = None) -> tuple[Header, bytes]:
    """Parse the header at the start of ``f`` (not yet authenticated): (header, raw header bytes)."""
    f.seek(0)
    head = f.read(PREFIX_LEN)
    _, hlen, _ = parse_prefix(head, path)
    head += f.read(hlen - PREFIX_LEN)
    return parse(head, path), head


@contextlib.contextmanager
def replacing(path: str, stat: os.stat_result):
    """A temp file beside ``path`` (same mode) to write the new content into; on success it is
    fsynced and renamed over ``path`` (atomic: readers see the old or the new file, never a mix),
    then the directory is fsynced. On failure the temp file is removed and ``path`` is untouched.
    Refuses to replace ``path`` if it changed meanwhile."""
    d, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(d, f".{name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.st_mode & 0o7777)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        now = os.stat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (stat.st_ino, stat.st_size, stat.st_mtime_ns):
            raise OSError(f"{path}: changed while being rewritten; left as it is")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)

"""File helpers shared by verify, rewrap, reencrypt and the usage report: walk a tree (reporting
what could not be entered), read a header, replace a file crash-safely."""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import HeliosCryptoError
from ..format import MAGIC, PREFIX_LEN, Header, parse, parse_prefix
from ..localfile import kind, open_regular

TMP_MARK = ".hfc-tmp-"
#: How an :class:`Entry`'s ``problem`` starts for a folder that could not be listed.
FOLDER_NOT_READ = "folder not read"


@dataclass(frozen=True)
class Entry:
    """One thing found under the paths given: a regular file to process (``problem`` and ``note``
    empty), an entry that could not be checked (``problem``: a failure), or one skipped on purpose
    (``note``: reported, not a failure)."""

    path: str
    problem: str = ""
    note: str = ""


def iter_files(paths: Iterable[str]) -> Iterator[Entry]:
    """Every entry under ``paths`` (files or directories, recursive, sorted by name): regular files,
    and every entry that is not one or could not be entered (unreadable folder, FIFO, socket, device,
    symbolic link, loop) as a problem, so nothing is left out silently. A path given that is a
    symbolic link is followed; links below it are not (their targets may lie outside the tree).
    Our own temporary files (``*.hfc-tmp-*``, left by an interrupted run) are noted, not processed."""
    for p in paths:
        p = local_path(p)
        try:
            st = os.stat(p)
        except OSError as e:
            yield Entry(p, _missing(p, e))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(p, {(st.st_dev, st.st_ino)})
        else:
            yield _entry(p, st)


def _walk(folder: str, seen: set) -> Iterator[Entry]:
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
    except OSError as e:
        yield Entry(folder, f"{FOLDER_NOT_READ}: {e.strerror or e}")
        return
    for name in names:
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            yield Entry(full, note="deleted meanwhile")
            continue
        except OSError as e:
            yield Entry(full, f"not read: {e.strerror or e}")
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                yield Entry(full, "a folder loop (seen before on this walk)")
                continue
            yield from _walk(full, seen | {(st.st_dev, st.st_ino)})
        elif stat.S_ISLNK(st.st_mode):
            yield Entry(full, _link(full))
        elif TMP_MARK in name and stat.S_ISREG(st.st_mode):
            yield Entry(full, note="temporary file of an interrupted rewrap (safe to delete)")
        else:
            yield _entry(full, st)


def _entry(path: str, st: os.stat_result) -> Entry:
    return Entry(path) if stat.S_ISREG(st.st_mode) else Entry(path, f"{kind(st.st_mode)}, not a regular file")


def _link(path: str) -> str:
    try:
        os.stat(path)
    except OSError as e:
        return _missing(path, e)
    return "a symbolic link inside a tree (not followed: name its target instead)"


def _missing(path: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "a symbolic link loop"
    if e.errno == errno.ENOENT and os.path.islink(path):
        return "a dangling symbolic link"
    return (e.strerror or str(e)).lower() if e.errno == errno.ENOENT else f"not read: {e.strerror or e}"


def reason(e: BaseException, path: str) -> str:
    """An error as the tail of a line that already names ``path``."""
    text = e.strerror if isinstance(e, OSError) and e.strerror and not isinstance(e, HeliosCryptoError) else str(e)
    return text[len(path) + 2:] if text.startswith(f"{path}: ") else text


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
def replacing(path: str, st: os.stat_result):
    """A temp file beside ``path`` (same mode) to write the new content into; on success it is
    fsynced and renamed over ``path`` (atomic: readers see the old or the new file, never a mix),
    then the directory is fsynced. On failure the temp file is removed and ``path`` is untouched.
    Refuses to replace ``path`` if it changed meanwhile."""
    d, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(d, f".{name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        now = os.stat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
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


def open_file(path: str, *, follow: bool = True):
    """``path`` opened for reading, buffered: regular files only (localfile.open_regular);
    ``follow=False`` also refuses a symbolic link (for files that are rewritten in place)."""
    return os.fdopen(open_regular(path, follow=follow), "rb")

"""Local files opened safely, whatever is found at a path.

:func:`open_regular` opens without blocking (a FIFO would wait for a writer forever) and checks with
``fstat`` on the open descriptor that it holds a regular file, so a FIFO, socket, device or directory
fails with one clear error and a path swapped between a check and the open cannot slip through.
:class:`PositionalFile` reads by position (``pread``): a file that shrinks while it is read gives a
short read, never a signal (which a memory map of it would).
"""
from __future__ import annotations

import errno
import io
import os
import stat

from .errors import NotRegularFileError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISLNK, "a symbolic link"))


def kind(mode: int) -> str:
    """What a non-regular file is, in words (``a FIFO``)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str, *, follow: bool = True) -> int:
    """A read-only descriptor of the regular file at ``path``; NotRegularFileError for anything else.
    ``follow=False``: a symbolic link at ``path`` itself is refused too."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegularFileError(path, "a symbolic link loop" if follow else "a symbolic link") from None
        if e.errno == errno.ENXIO:  # a socket, or a FIFO without a reader
            raise NotRegularFileError(path, kind(os.lstat(path).st_mode)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class PositionalFile(io.FileIO):
    """A read-only :class:`io.FileIO` over a regular file whose reads are positional (``pread`` at the
    current position): a file cut meanwhile gives short reads, never a signal."""

    @classmethod
    def open(cls, path: str, *, follow: bool = True) -> "PositionalFile":
        f = cls(open_regular(path, follow=follow), "rb", closefd=True)
        f.name = path
        return f

    def readinto(self, b) -> int:
        n = os.preadv(self.fileno(), [b], self.tell())
        self.seek(n, os.SEEK_CUR)
        return n

"""Where sealed audit lines go: a JSON-lines file with size-based rotation, a stream (stderr),
syslog. A sink has ``write(line)``, ``flush()`` and ``close()``; only the audit log's writer
thread calls them, so they need no locking.

File rotation: when the active file would grow past ``max_bytes`` it is renamed to
``<path>.<n>`` (n = 1, 2, 3, ... never reused, zero-padded to six digits) and a new active file
is started. The hash chain simply continues into the new file; ``audit verify`` orders a set by
these numbers, the active file last. ``max_files`` rotated files are kept (0 = keep all).
"""
from __future__ import annotations

import json
import logging.handlers
import os
import re
import socket
import sys

#: A rotated file: ``<active file>.<n>``, n of six or more digits.
ROTATED = re.compile(r"^(?P<base>.+)\.(?P<n>\d{6,})$")


def expand_path(path: str) -> str:
    """``{pid}`` and ``{host}`` in a configured path: one log per process."""
    return path.replace("{pid}", str(os.getpid())).replace("{host}", socket.gethostname())


def rotated_files(path: str) -> list[tuple[int, str]]:
    """(n, file) of the rotated files of ``path``, oldest first."""
    d, base = os.path.split(os.path.abspath(path))
    out = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    for name in names:
        m = ROTATED.match(name)
        if m and m.group("base") == base:
            out.append((int(m.group("n")), os.path.join(d, name)))
    return sorted(out)


def log_set(path: str) -> list[str]:
    """Every file of the log at ``path`` in chain order: rotated files oldest first, then ``path``."""
    files = [f for _, f in rotated_files(path)]
    if os.path.exists(path):
        files.append(path)
    return files


def tail_lines(path: str, chunk: int = 65536) -> list[str]:
    """The complete non-empty lines in the last ``chunk`` bytes of a file (first may be partial)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chunk))
            data = f.read()
    except FileNotFoundError:
        return []
    return [x.decode("utf-8", "replace") for x in data.split(b"\n") if x.strip()]


class FileSink:
    def __init__(self, path: str, max_bytes: int = 64 << 20, max_files: int = 20):
        if max_bytes < 1024:
            raise ValueError("an audit file must be allowed at least 1 kb before it rotates")
        self.path, self.max_bytes, self.max_files = os.path.abspath(path), max_bytes, max_files
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._f = None
        self._open()

    def __repr__(self) -> str:
        return f"FileSink({self.path!r})"

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._f = os.fdopen(fd, "a", encoding="utf-8")
        self._size = self._f.tell()
        if self._size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            if torn:  # a crash left a partial line: end it, so the next record stands alone
                self._f.write("\n")
                self._size += 1

    def last_record(self) -> dict | None:
        """The newest parseable record of the set (to continue its chain); a torn last line left
        by a crash is skipped (``verify`` accepts it when a restart follows it)."""
        for f in reversed(log_set(self.path)):
            for line in reversed(tail_lines(f)):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    return rec
        return None

    def write(self, line: str) -> None:
        n = len(line) + 1
        if self._size and self._size + n > self.max_bytes:
            self.rotate()
        self._f.write(line + "\n")
        self._size += n

    def rotate(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        done = rotated_files(self.path)
        n = done[-1][0] + 1 if done else 1
        os.rename(self.path, f"{self.path}.{n:06d}")
        if self.max_files:
            for _, old in done[:max(0, len(done) + 1 - self.max_files)]:
                os.unlink(old)
        self._open()

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._f and not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class StreamSink:
    """Lines to a text stream; ``None`` means the current ``sys.stderr``."""

    def __init__(self, stream=None):
        self._stream = stream

    def __repr__(self) -> str:
        return "StreamSink()"

    def write(self, line: str) -> None:
        (self._stream or sys.stderr).write(line + "\n")

    def flush(self) -> None:
        (self._stream or sys.stderr).flush()

    def close(self) -> None:
        self.flush()


FACILITIES = ("auth", "authpriv", "daemon", "user", "local0", "local1", "local2", "local3",
              "local4", "local5", "local6", "local7")


def syslog_address(address: str):
    """``/dev/log`` (a Unix socket path) or ``host:port`` (UDP)."""
    if address.startswith("/"):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"syslog address {address!r} is neither a socket path nor host:port")
    return (host, int(port))


class SyslogSink:
    """Each line as one syslog message (``heliosdb-flink-crypto[pid]: {json}``), priority info."""

    def __init__(self, address: str = "/dev/log", facility: str = "authpriv"):
        if facility not in FACILITIES:
            raise ValueError(f"syslog facility {facility!r} is not one of {', '.join(FACILITIES)}")
        h = logging.handlers.SysLogHandler
        self._handler = h(address=syslog_address(address), facility=h.facility_names[facility],
                          socktype=socket.SOCK_DGRAM)
        self._handler.ident = f"heliosdb-flink-crypto[{os.getpid()}]: "
        self._handler.handleError = self._raise

    def __repr__(self) -> str:
        return "SyslogSink()"

    @staticmethod
    def _raise(record):  # let the audit log count the failure instead of logging's own print
        raise

    def write(self, line: str) -> None:
        self._handler.emit(logging.LogRecord("audit", logging.INFO, "", 0, line, None, None))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._handler.close()

"""What the CLI prints for people: every line passes :func:`clean` first.

Paths found in a tree, header fields (tenant, KMS URI, key version) and error messages that quote
them are chosen by whoever could write to storage. Printed raw, a terminal would obey the escape
sequences in them (retitle the window, clear the screen, rewrite an earlier ``FAILED`` line with
``\\r``, reorder text with bidirectional controls), and a file name that is not UTF-8 would stop the
run with an encoding error. :func:`clean` shows every character that is not printable as an escape
(``\\x1b``, ``\\u202e``; the bytes of a non-UTF-8 name as ``\\xff``). JSON output needs nothing more:
``json.dumps`` escapes these already.
"""
from __future__ import annotations

import logging
import sys


def clean(text) -> str:
    """``text`` with every non-printable character (controls, format characters, line and paragraph
    separators, undecodable bytes) written as a backslash escape."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    n = ord(ch)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def say(*parts, err: bool = False, sep: str = " ") -> None:
    """Print one line (``parts`` joined by ``sep``), cleaned, on stdout (``err``: stderr)."""
    stream = sys.stderr if err else sys.stdout
    print(clean(sep.join(str(p) for p in parts)), file=stream)


class CleanFormatter(logging.Formatter):
    """A log formatter whose every line is cleaned (log messages quote paths and header fields)."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(clean(line) for line in super().format(record).split("\n"))

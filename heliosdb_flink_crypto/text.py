"""Untrusted text made safe to show: the one escaping every message and every CLI line goes through.

Paths found in a tree, header fields (tenant, KMS URI, key version) and error messages that quote
them are chosen by whoever could write to storage. Shown raw, a terminal would obey the escape
sequences in them (retitle the window, clear the screen, rewrite an earlier ``FAILED`` line with
``\\r``, reorder text with bidirectional controls), and a file name that is not UTF-8 would stop a
run with an encoding error. :func:`shown` writes every character that is not printable as an escape
(``\\x1b``, ``\\r``, ``\\u202e``; the bytes of a non-UTF-8 name as ``\\xff``). JSON output needs
nothing more: ``json.dumps`` escapes these already.
"""
from __future__ import annotations


def shown(text) -> str:
    """``text`` with every non-printable character (controls, format characters, line and paragraph
    separators, undecodable bytes) written as a backslash escape."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    return ascii(c)[1:-1]

"""What the CLI prints for people: every line passes :func:`..text.shown` first (untrusted strings,
docs in text.py)."""
from __future__ import annotations

import logging
import sys

from ..text import shown


def say(*parts, err: bool = False, sep: str = " ") -> None:
    """Print one line (``parts`` joined by ``sep``), escaped, on stdout (``err``: stderr)."""
    print(shown(sep.join(str(p) for p in parts)), file=sys.stderr if err else sys.stdout)


class CleanFormatter(logging.Formatter):
    """A log formatter whose every line is escaped (log messages quote paths and header fields)."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(shown(line) for line in super().format(record).split("\n"))

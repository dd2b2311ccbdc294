"""What the CLI prints for people: every line passes :func:`..text.shown` first (untrusted strings,
docs in text.py; log records are escaped by logsafe.RedactingFilter)."""
from __future__ import annotations

import sys

from ..text import shown


def say(*parts, err: bool = False, sep: str = " ") -> None:
    """Print one line (``parts`` joined by ``sep``), escaped, on stdout (``err``: stderr)."""
    print(shown(sep.join(str(p) for p in parts)), file=sys.stderr if err else sys.stdout)


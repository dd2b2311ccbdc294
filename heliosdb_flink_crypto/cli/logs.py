"""The CLI's logging: ``-v`` is for this package only; SDK wire logs need a loud flag and are redacted.

KMS SDKs log request and response bodies at DEBUG (they carry data keys), so their loggers stay at
WARNING whatever ``-v`` says. ``--insecure-sdk-wire-log`` turns them to DEBUG for troubleshooting a KMS
connection; even then every record goes through the redacting filter (logsafe.py says what it removes).
"""
from __future__ import annotations

import logging
import sys

from ..logsafe import RedactingFilter, quiet_sdks
from .term import CleanFormatter

PACKAGE = "heliosdb_flink_crypto"

_handler: logging.Handler | None = None


def setup(verbose: bool = False, sdk_wire: bool = False, stream=None) -> None:
    """Log to ``stream`` (stderr): WARNING and up from everyone; with ``verbose`` DEBUG from this
    package; with ``sdk_wire`` DEBUG from the SDKs too, through the redacting filter. Calling it again
    replaces the previous set-up (the CLI may run several times in one process)."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream or sys.stderr)
    _handler.setFormatter(CleanFormatter("%(levelname)s %(name)s: %(message)s"))  # escaped: term.py
    _handler.addFilter(RedactingFilter())
    root.addHandler(_handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(PACKAGE).setLevel(logging.DEBUG if verbose else logging.WARNING)
    quiet_sdks(logging.DEBUG if sdk_wire else logging.WARNING)
    if sdk_wire:
        logging.getLogger(PACKAGE).warning(
            "--insecure-sdk-wire-log: KMS SDK debug logging is on; recognisable key material is "
            "redacted, but do not use this in production or keep these logs")

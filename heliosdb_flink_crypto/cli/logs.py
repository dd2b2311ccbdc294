"""The CLI's logging: ``-v`` is for this package only; SDK wire logs need a loud flag and are redacted.

KMS SDKs log request and response bodies at DEBUG (they carry data keys), so their loggers stay at
WARNING whatever ``-v`` says. ``--insecure-sdk-wire-log`` turns them to DEBUG for troubleshooting a KMS
connection; even then every record goes through the redacting filter (logsafe.py says what it removes).
"""
from __future__ import annotations

import logging
import sys

from ..logsafe import RedactingFilter, quiet_sdks

PACKAGE = "heliosdb_flink_crypto"

_handler: logging.Handler | None = None


class _Stderr(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record comes (as logging's last resort does), not as
    it was at set-up: a caller that redirects it, or has closed what it was, still gets the records."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def setup(verbose: bool = False, sdk_wire: bool = False, stream=None) -> None:
    """Log to ``stream`` (stderr): WARNING and up from everyone; with ``verbose`` DEBUG from this
    package; with ``sdk_wire`` DEBUG from the SDKs too, through the redacting filter. Calling it again
    replaces the previous set-up (the CLI may run several times in one process)."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream) if stream else _Stderr()
    _handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    _handler.addFilter(RedactingFilter())  # redacted and escaped (names from storage)
    root.addHandler(_handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(PACKAGE).setLevel(logging.DEBUG if verbose else logging.WARNING)
    quiet_sdks(logging.DEBUG if sdk_wire else logging.WARNING)
    if sdk_wire:
        logging.getLogger(PACKAGE).warning(
            "--insecure-sdk-wire-log: KMS SDK debug logging is on; recognisable key material is "
            "redacted, but do not use this in production or keep these logs")

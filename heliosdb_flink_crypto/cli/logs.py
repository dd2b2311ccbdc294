"""The CLI's logging: ``-v`` is for this package only; SDK wire logs need a loud flag and are redacted.

KMS SDKs log request and response bodies at DEBUG (botocore prints GenerateDataKey's and Decrypt's
``Plaintext``: a data key), so their loggers stay at WARNING whatever ``-v`` says.
``--insecure-sdk-wire-log`` turns them to DEBUG for troubleshooting a KMS connection; even then
:class:`RedactingFilter` removes what can carry key material before a record is written: byte-string
literals (botocore logs bodies as ``b'...'``), the values of the fields that hold keys (AWS
``Plaintext``, Azure ``value``, GCP ``plaintext``), and any hex, base64 or base64url token that
decodes to 32 bytes.
"""
from __future__ import annotations

import base64
import logging
import re
import sys

from .term import CleanFormatter

PACKAGE = "heliosdb_flink_crypto"
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "azure", "google", "grpc", "pkcs11", "s3transfer")
REDACTED = "<redacted>"

_BYTES = re.compile(r"""(?:bytearray\()?b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\)?""")
_FIELD = re.compile(r"""(["']?(?:Plaintext|plaintext|value)["']?\s*[:=]\s*)(?:"[^"]*"|'[^']*'|[^\s,;}&]+)""")
_HEX = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{42,44}={0,2}(?![A-Za-z0-9+/_=-])")


def redact(text: str) -> str:
    """``text`` without anything that may be key material (see the module docstring)."""
    text = _BYTES.sub(f"b'{REDACTED}'", text)
    text = _FIELD.sub(lambda m: m.group(1) + f'"{REDACTED}"', text)
    text = _HEX.sub(REDACTED, text)
    return _B64.sub(lambda m: REDACTED if _is_key(m.group(0)) else m.group(0), text)


def _is_key(token: str) -> bool:
    t = token.replace("-", "+").replace("_", "/").rstrip("=")  # 42-44 base64 characters: always decodes
    return len(base64.b64decode(t + "=" * (-len(t) % 4))) == 32


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


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
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if sdk_wire else logging.WARNING)
    if sdk_wire:
        logging.getLogger(PACKAGE).warning(
            "--insecure-sdk-wire-log: KMS SDK debug logging is on; recognisable key material is "
            "redacted, but do not use this in production or keep these logs")

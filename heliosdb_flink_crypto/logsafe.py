"""What may reach a log: no key material, at any level, from this package or the KMS SDKs.

KMS SDKs log request and response bodies at DEBUG (botocore prints GenerateDataKey's and Decrypt's
``Plaintext``: a data key), so their loggers stay at WARNING unless a caller turns them up on purpose
(the CLI's ``--insecure-sdk-wire-log``). :class:`RedactingFilter` removes what can carry key material
before a record is written: byte-string literals (botocore logs bodies as ``b'...'``), the values of
the fields that hold keys (AWS ``Plaintext``, Azure ``value``, GCP ``plaintext``), and any hex, base64
or base64url token that decodes to 32 bytes; and it escapes what is not printable (names from storage).

Inside a Flink process (:func:`guard_embedded`, when the shim loads the package) pemja has already
sent every Python record to Java's logging, with Python's root logger at DEBUG: a TaskManager logging
at DEBUG would write the SDKs' wire logs. There the SDK loggers are held at WARNING, every handler
gets the redacting filter, and a record logged on a thread pemja did not start (the package's own
background threads: key rotation checks, the metrics endpoint) goes to the process's stderr when
pemja cannot take it, instead of raising out of the log call (Flink 1.20's pemja raises "No JcpThread
instance available on current thread", which stopped the rotation thread for good).
"""
from __future__ import annotations

import base64
import logging
import re
import sys
import traceback

from .text import shown

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
    """Rewrites each record's message (and traceback text) through :func:`redact`, and escapes what
    is not printable (:func:`..text.shown`): messages quote paths and header fields, which whoever
    can write to storage chooses, so a message stays one line (a newline in a file's name cannot
    forge a record) and no terminal escape gets through. A traceback keeps its lines, each escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = shown(redact(record.getMessage())), None
        if record.exc_info:
            record.exc_text, record.exc_info = traceback_text(record.exc_info), None
        elif record.exc_text:  # formatted before (another handler's filter): escaped line by line
            record.exc_text = "\n".join(shown(redact(line)) for line in record.exc_text.split("\n"))
        return True


_FRAMES = ("Traceback ", "  File ", "  [Previous line", "\nDuring handling", "\nThe above exception")


def traceback_text(exc_info) -> str:
    """An exception's traceback, redacted and escaped: the frames keep their lines; each exception's
    message (and note) becomes one line, since its text may quote a name from storage."""
    out = []
    for chunk in traceback.TracebackException(*exc_info).format():
        chunk = chunk[:-1] if chunk.endswith("\n") else chunk
        if chunk.startswith(_FRAMES):
            out += (shown(redact(line)) for line in chunk.split("\n"))
        else:
            out.append(shown(redact(chunk)))
    return "\n".join(out)


def quiet_sdks(level: int = logging.WARNING) -> None:
    """The KMS SDKs' loggers at ``level`` (WARNING: no wire logs)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(level)


class _Guarded(logging.Handler):
    """Another handler (pemja's), behind the redacting filter; a record it cannot take (a thread
    pemja did not start) goes to stderr instead of raising out of the log call."""

    def __init__(self, inner: logging.Handler):
        super().__init__(inner.level)
        self.inner = inner
        self.addFilter(RedactingFilter())
        self.fallback = logging.StreamHandler(sys.__stderr__ or sys.stderr)
        self.fallback.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.inner.handle(record)
        except Exception:  # noqa: BLE001 - whatever pemja raises, the caller's log call must return
            self.fallback.handle(record)


def guard_embedded() -> None:
    """Inside a Flink process: SDK loggers at WARNING, and pemja's handlers on the root logger behind
    :class:`_Guarded` (once each)."""
    quiet_sdks()
    root = logging.getLogger()
    for h in list(root.handlers):
        if type(h).__module__.partition(".")[0] == "pemja":
            root.removeHandler(h)
            root.addHandler(_Guarded(h))

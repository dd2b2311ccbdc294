"""Tamper-evident audit log of crypto operations; see docs/audit.md.

``AuditLog(sinks, key=..., bus=...)`` subscribes to the event bus and writes one hash-chained
JSON record per operation; ``verify(files, key)`` checks a log set; ``from_config(conf)`` builds
the log the ``heliosdb.crypto.audit.*`` options describe (None when no sink is configured).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Mapping

from .. import config
from ..errors import ConfigError
from ..observe import EventBus
from .log import AuditLog, live_logs, totals
from .record import ALLOWED_FIELDS, MIN_KEY_BYTES, Chain, from_event
from .sinks import FileSink, StreamSink, SyslogSink, expand_path, log_set
from .verify import Result, order_files, verify

SINKS = ("file", "stderr", "syslog")


def load_key(key_file: str | None = None, key_env: str | None = None,
             environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The HMAC key from a file (raw bytes, trailing newlines ignored unless fewer than
    MIN_KEY_BYTES would be left: a random binary key, ``head -c 32 /dev/urandom``, ends in a CR or LF
    byte one time in 128, and those bytes are its own) or an environment variable (its UTF-8 value).
    Errors name the option, never the key."""
    if key_file and key_env:
        raise ConfigError("heliosdb.crypto.audit.hmac-key-file", "set either a key file or a key "
                          "environment variable, not both")
    if key_file:
        try:
            with open(key_file, "rb") as f:
                raw = f.read()
            key = raw.rstrip(b"\r\n")
            if len(key) < MIN_KEY_BYTES <= len(raw):
                key = raw
        except OSError as e:
            raise ConfigError("heliosdb.crypto.audit.hmac-key-file", f"cannot read {key_file}: "
                              f"{e.strerror}") from None
        opt = "heliosdb.crypto.audit.hmac-key-file"
    elif key_env:
        if key_env not in environ:
            raise ConfigError("heliosdb.crypto.audit.hmac-key-env", f"environment variable {key_env} "
                              "is not set")
        key, opt = environ[key_env].encode(), "heliosdb.crypto.audit.hmac-key-env"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(opt, f"the audit HMAC key must be at least {MIN_KEY_BYTES} bytes")
    return key


def config_values(conf: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The options under ``prefix``, parsed (already-parsed values pass), defaults filled in."""
    out = {}
    for o in config.OPTIONS:
        if not o.key.startswith(prefix):
            continue
        raw = conf.get(o.key)
        if raw is None or raw == "":
            out[o.key] = o.default
        elif not isinstance(raw, str):
            out[o.key] = raw
        else:
            try:
                out[o.key] = o.parse(raw)
            except (ValueError, TypeError) as e:
                raise ConfigError(o.key, str(e)) from None
    return out


def from_config(conf: Mapping[str, Any], bus: EventBus | None = None) -> AuditLog | None:
    """An AuditLog from Flink configuration entries (raw strings or parsed values)."""
    opts = config_values(conf, "heliosdb.crypto.audit.")
    names = opts["heliosdb.crypto.audit.sinks"]
    if not names:
        return None
    sinks = []
    for name in names:
        if name not in SINKS:
            raise ConfigError("heliosdb.crypto.audit.sinks", f"{name!r} is not one of {', '.join(SINKS)}")
        if name == "file":
            path = opts["heliosdb.crypto.audit.file"]
            if not path:
                raise ConfigError("heliosdb.crypto.audit.file", "is required when the sinks include file")
            sinks.append(FileSink(expand_path(path), opts["heliosdb.crypto.audit.file.max-size"],
                                  opts["heliosdb.crypto.audit.file.max-files"]))
        elif name == "stderr":
            sinks.append(StreamSink())
        else:
            try:
                sinks.append(SyslogSink(opts["heliosdb.crypto.audit.syslog.address"],
                                        opts["heliosdb.crypto.audit.syslog.facility"]))
            except (OSError, ValueError) as e:
                raise ConfigError("heliosdb.crypto.audit.syslog.address", str(e)) from None
    key = load_key(opts["heliosdb.crypto.audit.hmac-key-file"] or None,
                   opts["heliosdb.crypto.audit.hmac-key-env"] or None)
    return AuditLog(sinks, key=key, bus=bus, queue_size=opts["heliosdb.crypto.audit.queue-size"])


_process_lock = threading.Lock()
_process: dict = {}


def process_log(conf: Mapping[str, Any], bus: EventBus | None = None) -> AuditLog | None:
    """The process's one audit log (two logs on one file would interleave two chains): made from
    ``conf`` on the first call, returned as it is by later calls. None when no sink is configured."""
    with _process_lock:
        if "log" not in _process:
            _process["log"] = from_config(conf, bus)
        return _process["log"]


def close_process_log() -> None:
    with _process_lock:
        log = _process.pop("log", None)
    if log is not None:
        log.close()


__all__ = ["AuditLog", "process_log", "close_process_log", "Chain", "FileSink", "StreamSink", "SyslogSink", "Result", "ALLOWED_FIELDS",
           "from_config", "from_event", "live_logs", "totals", "load_key", "log_set", "order_files", "verify"]

"""Every ``heliosdb.crypto.*`` option, declared once. The Java shim mirrors this list (a test
compares them). Keys are dotted lower-case with hyphens, as Flink's own options; errors name the key.
Keys containing ``secret`` or ``password`` are masked by Flink in its UI and logs; we never log values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import ConfigError

PREFIX = "heliosdb.crypto."
# every unit Flink's MemorySize and TimeUtils read and write (a typed option set in Java reaches
# Python as Flink writes it: "128 bytes", "1 tb", "5 min", "500 ms"), and kib/mib/gib
_UNITS = {1: "b bytes", 1 << 10: "k kb kib kibibytes", 1 << 20: "m mb mib mebibytes",
          1 << 30: "g gb gib gibibytes", 1 << 40: "t tb tib tebibytes"}
_MULT = {None: 1, **{u: m for m, units in _UNITS.items() for u in units.split()}}
_SIZE = re.compile(r"^\s*(\d+)\s*(" + "|".join(sorted(_MULT.keys() - {None}, key=len, reverse=True))
                   + r")?\s*$", re.I | re.A)
_TIMES = {1e-9: "ns nano nanos nanosecond nanoseconds", 1e-6: "µs micro micros microsecond microseconds",
          1e-3: "ms milli millis millisecond milliseconds", 1: "s sec secs second seconds",
          60: "m min minute minutes", 3600: "h hour hours", 86400: "d day days"}
_SECONDS = {None: 1, **{u: f for f, units in _TIMES.items() for u in units.split()}}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_SECONDS.keys() - {None}, key=len, reverse=True))
                       + r")?\s*$", re.I | re.A)


def number(v) -> int | None:
    """``v`` as a whole number if it is one written in ASCII digits, else None. (``int()`` and
    ``str.isdigit()`` also take other scripts' digits: ``int('١٢') == 12``.)"""
    return int(v) if isinstance(v, str) and v.isascii() and v.isdigit() else None


def parse_number(v: str) -> int:
    """``number(v)``, or ValueError naming the value (an argparse ``type``)."""
    n = number(v)
    if n is None:
        raise ValueError(f"{v!r} is not a whole number in ASCII digits")
    return n


def parse_size(v: str) -> int:
    m = _SIZE.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a size such as 256kb or 1mb")
    return int(m.group(1)) * _MULT[(m.group(2) or "").lower() or None]


def parse_duration(v: str) -> float:
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a duration such as 30 s, 5 min, 1 h or 30 d")
    return float(m.group(1)) * _SECONDS[(m.group(2) or "").lower() or None]


def parse_list(v: str) -> list[str]:
    return [x.strip() for x in re.split(r"[;,]", str(v)) if x.strip()]


def parse_bool(v: str) -> bool:
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return True
    if s in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{v!r} is not true or false")


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(v: str) -> str:
        s = str(v).strip().lower()
        if s not in choices:
            raise ValueError(f"{v!r} is not one of {', '.join(choices)}")
        return s
    return parse


@dataclass(frozen=True)
class Option:
    key: str
    type: str  # string, list, size, duration, bool, choice, int
    default: Any
    description: str
    parse: Callable[[str], Any] = str
    required: bool = False


OPTIONS: list[Option] = [
    Option("heliosdb.crypto.kms.uri", "list", None,
           "KMS URI(s), separated by ';' or ','. The first generates and wraps each data key; every "
           "one wraps it, so any one can decrypt.", parse_list, required=True),
    Option("heliosdb.crypto.kms.decrypt-uris", "list", [],
           "Further KMS URIs trusted for decryption only (e.g. a retired KMS).", parse_list),
    Option("heliosdb.crypto.algorithm", "choice", "aes-256-gcm",
           "Algorithm suite: aes-256-gcm or aes-256-cbc-hmac-sha256.",
           parse_choice("aes-256-gcm", "aes-256-cbc-hmac-sha256")),
    Option("heliosdb.crypto.segment-size", "size", 1 << 20,
           "Plaintext bytes per authenticated segment (multiple of 16, 16 b .. 16 mb).", parse_size),
    Option("heliosdb.crypto.forst.segment-size", "size", 4096,
           "Segment size of the files in ForSt's working database folders (<primary-dir>/.../op_*/db/*, "
           "where ForSt keeps its live SST files when its primary directory is remote): ForSt reads them "
           "by block (4 KiB by default) at random offsets, and every read decrypts the whole segments it "
           "touches (docs/flink.md, ForSt).", parse_size),
    Option("heliosdb.crypto.format.read-v1", "bool", False,
           "Also read files of format version 1, which are not bound to their place (a swapped or "
           "rolled-back version 1 file is not detected); for reading checkpoints written before "
           "version 2 until they are rewrapped.", parse_bool),
    Option("heliosdb.crypto.python.executable", "string", "python3",
           "The Python interpreter whose site-packages hold heliosdb_flink_crypto.", str),
    Option("heliosdb.crypto.cache.max-age", "duration", 3600.0,
           "How long one data key seals new files before a new one is made.", parse_duration),
    Option("heliosdb.crypto.cache.max-bytes", "size", 1 << 40,
           "Bytes one data key may seal before a new one is made.", parse_size),
    Option("heliosdb.crypto.cache.max-files", "int", 1 << 20,
           "Files one data key may seal before a new one is made.", int),
    Option("heliosdb.crypto.cache.outage-grace", "duration", 3600.0,
           "How long past its max age a cached data key keeps sealing while the KMS is unreachable; "
           "after that, checkpoints fail closed.", parse_duration),
    # -- audit log, metrics, FIPS (docs/audit.md, docs/metrics.md, docs/fips.md) --
    Option("heliosdb.crypto.audit.sinks", "list", [],
           "Where audit records go: any of file, stderr, syslog (';'- or ','-separated); empty = no audit log.",
           parse_list),
    Option("heliosdb.crypto.audit.file", "string", "",
           "Audit log file (JSON lines); {pid} and {host} are replaced, so each process writes its own.", str),
    Option("heliosdb.crypto.audit.file.max-size", "size", 64 << 20,
           "Size at which the audit file is rotated to <file>.<n> (the hash chain continues).", parse_size),
    Option("heliosdb.crypto.audit.file.max-files", "int", 20,
           "Rotated audit files kept (0 = keep all; ship them elsewhere before they are deleted).", int),
    Option("heliosdb.crypto.audit.syslog.address", "string", "/dev/log",
           "Syslog socket path, or host:port for UDP.", str),
    Option("heliosdb.crypto.audit.syslog.facility", "choice", "authpriv", "Syslog facility.",
           parse_choice("auth", "authpriv", "daemon", "user", "local0", "local1", "local2", "local3",
                        "local4", "local5", "local6", "local7")),
    Option("heliosdb.crypto.audit.hmac-key-file", "string", "",
           "File holding the key (at least 32 bytes) that HMACs the audit chain; never logged.", str),
    Option("heliosdb.crypto.audit.hmac-key-env", "string", "",
           "Name of an environment variable holding the audit HMAC key (instead of a file).", str),
    Option("heliosdb.crypto.audit.queue-size", "int", 10000,
           "Audit records buffered for the writer thread; beyond it records are dropped and counted.", int),
    Option("heliosdb.crypto.metrics.port", "string", "0",
           "Port (or range such as 9250-9260) of this process's Prometheus endpoint; 0 = off.", str),
    Option("heliosdb.crypto.metrics.host", "string", "127.0.0.1",
           "Address the Prometheus endpoint binds to.", str),
    Option("heliosdb.crypto.metrics.max-tenants", "int", 100,
           "Distinct tenant label values before further tenants are counted as _other.", int),
    Option("heliosdb.crypto.fips-mode", "bool", False,
           "Refuse to start unless OpenSSL runs its FIPS provider and only approved algorithms are configured.",
           parse_bool),
    # -- key rotation (lifecycle/rotation.py) --
    Option("heliosdb.crypto.rotation.enabled", "bool", True,
           "Key rotation policy on: rotate on schedule (auto-rotate) and always past max-age.", parse_bool),
    Option("heliosdb.crypto.rotation.interval", "duration", 30 * 86400.0,
           "Rotate each KEK this long after its last rotation (when auto-rotate is on).", parse_duration),
    Option("heliosdb.crypto.rotation.max-age", "duration", 90 * 86400.0,
           "A KEK older than this is rotated even when auto-rotate is off.", parse_duration),
    Option("heliosdb.crypto.rotation.auto-rotate", "bool", True,
           "Rotate on schedule from a background thread of the process that runs the rotation manager.",
           parse_bool),
    Option("heliosdb.crypto.rotation.check-interval", "duration", 60.0,
           "How often the rotation manager checks the schedule and notices rotations made elsewhere "
           "(then new files stop using data keys wrapped under the old version).", parse_duration),
    Option("heliosdb.crypto.rotation.state-file", "string", "",
           "JSON file recording the last rotation per KMS URI (default: <keyring>.rotation.json for a "
           "local:// first URI, else ~/.heliosdb-flink-crypto/rotation.json).", str),
    # -- where Flink writes state besides the checkpoint directory (flink/state_dirs.py) --
    Option("heliosdb.crypto.allow-unencrypted-state-dirs", "bool", False,
           "Start even though the checkpoint directory is enc+ while another place Flink writes state to "
           "is not (the savepoint directory, high-availability.storageDir, the changelog's "
           "state.changelog.dstl.dfs.base-path, a remote state.backend.forst.primary-dir): by default the "
           "enc+ file systems refuse such a configuration, naming each option, and the lib jar's checkpoint "
           "storage refuses a savepoint to a target that is not enc+. When on, the processes log each place "
           "as a warning and the audit log records state_dirs_unguarded.", parse_bool),
    # -- tenants (lifecycle/tenants.py); per tenant: heliosdb.crypto.tenants.<id>.path-prefix,
    #    .kms.uri and .kms.decrypt-uris --
    Option("heliosdb.crypto.tenants.require-match", "bool", False,
           "Refuse paths under no tenant's path-prefix instead of using the default KMS.", parse_bool),
    # -- the lib jar's metered state backend (state.backend.type: io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory) --
    Option("heliosdb.crypto.state-backend", "string", "hashmap",
           "The state backend the metered state backend delegates to: hashmap, rocksdb, forst or a "
           "StateBackendFactory class name.", str),
]


def option(key: str) -> Option:
    for o in OPTIONS:
        if o.key == key:
            return o
    raise KeyError(key)


def load(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``heliosdb.crypto.*`` entries of a Flink configuration; unknown keys and bad values
    raise ConfigError naming the key. Returns key -> parsed value (defaults filled in)."""
    known = {o.key: o for o in OPTIONS}
    out: dict[str, Any] = {}
    for key in conf:
        if key.startswith(PREFIX) and key not in known and not _is_provider_setting(key) \
                and not _is_tenant_setting(key):
            raise ConfigError(key, "unknown option (see docs/configuration.md)")
    for o in OPTIONS:
        raw = conf.get(o.key)
        if raw is None or raw == "":
            if o.required:
                raise ConfigError(o.key, "is required")
            out[o.key] = o.default
            continue
        try:
            out[o.key] = o.parse(raw)
        except (ValueError, TypeError) as e:
            raise ConfigError(o.key, str(e)) from None
    for key in conf:
        if _is_provider_setting(key) or _is_tenant_setting(key):
            out[key] = str(conf[key])
    return out


def _is_provider_setting(key: str) -> bool:
    """``heliosdb.crypto.kms.<provider>.<setting>``: passed through to the provider."""
    return key.startswith(PREFIX + "kms.") and key.count(".") >= 4


_TENANT_KEY = re.compile(r"^heliosdb\.crypto\.tenants\.[A-Za-z0-9_-]+\.(path-prefix|kms\.uri|kms\.decrypt-uris)$")


def _is_tenant_setting(key: str) -> bool:
    """``heliosdb.crypto.tenants.<id>.{path-prefix,kms.uri,kms.decrypt-uris}``: read by lifecycle.tenants."""
    return bool(_TENANT_KEY.match(key))

"""Audit records: the allow-list that turns a bus event into a record, and the hash chain.

A record is one JSON object per line. Besides the event's allowed fields it carries ``v`` (record
format), ``seq`` (0, 1, 2, ... along the chain), ``time`` (UTC, ISO-8601), ``host``, ``pid``,
``prev`` (the previous record's ``hash``; 64 zeros for the first record of a chain), ``alg``, and
last ``hash``. A line is ``BODY`` with ``,"hash":"<hex>"`` inserted before its closing brace, where
``BODY`` is the canonical JSON of the record without ``hash`` (keys sorted, no spaces, ASCII) and

    hash = SHA-256(BODY)                 alg = "sha256"
    hash = HMAC-SHA256(key, BODY)        alg = "hmac-sha256"

so the hash covers exactly the bytes before it, and verify insists on that form byte for byte.

Only fields named in :data:`ALLOWED_FIELDS` and holding a str, int, float, bool or None pass;
anything else (bytes, objects, unknown names) is dropped, so key material cannot reach a record
even if an emitter passes it by mistake. URIs lose user-info, query and fragment.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from urllib.parse import urlsplit

FORMAT_VERSION = 1
GENESIS = "0" * 64
ALG_PLAIN, ALG_HMAC = "sha256", "hmac-sha256"
MIN_KEY_BYTES = 32
MAX_STR = 512

#: Event fields an audit record may carry (the op-specific ones are documented in docs/audit.md).
ALLOWED_FIELDS = frozenset({
    "op", "outcome", "path", "file_id", "tenant", "kms_uri", "key_version", "dek_id", "bytes",
    "seconds", "error", "reason", "kms_op", "from_version", "to_version", "old_version",
    "new_version", "previous_version", "previous", "header_tenant", "files", "count", "checkpoint_id",
    "job_id", "dropped", "events",
})
#: Fields stamped by the audit log itself; an event cannot set them.
STAMPED = frozenset({"v", "seq", "time", "host", "pid", "prev", "alg", "hash"})
_URI_FIELDS = ("path", "kms_uri")


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def body_of(record: dict) -> str:
    """The canonical BODY of a (parsed) record: everything but ``hash``."""
    return canonical({k: v for k, v in record.items() if k != "hash"})


def line_of(body: str, digest_hex: str) -> str:
    return f'{body[:-1]},"hash":"{digest_hex}"}}'


def scrub_uri(value: str) -> str:
    """Drop user-info (``user:secret@``), query and fragment from a URI; other strings pass."""
    if "://" not in value:
        return value
    try:
        p = urlsplit(value)
    except ValueError:
        return "<unparseable uri>"
    if "@" not in p.netloc and not p.query and not p.fragment:
        return value
    return f"{p.scheme}://{p.netloc.rpartition('@')[2]}{p.path}"


def _clean(value):
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return round(value, 6) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return value if len(value) <= MAX_STR else value[:MAX_STR] + "..."
    raise TypeError


def from_event(event: dict) -> dict:
    """The allowed part of a bus event (never raises)."""
    out = {}
    for name, value in event.items():
        if name not in ALLOWED_FIELDS:
            continue
        try:
            value = _clean(value)
        except TypeError:  # bytes, keys, objects: never recorded
            continue
        if name in _URI_FIELDS and isinstance(value, str):
            value = scrub_uri(value)
        out[name] = value
    out.setdefault("outcome", "ok")
    return out


def iso_time(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="microseconds").replace("+00:00", "Z")


def check_key(key: bytes | None) -> bytes | None:
    if key is not None and len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the audit HMAC key must be at least {MIN_KEY_BYTES} bytes")
    return key


def digest(body: str, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(body.encode()).hexdigest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


class Chain:
    """Seals records one after another. Holds the HMAC key: its repr shows none."""

    __slots__ = ("_key", "seq", "prev")

    def __init__(self, key: bytes | None = None, seq: int = 0, prev: str = GENESIS):
        self._key = check_key(key)
        self.seq, self.prev = seq, prev

    def __repr__(self) -> str:
        return f"Chain(alg={self.alg}, seq={self.seq})"

    @property
    def alg(self) -> str:
        return ALG_HMAC if self._key is not None else ALG_PLAIN

    def seal(self, record: dict) -> str:
        """Stamp ``record`` (already allowed) with chain fields; returns its line (no newline)."""
        rec = {k: v for k, v in record.items() if k not in ("v", "seq", "prev", "alg", "hash")}
        rec.update(v=FORMAT_VERSION, seq=self.seq, prev=self.prev, alg=self.alg)
        body = canonical(rec)
        h = digest(body, self._key)
        self.seq, self.prev = self.seq + 1, h
        return line_of(body, h)

    def authentic(self, record: dict) -> bool:
        """True if ``record`` (a parsed line) carries this chain's algorithm and a valid hash."""
        return (record.get("alg") == self.alg and isinstance(record.get("hash"), str)
                and hmac.compare_digest(digest(body_of(record), self._key), record["hash"]))

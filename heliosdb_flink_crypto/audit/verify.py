"""Verify an audit log set: every record authentic, each chaining to the one before.

Finds a removed, altered, inserted or reordered record and names the first bad line. Without an
HMAC key the chain catches edits by anyone who does not recompute every later hash; with a key
(``alg`` hmac-sha256) nobody without the key can forge a record. A log that stops early (tail
truncated) cannot be told from one whose process stopped: compare ``last_seq``/``last_hash`` with
a copy kept elsewhere (docs/audit.md).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .record import ALG_HMAC, ALG_PLAIN, GENESIS, Chain, body_of, line_of
from .sinks import ROTATED, log_set


INSERTED, TORN = "inserted", "torn"


@dataclass
class Result:
    ok: bool = True
    records: int = 0
    files: list = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    bad_file: str | None = None
    bad_line: int | None = None
    reason: str = ""
    notes: list = field(default_factory=list)

    def where(self) -> str:
        return f"{self.bad_file}:{self.bad_line}"


def order_files(paths) -> list[list[str]]:
    """Group files into log sets, each in chain order (rotated files by number, the active file
    last). A base path brings its rotated files; rotated files given alone form their own set."""
    sets: dict[str, dict[str, tuple]] = {}
    for p in paths:
        if os.path.isdir(p):
            raise ValueError(f"{p} is a directory; give the log file (its rotated files are found)")
        m = ROTATED.match(os.path.abspath(p))
        members = [p] if m else log_set(p) or [p]
        for f in map(os.path.abspath, members):
            m = ROTATED.match(f)
            base, n = (m.group("base"), int(m.group("n"))) if m else (f, float("inf"))
            sets.setdefault(base, {})[f] = (n, f)
    return [[f for _, f in sorted(group.values())] for _, group in sorted(sets.items())]


def verify(files, key: bytes | None = None, from_start: bool = False, expect=None) -> Result:
    """Verify one log set, ``files`` in chain order (see :func:`order_files`).

    ``expect``: {seq: hash} anchors kept elsewhere (e.g. an earlier run's ``last_seq``/``last_hash``);
    each must be in the set with that hash, which also detects a log cut off after an anchor.
    """
    expect = dict(expect or {})
    res = Result(files=list(files))
    if not res.files:
        return _bad(res, None, None, "no audit log files found")
    chain = Chain(key)
    prev_rec = before_prev = None
    prev_loc = torn = None
    for path in res.files:
        try:
            f = open(path, "rb")
        except OSError as e:
            return _bad(res, path, None, f"cannot read: {e.strerror}")
        with f:
            for lineno, raw in enumerate(f, 1):
                reason = _check(raw, chain, prev_rec, before_prev, key)
                if reason == TORN and torn is None:
                    torn = (path, lineno)  # a crash's partial line: fine if a restart follows
                    continue
                if torn:
                    if reason or json.loads(raw).get("op") != "audit_start":
                        return _bad(res, *torn, "not a JSON record (damaged, or a partial write not "
                                    "followed by a restart)")
                    res.notes.append(f"{torn[0]}:{torn[1]}: a partial record (process crash), then a restart")
                    torn = None
                if reason == INSERTED:
                    return _bad(res, *prev_loc, "record inserted (the next record chains to the one before it)")
                if reason:
                    return _bad(res, path, lineno, reason)
                rec = json.loads(raw)
                if rec["seq"] in expect and expect.pop(rec["seq"]) != rec["hash"]:
                    return _bad(res, path, lineno, f"record seq {rec['seq']} differs from its anchor "
                                "(the log was rewritten)")
                if prev_rec is None:
                    res.first_seq = rec["seq"]
                    if rec["seq"] != 0 or rec["prev"] != GENESIS:
                        if from_start:
                            return _bad(res, path, lineno, f"the chain starts at seq {rec['seq']}, not at "
                                        "its beginning (earlier records missing)")
                        res.notes.append(f"the set starts at seq {rec['seq']}: earlier records are not in "
                                         "it (rotated away?)")
                before_prev, prev_rec, prev_loc = prev_rec, rec, (path, lineno)
                res.records += 1
    if torn:
        res.notes.append(f"{torn[0]}:{torn[1]}: the set ends with a partial record (process crash?)")
    if prev_rec is None:
        return _bad(res, res.files[0], None, "the log is empty")
    res.last_seq, res.last_hash = prev_rec["seq"], prev_rec["hash"]
    if expect:
        seq = min(expect)
        where = ("after its last record" if seq > res.last_seq else "before its first record")
        return _bad(res, res.files[-1], None, f"anchored record seq {seq} is not in the set: it is "
                    f"{where} (seq {res.first_seq}..{res.last_seq}; "
                    + ("truncated?)" if seq > res.last_seq else "rotated away?)"))
    return res


def _bad(res: Result, path, lineno, reason: str) -> Result:
    res.ok, res.bad_file, res.bad_line, res.reason = False, path, lineno, reason
    return res


def _check(raw: bytes, chain: Chain, prev, before_prev, key) -> str:
    try:
        line = raw.decode("utf-8").rstrip("\n")
        rec = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return TORN
    if not isinstance(rec, dict) or not all(k in rec for k in ("seq", "prev", "alg", "hash")):
        return "not an audit record (chain fields missing)"
    if not isinstance(rec["seq"], int) or not isinstance(rec["prev"], str):
        return "not an audit record (bad chain fields)"
    if not isinstance(rec["hash"], str) or line_of(body_of(rec), rec["hash"]) != line:
        return "record altered (not in canonical form)"
    if rec["alg"] == ALG_HMAC and key is None:
        return "record is HMAC-keyed: give the key (--hmac-key-file / --hmac-key-env)"
    if rec["alg"] == ALG_PLAIN and key is not None:
        return "record is not HMAC-keyed although a key was given (downgraded or forged)"
    if rec["alg"] not in (ALG_HMAC, ALG_PLAIN):
        return f"unknown hash algorithm {str(rec['alg'])[:32]!r}"
    if not chain.authentic(rec):
        return "record altered (hash does not match" + (", or wrong key)" if key else ")")
    if prev is None:
        return ""
    want = prev["seq"] + 1
    if rec["prev"] == prev["hash"] and rec["seq"] == want:
        return ""
    if before_prev is not None and rec["prev"] == before_prev["hash"]:
        return INSERTED
    if rec["seq"] > want:
        return (f"record(s) missing before this line: expected seq {want}, found {rec['seq']} "
                "(removed or reordered)")
    if rec["seq"] < want:
        return f"record out of order: seq {rec['seq']} after seq {prev['seq']} (reordered or inserted)"
    return "chain broken: this record does not follow the previous one (previous line altered or inserted)"

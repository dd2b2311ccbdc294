"""``heliosdb-flink-crypto audit verify LOG...``: check audit log sets (docs/audit.md).

Each LOG is an audit file; its rotated files (``LOG.000001`` ...) are found and checked with it,
in order. Files of several processes may be given together: each set is verified on its own.
Exit 0 when every set verifies, 1 when one does not (naming its first bad line), 2 on usage errors.
"""
from __future__ import annotations

import json
import os

from .term import say


def register(sub) -> None:
    p = sub.add_parser("audit", help="work with the tamper-evident audit log",
                       description="Work with the tamper-evident audit log.")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = asub.add_parser("verify", help="verify the hash chain of audit log files",
                        description="Verify audit logs: detects removed, altered, inserted or reordered "
                                    "records and names the first bad line. Exit 0 = intact, 1 = not.")
    v.add_argument("logs", nargs="+", metavar="LOG", help="audit log file(s); rotated files are found")
    key = v.add_mutually_exclusive_group()
    key.add_argument("--hmac-key-file", default=os.environ.get("HELIOSDB_CRYPTO_AUDIT_HMAC_KEY_FILE"),
                     help="file with the HMAC key the log was written with "
                          "(env HELIOSDB_CRYPTO_AUDIT_HMAC_KEY_FILE)")
    key.add_argument("--hmac-key-env", metavar="VAR",
                     help="name of an environment variable holding the HMAC key")
    v.add_argument("--from-start", action="store_true",
                   help="fail unless each set starts at the beginning of its chain (seq 0)")
    v.add_argument("--expect", action="append", default=[], metavar="SEQ:HASH",
                   help="an anchor kept elsewhere (an earlier run's last seq and hash): the record must be "
                        "present with that hash; catches a rewritten or cut-off log (repeatable; with "
                        "several sets, applies to each)")
    v.add_argument("--json", action="store_true", help="one JSON result per set on stdout")
    v.set_defaults(func=verify_command)


def verify_command(args) -> int:
    from ..audit import load_key, order_files, verify

    key = load_key(args.hmac_key_file, args.hmac_key_env)
    expect = {}
    for anchor in args.expect:
        seq, sep, digest = anchor.partition(":")
        if not (sep and seq.isdigit() and len(digest) == 64):
            raise ValueError(f"--expect {anchor!r}: give SEQ:HASH, e.g. 1207:9c1e... (64 hex digits)")
        expect[int(seq)] = digest.lower()
    missing = [p for p in args.logs if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(2, "no such audit log", missing[0])
    failed = 0
    for files in order_files(args.logs):
        r = verify(files, key, from_start=args.from_start, expect=expect)
        failed += not r.ok
        if args.json:
            print(json.dumps({"ok": r.ok, "files": r.files, "records": r.records, "first_seq": r.first_seq,
                              "last_seq": r.last_seq, "last_hash": r.last_hash, "bad_file": r.bad_file,
                              "bad_line": r.bad_line, "reason": r.reason, "notes": r.notes}))
        elif r.ok:
            say(f"OK {files[-1]} ({len(files)} file(s)): {r.records} records, seq {r.first_seq}..{r.last_seq}, "
                  f"last hash {r.last_hash}")
            for note in r.notes:
                say(f"  note: {note}")
        else:
            say(f"FAIL {r.where()}: {r.reason}")
    return 1 if failed else 0

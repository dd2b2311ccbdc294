"""``rewrap`` (header-only, after a rotation or KMS move) and ``reencrypt`` (compromise recovery)."""
from __future__ import annotations

from ..lifecycle import rewrap as rw
from .core import add_read_options
from .trust import add_conf, add_trust, conf_of, opener, settings_of
from .progress import Progress
from .term import say


def register(sub) -> None:
    p = sub.add_parser("rewrap", help="re-wrap every file's data key under the current (or another) KEK; "
                                      "data is not re-encrypted")
    _common(p)
    p.add_argument("--verify", action="store_true", help="authenticate every byte before rewriting a file")
    p.add_argument("--rebind", action="store_true",
                   help="bind every file to its current path whatever place it was sealed for: only for "
                        "trees you moved or renamed yourself (a file swapped in is accepted too)")
    p.set_defaults(func=cmd_rewrap)

    r = sub.add_parser("reencrypt", help="decrypt and encrypt every file again under new data keys "
                                         "(compromise recovery)")
    _common(r)
    r.set_defaults(func=cmd_reencrypt)


def _common(p) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint/savepoint directories or files")
    p.add_argument("--to", action="append", default=[], metavar="URI",
                   help="KMS URI(s) to wrap under (default: the trusted URIs each file's key slots name, "
                        "current versions)")
    add_trust(p, "--from", "--kms")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_read_options(p, expect_name=False)
    add_conf(p)


def _report(summary, verb: str) -> int:
    for r in summary.failed:
        say(f"FAILED {r.path}: {r.detail}")
    skipped = [r for r in summary.results if r.status == "skipped"]
    for r in skipped:
        say(f"skipped {r.path}: {r.detail}")
    done = summary.count(verb)
    say(f"{verb} {done}, already current {summary.count('current')}, skipped {len(skipped)}, "
          f"failed {len(summary.failed)} of {len(summary.results)} files")
    return 1 if summary.failed or not summary.results else 0


def cmd_rewrap(args) -> int:
    crypto = opener(args, args.to, read_v1=args.read_v1)
    try:
        summary = rw.run(args.paths, lambda path: rw.rewrap_file(path, crypto, args.to or None, args.verify,
                                                                 args.rebind),
                         lambda n: Progress(n, "rewrap", enabled=not args.quiet), crypto.bus)
    finally:
        crypto.close()
    return _report(summary, "rewrapped")


def cmd_reencrypt(args) -> int:
    crypto = opener(args, args.to, read_v1=args.read_v1)  # decrypts only: the writers wrap new data keys
    writers = rw.reencrypt_writers(args.to or None, settings_of(conf_of(args)), crypto.bus, crypto)
    try:
        summary = rw.run(args.paths, lambda path: rw.reencrypt_file(path, crypto, writers),
                         lambda n: Progress(n, "reencrypt", enabled=not args.quiet), crypto.bus)
    finally:
        crypto.close()
    return _report(summary, "reencrypted")

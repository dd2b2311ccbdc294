"""``keys`` sub-commands: rotate, status, min-version, usage, destroy (docs/operations.md)."""
from __future__ import annotations

import argparse
import datetime
import json

from ..config import parse_number
from ..kms import open_provider
from ..kms.identity import TrustedSet
from ..lifecycle import admin, usage
from ..lifecycle.rotation import RotationManager, RotationPolicy
from .term import say
from .trust import add_conf, add_trust, conf_of, settings_of, trusted_uris


def _version_number(v: str) -> int:
    try:
        return parse_number(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    keys = sub.add_parser("keys", help="key lifecycle: rotate, status, min-version, usage, destroy")
    ks = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    rot = ks.add_parser("rotate", help="make a new KEK version current (new files use it at once)")
    rot.add_argument("uri")
    rot.add_argument("--state-file", default="", help="rotation state file (default: see docs)")
    add_conf(rot)
    rot.set_defaults(func=cmd_rotate)

    st = ks.add_parser("status", help="current version, last rotation and when the next one is due")
    st.add_argument("uri")
    st.add_argument("--state-file", default="")
    st.add_argument("--json", action="store_true")
    add_conf(st)
    st.set_defaults(func=cmd_status)

    mv = ks.add_parser("min-version", help="refuse to decrypt files wrapped under versions below N")
    mv.add_argument("uri")
    mv.add_argument("version", type=_version_number)
    mv.add_argument("--check", action="append", default=[], metavar="PATH",
                    help="refuse if files under PATH would become unreadable; repeatable")
    mv.add_argument("--force", action="store_true", help="set it even if --check finds files that need older versions")
    add_trust(mv)
    add_conf(mv)
    mv.set_defaults(func=cmd_min_version)

    us = ks.add_parser("usage", help="which KEK versions the files under PATH still need")
    us.add_argument("paths", nargs="+", metavar="PATH")
    us.add_argument("--json", action="store_true")
    add_trust(us)
    add_conf(us)
    us.set_defaults(func=cmd_usage)

    de = ks.add_parser("destroy", help="destroy key material (crypto-shredding): files under it become unreadable")
    de.add_argument("uri")
    de.add_argument("--version", help="one version (default: every version of the key)")
    de.add_argument("--check", action="append", default=[], metavar="PATH",
                    help="list the files under PATH that become unreadable")
    de.add_argument("--yes", action="store_true", help="required: destruction cannot be undone")
    add_trust(de)
    add_conf(de)
    de.set_defaults(func=cmd_destroy)


def _manager(args) -> RotationManager:
    conf = conf_of(args)
    return RotationManager([args.uri], RotationPolicy.from_config(conf),
                           args.state_file or conf.get("heliosdb.crypto.rotation.state-file", ""),
                           settings=settings_of(conf))


def cmd_rotate(args) -> int:
    m = _manager(args)
    try:
        r = m.rotate(args.uri)
    finally:
        m.close()
    say(f"rotated {r.kms_uri}: version {r.previous_version} -> {r.key_version} in {r.seconds * 1000:.1f} ms")
    say("running jobs pick up the new version within heliosdb.crypto.rotation.check-interval; "
          "old versions keep decrypting (see keys usage / rewrap)")
    return 0


def _when(t) -> str:
    if t is None:
        return "-"
    try:  # a header's time is not authenticated here: any 64-bit value
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"{t:.0f} s (not a date)"


def cmd_status(args) -> int:
    m = _manager(args)
    try:
        s = m.status(args.uri)
        p = m.provider(args.uri)
        versions = getattr(p, "versions", None)
        s["versions"] = versions() if versions else None
        s["min_decrypt_version"] = getattr(p, "min_decrypt_version", None)
    finally:
        m.close()
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    say(f"key               {s['kms_uri']}")
    say(f"current version   {s['key_version']}")
    say(f"last rotation     {_when(s['last_rotation'])} ({s['age_seconds'] / 86400:.1f} days ago)")
    say(f"next rotation     {_when(s['next_rotation'])}{' (due now: ' + s['due'] + ')' if s['due'] else ''}")
    if s["min_decrypt_version"] is not None:
        say(f"min version       {s['min_decrypt_version']}")
    for v, e in sorted((s["versions"] or {}).items(), key=lambda x: usage.version_key(x[0])):
        say(f"version {v:9} {e.get('state')}, created {_when(e.get('created'))}")
    say(f"state file        {s['state_file']}")
    return 0


def _retirement(args, conf: dict, retired) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Files under ``--check`` left unreadable: by the retirement, or naming no trusted KMS at all;
    and the entries that could not be checked. Trusted: the KMS being retired plus the usual sources
    (--kms, env, config file)."""
    settings = settings_of(conf)
    trust = TrustedSet(trusted_uris(args, conf, required=False) + [args.uri], settings)
    return usage.blocked_by(args.check, retired(settings), trust)


def _print_blocked(blocked, unchecked: dict[str, str], label: str) -> None:
    for path, why in blocked:
        say(f"{label if why == 'retired' else 'NAMES NO TRUSTED KMS'} {path}")
    for path, why in sorted(unchecked.items()):
        say(f"NOT CHECKED {path}: {why}")
    if unchecked:
        say(f"{len(unchecked)} entr{'y' if len(unchecked) == 1 else 'ies'} under the --check paths could not be "
            "checked: a file there may need the key; make them readable (or remove them) and run again")


def cmd_min_version(args) -> int:
    conf = conf_of(args)
    if args.check:
        blocked, unchecked = _retirement(args, conf, lambda st: usage.below(args.uri, args.version, st))
        _print_blocked(blocked, unchecked, "NEEDS OLDER VERSION")
        if blocked:
            say(f"{len(blocked)} file(s) could not be opened with versions of {args.uri} below {args.version} "
                f"retired: rewrap them first{'' if args.force else ' (or --force)'}")
        if (blocked or unchecked) and not args.force:
            return 1
    p = open_provider(args.uri, settings_of(conf))
    try:
        admin.set_min_version(p, args.version)
    finally:
        p.close()
    say(f"{args.uri}: versions below {args.version} no longer decrypt")
    return 0


def cmd_usage(args) -> int:
    conf = conf_of(args)
    r = usage.key_usage(args.paths, TrustedSet(trusted_uris(args, conf), settings_of(conf)))
    if args.json:
        print(json.dumps(r, indent=2, sort_keys=True))
        return 1 if r["failed"] else 0
    for uri, versions in sorted(r["keys"].items()):
        say(uri)
        order = sorted(versions, key=usage.version_key)
        for v in order:
            e = versions[v]
            tenants = ", ".join(t or "<default>" for t in e["tenants"])
            say(f"  version {v}: {e['files']} file(s), {e['bytes']} bytes, written "
                f"{_when(e['oldest_ms'] / 1000)} .. {_when(e['newest_ms'] / 1000)}; tenants: {tenants}")
        say(f"  oldest version still needed: {order[0]}")
    for uri, versions in sorted(r["untrusted"].items()):
        n = sum(e["files"] for e in versions.values())
        say(f"not trusted here: {uri} (versions {', '.join(sorted(versions, key=usage.version_key))}; "
            f"{n} file(s) name it)")
    for path, why in sorted(r["other"].items()):
        say(f"{why}: {path}")
    for path, why in sorted(r["failed"].items()):
        say(f"FAILED {path}: {why}")
    say(f"{r['encrypted']} encrypted file(s) of {r['files']}"
        + (f"; {len(r['failed'])} could not be checked" if r["failed"] else ""))
    return 1 if r["failed"] else 0


def cmd_destroy(args) -> int:
    conf = conf_of(args)
    blocked, unchecked = _retirement(args, conf, lambda st: usage.destroyed(args.uri, args.version, st)) \
        if args.check else ([], {})
    _print_blocked(blocked, unchecked, "WILL BE UNREADABLE")
    what = f"version {args.version} of {args.uri}" if args.version else f"every version of {args.uri}"
    why = ([] if args.yes else [f"without --yes ({len(blocked)} file(s) found under --check paths would "
                                "become unreadable)"]) + (["while --check could not check everything"] if unchecked else [])
    if why:
        say(f"refusing to destroy {what} " + " and ".join(why))
        return 1
    p = open_provider(args.uri, settings_of(conf))
    try:
        gone = admin.destroy(p, args.version)
    finally:
        p.close()
    say(f"destroyed {args.uri} version(s) {', '.join(gone)}; files wrapped only under them are now unreadable")
    return 0

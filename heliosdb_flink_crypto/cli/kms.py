"""``kms check URI``: prove a KMS is usable from here: connect, wrap and unwrap a throw-away test key,
print the latency of each call. Exit 0: usable; 1: the KMS answered but refused or returned a wrong
key; 2: bad arguments or settings. Provider settings come as ``-D heliosdb.crypto.kms.<p>.<k>=V``.
"""
from __future__ import annotations

import json
import os
import statistics
import time

from ..errors import KmsError
from ..kms import open_provider
from .trust import add_conf, conf_of, settings_of
from .term import say


def register(sub) -> None:
    kms = sub.add_parser("kms", help="KMS diagnostics: check that a KMS URI can wrap and unwrap")
    ks = kms.add_subparsers(dest="kms_command", required=True, metavar="ACTION")
    chk = ks.add_parser("check", help="connect, wrap and unwrap a test key, print latencies")
    chk.add_argument("uri", help="a KMS URI, e.g. aws-kms://alias/checkpoints?region=eu-west-1")
    chk.add_argument("-n", "--count", type=int, default=3, help="wrap/unwrap round trips to time (default 3)")
    chk.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_conf(chk)
    chk.set_defaults(func=cmd_check)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def check(uri: str, settings: dict[str, str], count: int = 3) -> dict:
    """Run the check; returns a report dict (raises KmsError if the KMS refuses)."""
    if count < 1:
        raise ValueError("--count must be 1 or more")
    p = open_provider(uri, settings)
    try:
        _, t_connect = _timed(p.test_connection)
        version, t_version = _timed(p.current_key_version)
        ctx = {"heliosdb:format": "1", "heliosdb:tenant": "kms-check", "heliosdb:dek-id": os.urandom(16).hex()}
        (dek, wrapped, gen_version), t_gen = _timed(lambda: p.generate_data_key(ctx))
        ok = p.unwrap(wrapped, gen_version, ctx) == dek and len(dek) == 32
        wraps, unwraps = [], []
        for _ in range(count):
            dek = os.urandom(32)
            (w, v), tw = _timed(lambda: p.wrap(dek, ctx))
            back, tu = _timed(lambda: p.unwrap(w, v, ctx))
            ok = ok and back == dek
            wraps.append(tw)
            unwraps.append(tu)
    finally:
        p.close()
    return {"uri": uri, "ok": ok, "key_version": version, "connect_ms": _ms(t_connect),
            "version_ms": _ms(t_version), "generate_data_key_ms": _ms(t_gen),
            "wrap_ms_median": _ms(statistics.median(wraps)), "unwrap_ms_median": _ms(statistics.median(unwraps)),
            "wrap_ms_max": _ms(max(wraps)), "unwrap_ms_max": _ms(max(unwraps)), "round_trips": count}


def cmd_check(args) -> int:
    settings = settings_of(conf_of(args))
    try:
        r = check(args.uri, settings, args.count)
    except KmsError as e:
        if args.json:
            print(json.dumps({"uri": args.uri, "ok": False, "error": str(e), "error_type": type(e).__name__}))
        say(f"heliosdb-flink-crypto kms check: FAILED: {e}", err=True)
        return 1
    if args.json:
        print(json.dumps(r))
    else:
        say(f"{r['uri']}: {'ok' if r['ok'] else 'FAILED: unwrap returned a different key'}")
        say(f"  key version        {r['key_version']}")
        say(f"  connect            {r['connect_ms']} ms")
        say(f"  generate data key  {r['generate_data_key_ms']} ms")
        say(f"  wrap               {r['wrap_ms_median']} ms median, {r['wrap_ms_max']} ms max "
              f"({r['round_trips']} round trips)")
        say(f"  unwrap             {r['unwrap_ms_median']} ms median, {r['unwrap_ms_max']} ms max")
    return 0 if r["ok"] else 1

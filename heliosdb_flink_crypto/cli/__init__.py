"""``heliosdb-flink-crypto``: one entry point, sub-commands registered by modules of this package.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)``; a sub-command's handler takes the
parsed args and returns an exit code. Errors of the package print one line to stderr and exit 2
(1 is reserved for "checked, and something failed", as ``verify`` uses it; 3 for a bug). Logging:
cli.logs (``-v`` is this package's debug log only); trusted KMS URIs and settings: cli.trust. Every
line for people goes through ``term.say`` (untrusted strings escaped).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import HeliosCryptoError
from . import logs
from .term import say

COMMAND_MODULES = ["core", "audit", "keys", "rewrap", "kms", "flink"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heliosdb-flink-crypto",
                                description="Client-side encryption for Apache Flink checkpoints.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging of this package on stderr")
    p.add_argument("--insecure-sdk-wire-log", action="store_true",
                   help="also the KMS SDKs' debug logs (requests and responses; key material they "
                        "show is redacted as far as it is recognisable): for troubleshooting only")
    p.add_argument("--version", action=_Version, help="print the package, file format and jar versions and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        from ..flink.versions import describe
        print(describe())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.verbose, args.insecure_sdk_wire_log)
    try:
        return int(args.func(args) or 0)
    except (HeliosCryptoError, ValueError, OSError, ImportError) as e:
        say(f"heliosdb-flink-crypto {args.command}: error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line, never a traceback (-v logs it)
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        say(f"heliosdb-flink-crypto {args.command}: unexpected error ({type(e).__name__}: {e}); "
            "this is a bug, please report it (-v shows where)", err=True)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

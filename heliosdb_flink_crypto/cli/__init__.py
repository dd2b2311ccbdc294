"""``heliosdb-flink-crypto``: one entry point, sub-commands registered by modules of this package.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)``; a sub-command's handler takes the
parsed args and returns an exit code. Errors of the package print one line to stderr and exit 2
(1 is reserved for "checked, and something failed", as ``verify`` uses it).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import HeliosCryptoError

COMMAND_MODULES = ["core", "audit", "keys", "rewrap", "kms", "flink"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heliosdb-flink-crypto",
                                description="Client-side encryption for Apache Flink checkpoints.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except (HeliosCryptoError, ValueError, OSError, ImportError) as e:
        print(f"heliosdb-flink-crypto {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

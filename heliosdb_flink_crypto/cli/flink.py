"""``flink`` sub-commands: install the shim into a Flink distribution, show where its jar is."""
from __future__ import annotations

import os
import sys

from .term import say


def register(sub) -> None:
    p = sub.add_parser("flink", help="Flink integration: install the enc+ FileSystem plugin")
    ps = p.add_subparsers(dest="flink_command", required=True, metavar="ACTION")
    ins = ps.add_parser("install", help="copy the shim into FLINK_HOME/plugins and print the config lines to add",
                        description="Copies the shim jar into FLINK_HOME/plugins/heliosdb-crypto/ and the lib "
                        "jar (metered state backend, tenant checkpoint storage) into lib/, puts "
                        "flink-python (pemja) into lib/ if missing, and prints config.yaml lines on stdout "
                        "(actions go to stderr, so `... >> conf/config.yaml` appends only configuration).")
    ins.add_argument("flink_home", metavar="FLINK_HOME", nargs="?", default=os.environ.get("FLINK_HOME"),
                     help="Flink distribution (default: $FLINK_HOME)")
    ins.add_argument("--python", default=os.environ.get("HELIOSDB_PYTHON", sys.executable),
                     help="Python executable with heliosdb-flink-crypto on every Flink host "
                     "(default: $HELIOSDB_PYTHON or this interpreter)")
    ins.add_argument("--kms-uri", help="value for heliosdb.crypto.kms.uri in the printed lines")
    ins.add_argument("--checkpoint-dir", help="value for execution.checkpointing.dir, e.g. enc+s3://bucket/ckpt")
    ins.add_argument("--jar", help="install this jar instead of the packaged one")
    ins.add_argument("--flink-version", help="the distribution's Flink version, when lib/flink-dist-*.jar "
                     "does not tell it (it picks the jars)")
    ins.add_argument("--dry-run", action="store_true", help="only say what would be copied")
    ins.add_argument("--print-only", action="store_true", help="only print the configuration lines")
    ins.set_defaults(func=cmd_install)
    jar = ps.add_parser("jar", help="print the path of the shim jar")
    jar.add_argument("--flink-version", help="of the jar built for this Flink (default: the installed PyFlink's)")
    jar.add_argument("--lib", action="store_true", help="the lib jar instead of the FileSystem plugin jar")
    jar.set_defaults(func=cmd_jar)


def cmd_install(args) -> int:
    from ..flink.install import config_lines, install
    if args.print_only:
        sys.stdout.write(config_lines(args.python, args.kms_uri, args.checkpoint_dir))
        return 0
    if not args.flink_home:
        raise ValueError("name FLINK_HOME (argument or environment variable)")
    r = install(args.flink_home, python_executable=args.python, kms_uri=args.kms_uri,
                checkpoint_dir=args.checkpoint_dir, dry_run=args.dry_run, jar=args.jar,
                flink_version=args.flink_version)
    for a in r.actions:
        say(("would " if args.dry_run else "") + a, err=True)
    for w in r.warnings:
        say("warning: " + w, err=True)
    say(f"add to {os.path.join(os.path.abspath(args.flink_home), 'conf', 'config.yaml')}:", err=True)
    sys.stdout.write(r.config)
    return 0


def cmd_jar(args) -> int:
    from ..flink import jar_path, lib_jar_path, versions
    line = versions.line_for(args.flink_version, "--flink-version") if args.flink_version else None
    print((lib_jar_path if args.lib else jar_path)(line))
    return 0

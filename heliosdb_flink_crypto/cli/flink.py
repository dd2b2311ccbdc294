"""``flink`` sub-commands: install the shim into a Flink distribution, show where its jar is."""
from __future__ import annotations

import os
import sys

from .term import say


def register(sub) -> None:
    p = sub.add_parser("flink", help="Flink integration: install the enc+ FileSystem plugin")
    ps = p.add_subparsers(dest="flink_command", required=True, metavar="ACTION")
    ins = ps.add_parser("install", help="copy the shim into FLINK_HOME and write (or print) the settings it needs",
                        description="Copies the shim jar into FLINK_HOME/plugins/heliosdb-crypto/ and the lib "
                        "jar (metered state backend, tenant checkpoint storage, JobManager metrics) into lib/, puts "
                        "flink-python (pemja) into lib/ if missing. With --write-config it makes the settings in "
                        "conf/config.yaml (flat or nested YAML; other lines and comments stay) and prints one line "
                        "per setting: set, changed or kept. Without it, it prints config.yaml lines on stdout "
                        "(actions go to stderr, so `... >> conf/config.yaml` appends only configuration).")
    ins.add_argument("flink_home", metavar="FLINK_HOME", nargs="?", default=os.environ.get("FLINK_HOME"),
                     help="Flink distribution (default: $FLINK_HOME)")
    ins.add_argument("--python", default=os.environ.get("HELIOSDB_PYTHON", sys.executable),
                     help="heliosdb.crypto.python.executable: the Python with heliosdb-flink-crypto on every "
                     "Flink host (default: $HELIOSDB_PYTHON or this interpreter)")
    ins.add_argument("--kms-uri", help="heliosdb.crypto.kms.uri, e.g. aws-kms://alias/flink?region=eu-west-1 "
                     "(required with --write-config unless config.yaml sets it)")
    ins.add_argument("--checkpoint-dir", help="execution.checkpointing.dir, e.g. enc+s3://bucket/flink/checkpoints")
    ins.add_argument("--savepoint-dir", help="execution.checkpointing.savepoint-dir (default with --checkpoint-dir: "
                     "savepoints next to the checkpoint directory, e.g. enc+s3://bucket/flink/savepoints)")
    ins.add_argument("--write-config", action="store_true",
                     help="write the settings into conf/config.yaml (conf/flink-conf.yaml on Flink 1.x) and "
                     "print what changed")
    ins.add_argument("--flink-metrics", action="store_true",
                     help="also set the lib jar's metered state backend (around the cluster's state backend) and "
                     "its JobManager reporter: the crypto metrics in Flink's REST API, web UI and reporters")
    ins.add_argument("--python-jobs", action="store_true",
                     help="also set python.executable and python.client.executable to --python (PyFlink jobs run "
                     "in the same environment, which then needs PyFlink of the cluster's version)")
    ins.add_argument("--jar", help="install this jar instead of the packaged one")
    ins.add_argument("--flink-version", help="the distribution's Flink version, when lib/flink-dist-*.jar "
                     "does not tell it (it picks the jars)")
    ins.add_argument("--dry-run", action="store_true", help="only say what would be copied and changed")
    ins.add_argument("--print-only", action="store_true", help="only print the configuration lines")
    ins.set_defaults(func=cmd_install)
    jar = ps.add_parser("jar", help="print the path of the shim jar")
    jar.add_argument("--flink-version", help="of the jar built for this Flink (default: the installed PyFlink's)")
    jar.add_argument("--lib", action="store_true", help="the lib jar instead of the FileSystem plugin jar")
    jar.set_defaults(func=cmd_jar)


def cmd_install(args) -> int:
    from ..flink.install import config_lines, install
    if args.print_only:
        sys.stdout.write(config_lines(args.python, args.kms_uri, args.checkpoint_dir, savepoint_dir=args.savepoint_dir,
                                      flink_metrics=args.flink_metrics, python_jobs=args.python_jobs))
        return 0
    if not args.flink_home:
        raise ValueError("name FLINK_HOME (argument or environment variable)")
    r = install(args.flink_home, python_executable=args.python, kms_uri=args.kms_uri,
                checkpoint_dir=args.checkpoint_dir, dry_run=args.dry_run, jar=args.jar,
                flink_version=args.flink_version, savepoint_dir=args.savepoint_dir, write=args.write_config,
                flink_metrics=args.flink_metrics, python_jobs=args.python_jobs)
    would = "would " if args.dry_run else ""
    for a in r.actions:
        say(would + a, err=True)
    for w in r.warnings:
        say("warning: " + w, err=True)
    conf = r.config_path
    if args.write_config:
        changed = any(not c.startswith("kept ") for c in r.changes)
        say(f"{conf} ({'dry run, not written' if args.dry_run else 'written' if changed else 'unchanged'}):")
        for c in r.changes:
            say("  " + c)
        return 0
    say(f"add to {conf} (or run again with --write-config):", err=True)
    sys.stdout.write(r.config)
    return 0


def cmd_jar(args) -> int:
    from ..flink import jar_path, lib_jar_path, versions
    line = versions.line_for(args.flink_version, "--flink-version") if args.flink_version else None
    print((lib_jar_path if args.lib else jar_path)(line))
    return 0

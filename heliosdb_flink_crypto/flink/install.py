"""Install the shim into a Flink distribution (``heliosdb-flink-crypto flink install FLINK_HOME``).

* the jars are those of the distribution's Flink line (:mod:`.versions`; its version is read from
  ``lib/flink-dist-VERSION.jar``): a Flink of no supported line is refused, naming the supported ones;
* the jar goes to ``FLINK_HOME/plugins/heliosdb-crypto/`` (a FileSystem plugin, own classloader);
* the lib jar goes to ``FLINK_HOME/lib/`` (the metered state backend and the tenant checkpoint
  storage: Flink loads those factories through the user-code classloader, which sees ``lib/``);
* pemja must be loaded once per JVM from ``lib/``: if ``lib/`` has no ``flink-python-*.jar`` (which
  bundles pemja), the one from ``opt/`` is copied there;
* the configuration lines to add are returned (and printed by the CLI): parent-first ``pemja.`` for
  plugins and user code, the Python executable, a KMS URI and a checkpoint directory to fill in.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from dataclasses import dataclass, field

from . import JAR_NAME, LIB_JAR_NAME, METERED_STATE_BACKEND, TENANT_CHECKPOINT_STORAGE, jar_path, lib_jar_path, versions
from .local import MALLOC_ENV, PARENT_FIRST

PLUGIN_DIR = os.path.join("plugins", "heliosdb-crypto")


@dataclass
class InstallResult:
    actions: list[str] = field(default_factory=list)  # what was (or would be) done, one line each
    warnings: list[str] = field(default_factory=list)
    config: str = ""  # config.yaml lines to add


def config_lines(python_executable: str, kms_uri: str | None = None, checkpoint_dir: str | None = None,
                 existing: str = "") -> str:
    """The config.yaml lines (Flink 2.x flat keys) the shim needs; keys already in ``existing`` are
    shown commented out."""
    entries = [
        ("# heliosdb-flink-crypto: plugin and PyFlink share the JVM's one pemja (lib/flink-python)", None),
        ("plugin.classloader.parent-first-patterns.additional", PARENT_FIRST),
        ("classloader.parent-first-patterns.additional", PARENT_FIRST),
        ("# the Python environment (on every host) where heliosdb-flink-crypto is installed", None),
        ("heliosdb.crypto.python.executable", python_executable),
        ("heliosdb.crypto.kms.uri", kms_uri or "local:///etc/heliosdb/keyring.json  # CHANGE ME"),
        ("execution.checkpointing.dir", checkpoint_dir or "enc+file:///var/flink/checkpoints  # CHANGE ME"),
        ("# optional: also encrypt savepoints and HA metadata", None),
        ("# execution.checkpointing.savepoint-dir", "enc+file:///var/flink/savepoints"),
        ("# high-availability.storageDir", "enc+file:///var/flink/ha"),
        ("# encrypted streams use direct buffers (up to ~16 MiB per large stream): leave off-heap room (Flink default 128m; add the extra 128m to taskmanager.memory.process.size)", None),
        ("taskmanager.memory.framework.off-heap.size", "256m"),
        ("jobmanager.memory.off-heap.size", "256m"),
        ("# optional (lib/heliosdb-flink-crypto-lib.jar): the crypto metrics in Flink's own metric system (REST API, "
         "web UI, Flink's reporters, e.g. flink_taskmanager_heliosdb_checkpoint_encryption_total); the real "
         "backend goes to heliosdb.crypto.state-backend (hashmap, rocksdb, forst)", None),
        ("# state.backend.type", METERED_STATE_BACKEND),
        ("# heliosdb.crypto.state-backend", "rocksdb"),
        ("# optional, session clusters with tenants: a job restores only checkpoints of its own tenant (the tenant "
         "of its execution.checkpointing.dir); guards against mistakes, not against hostile job code", None),
        ("# execution.checkpointing.storage", TENANT_CHECKPOINT_STORAGE),
    ]
    present = {line.split(":", 1)[0].strip() for line in existing.splitlines()
               if ":" in line and not line.lstrip().startswith("#")}
    out = []
    for key, value in entries:
        if value is None:
            out.append(key)
        elif key in present:
            out.append(f"# already set in config.yaml, check it: {key}: {value}")
        else:
            out.append(f"{key}: {value}")
    env = " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
    out.append(f"# optional, faster with large segments: start the cluster with {env} in its environment")
    return "\n".join(out) + "\n"


def install(flink_home: str, *, python_executable: str | None = None, kms_uri: str | None = None,
            checkpoint_dir: str | None = None, dry_run: bool = False, jar: str | None = None,
            flink_version: str | None = None) -> InstallResult:
    """Install into ``flink_home`` the jars of its Flink line (its version from ``lib/flink-dist-*.jar``,
    or ``flink_version``); with ``dry_run`` only say what would be done. UnsupportedFlinkError for a
    Flink of no supported line."""
    home = os.path.abspath(flink_home)
    lib = os.path.join(home, "lib")
    if not os.path.isdir(lib):
        raise ValueError(f"{home} is not a Flink distribution (no lib/ folder)")
    version = flink_version or versions.distribution_version(home)
    line = versions.line_for(version, home if flink_version else f"{lib}/flink-dist-*.jar")
    r = InstallResult()
    r.actions.append(f"Flink {version}: the jars built for Flink {line.line}")
    src = jar or jar_path(line)
    versions.check_jar(src, line, "--jar" if jar else "HELIOSDB_SHIM_JAR")
    dest_dir = os.path.join(home, PLUGIN_DIR)
    dest = os.path.join(dest_dir, JAR_NAME)
    r.actions.append(f"copy {src} -> {dest}")
    if not dry_run:
        os.makedirs(dest_dir, exist_ok=True)
        shutil.copyfile(src, dest)
    try:
        lib_src = lib_jar_path(line)
    except FileNotFoundError as e:
        r.warnings.append(f"{e}: the optional metered state backend and tenant checkpoint storage are not installed")
    else:
        versions.check_jar(lib_src, line, "HELIOSDB_LIB_JAR")
        lib_dest = os.path.join(lib, LIB_JAR_NAME)
        r.actions.append(f"copy {lib_src} -> {lib_dest}")
        if not dry_run:
            shutil.copyfile(lib_src, lib_dest)
    for other in glob.glob(os.path.join(home, "plugins", "*", "pemja*.jar")):
        r.warnings.append(f"{other}: a second pemja in plugins/ breaks loading on JDK 17; remove it")
    if not glob.glob(os.path.join(lib, "flink-python*.jar")):
        candidates = sorted(glob.glob(os.path.join(home, "opt", "flink-python*.jar")))
        if candidates:
            target = os.path.join(lib, os.path.basename(candidates[-1]))
            r.actions.append(f"copy {candidates[-1]} -> {target} (pemja, loaded once per JVM from lib/)")
            if not dry_run:
                shutil.copyfile(candidates[-1], target)
        else:
            r.warnings.append(f"no flink-python jar in {home}/opt or lib: put flink-python-{version}.jar "
                              f"(it bundles pemja) into {lib}")
    existing = ""
    for name in ("config.yaml", "flink-conf.yaml"):
        path = os.path.join(home, "conf", name)
        if os.path.isfile(path):
            with open(path) as f:
                existing = f.read()
            break
    r.config = config_lines(python_executable or sys.executable, kms_uri, checkpoint_dir, existing)
    return r


__all__ = ["InstallResult", "config_lines", "install", "PLUGIN_DIR"]

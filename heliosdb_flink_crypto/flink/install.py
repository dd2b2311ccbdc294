"""Install the shim into a Flink distribution (``heliosdb-flink-crypto flink install FLINK_HOME``).

* the jars are those of the distribution's Flink line (:mod:`.versions`; its version is read from
  ``lib/flink-dist-VERSION.jar``): a Flink of no supported line is refused, naming the supported ones;
* the jar goes to ``FLINK_HOME/plugins/heliosdb-crypto/`` (a FileSystem plugin, own classloader);
* the lib jar goes to ``FLINK_HOME/lib/`` (the metered state backend and the tenant checkpoint
  storage: Flink loads those factories through the user-code classloader, which sees ``lib/``);
* pemja must be loaded once per JVM from ``lib/``: if ``lib/`` has no ``flink-python-*.jar`` (which
  bundles pemja), the one from ``opt/`` is copied there;
* the settings (:mod:`.settings`: parent-first ``pemja.``, the Python executable, the KMS URI, the
  checkpoint and savepoint directories, the lib jar's checkpoint storage, off-heap memory; the lib
  jar's metrics with ``flink_metrics``) are written into ``conf/config.yaml`` in place (``write``:
  :mod:`.confyaml` keeps every other line and comment, and the changes are returned one per line), or
  returned as lines to add.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ConfigError
from . import (JAR_NAME, JOBMANAGER_METRICS_REPORTER, LIB_JAR_NAME, METERED_STATE_BACKEND, TENANT_CHECKPOINT_STORAGE,
               jar_path, lib_jar_path, versions)
from .confyaml import ConfigFile, scalar
from .local import MALLOC_ENV
from .settings import settings, storage

PLUGIN_DIR = os.path.join("plugins", "heliosdb-crypto")
#: the checkpoint directory printed (to change) when none is given or set
PLACEHOLDER_CHECKPOINT_DIR = "enc+file:///var/flink/checkpoints"


@dataclass
class InstallResult:
    actions: list[str] = field(default_factory=list)  # what was (or would be) done, one line each
    warnings: list[str] = field(default_factory=list)
    config: str = ""  # config.yaml lines to add
    changes: list[str] = field(default_factory=list)  # with write_config: what changed in config.yaml
    config_path: str = ""  # the configuration file read (and written with write_config)


def config_file(home: str) -> ConfigFile:
    """The distribution's configuration: ``conf/config.yaml``, else Flink 1.x's ``conf/flink-conf.yaml``,
    else a new ``conf/config.yaml``."""
    for name in ("config.yaml", "flink-conf.yaml"):
        path = os.path.join(home, "conf", name)
        if os.path.isfile(path):
            return ConfigFile(path)
    return ConfigFile(os.path.join(home, "conf", "config.yaml"))


def config_lines(python_executable: str, kms_uri: str | None = None, checkpoint_dir: str | None = None,
                 existing: Mapping[str, str] | None = None, savepoint_dir: str | None = None,
                 flink_metrics: bool = False, python_jobs: bool = False) -> str:
    """The config.yaml lines (Flink 2.x flat keys) the shim needs; keys already in ``existing`` are
    shown commented out (appending them again would set them twice)."""
    existing = existing or {}
    wanted, notes = settings(existing, python_executable, kms_uri, checkpoint_dir, savepoint_dir, flink_metrics,
                             python_jobs)
    out = ["# heliosdb-flink-crypto (heliosdb-flink-crypto flink install)"]
    if not any(s.key == "heliosdb.crypto.kms.uri" for s in wanted):
        out.append("heliosdb.crypto.kms.uri: local:///etc/heliosdb/keyring.json  # CHANGE ME")
    if not any(s.key == "execution.checkpointing.dir" for s in wanted):
        out.append(f"execution.checkpointing.dir: {PLACEHOLDER_CHECKPOINT_DIR}  # CHANGE ME")
        wanted += storage(existing, PLACEHOLDER_CHECKPOINT_DIR, notes)
    for s in wanted:
        line = f"{s.key}: {scalar(s.value)}"
        if s.key not in existing:
            out.append(f"{line}  # {s.why}" if s.why else line)
        elif existing[s.key] == s.value:
            out.append(f"# already set in config.yaml: {line}")
        else:
            out.append(f"# already set in config.yaml, change it to: {line}  (it has {existing[s.key]}; {s.why})")
    out += [f"# note: {n}" for n in notes]
    if not flink_metrics:
        out += ["# optional (--flink-metrics), lib jar: the crypto metrics in Flink's own metric system (REST API, web "
                "UI, Flink's reporters, e.g. flink_taskmanager_heliosdb_checkpoint_encryption_total and "
                "flink_jobmanager_heliosdb_checkpoint_encryption_total); the real backend goes to "
                "heliosdb.crypto.state-backend (hashmap, rocksdb, forst)",
                f"# state.backend.type: {METERED_STATE_BACKEND}",
                f"# heliosdb.crypto.state-backend: {existing.get('state.backend.type') or 'hashmap'}",
                f"# metrics.reporter.heliosdb.factory.class: {JOBMANAGER_METRICS_REPORTER}"]
    out += ["# optional: high-availability.storageDir: enc+<scheme>://.../ha (it holds checkpoints with inline state)"]
    env = " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
    out.append(f"# optional, faster with large segments: start the cluster with {env} in its environment")
    return "\n".join(out) + "\n"


def write_config(conf: ConfigFile, python_executable: str, kms_uri: str | None = None,
                 checkpoint_dir: str | None = None, savepoint_dir: str | None = None,
                 flink_metrics: bool = False, python_jobs: bool = False,
                 dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Makes the settings in ``conf`` (in place: other lines and comments stay) and writes it unless
    ``dry_run``. Returns (one line per setting: set / changed / kept, warnings). ConfigError when no
    KMS URI is given or set (the file is then left as it was)."""
    wanted, notes = settings(conf.values(), python_executable, kms_uri, checkpoint_dir, savepoint_dir, flink_metrics,
                             python_jobs)
    if not any(s.key == "heliosdb.crypto.kms.uri" for s in wanted):
        raise ConfigError("heliosdb.crypto.kms.uri", f"not set in {conf.path}: pass --kms-uri")
    changes = []
    for s in wanted:
        try:
            old = conf.set(s.key, s.value)
        except ValueError as e:
            notes.append(str(e))
            continue
        if old is None:
            changes.append(f"set {s.key}: {s.value}")
        elif old != s.value:
            changes.append(f"changed {s.key}: {old} -> {s.value}" + (f" ({s.why})" if "raised" in s.why else ""))
        else:
            changes.append(f"kept {s.key}: {s.value}")
    if not dry_run and any(not c.startswith("kept ") for c in changes):
        conf.write()
    return changes, notes


def install(flink_home: str, *, python_executable: str | None = None, kms_uri: str | None = None,
            checkpoint_dir: str | None = None, dry_run: bool = False, jar: str | None = None,
            flink_version: str | None = None, savepoint_dir: str | None = None, write: bool = False,
            flink_metrics: bool = False, python_jobs: bool = False) -> InstallResult:
    """Install into ``flink_home`` the jars of its Flink line (its version from ``lib/flink-dist-*.jar``,
    or ``flink_version``); with ``dry_run`` only say what would be done; with ``write`` make the
    settings in its configuration file (:func:`write_config`), else return the lines to add.
    UnsupportedFlinkError for a Flink of no supported line."""
    home = os.path.abspath(flink_home)
    lib = os.path.join(home, "lib")
    if not os.path.isdir(lib):
        raise ValueError(f"{home} is not a Flink distribution (no lib/ folder)")
    version = flink_version or versions.distribution_version(home)
    line = versions.line_for(version, home if flink_version else f"{lib}/flink-dist-*.jar")
    r = InstallResult()
    r.actions.append(f"Flink {version}: the jars built for Flink {line.line}")
    conf = config_file(home)
    r.config_path = conf.path
    python = python_executable or sys.executable
    if write:  # a refusal (no KMS URI) comes before any jar is copied
        write_config(conf, python, kms_uri, checkpoint_dir, savepoint_dir, flink_metrics, python_jobs, dry_run=True)
    _copy_jars(home, lib, line, jar, version, r, dry_run)
    if write:
        r.changes, notes = write_config(config_file(home), python, kms_uri, checkpoint_dir, savepoint_dir,
                                        flink_metrics, python_jobs, dry_run=dry_run)
        r.warnings += notes
    else:
        r.config = config_lines(python, kms_uri, checkpoint_dir, conf.values(), savepoint_dir, flink_metrics,
                                python_jobs)
    return r


def _copy_jars(home: str, lib: str, line, jar: str | None, version: str, r: InstallResult, dry_run: bool) -> None:
    """The plugin jar, the lib jar and (if lib/ has none) flink-python into ``home``."""
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
        r.warnings.append(f"{e}: the lib jar is not installed (the metered state backend, the checkpoint storage): "
                          f"a configuration naming {TENANT_CHECKPOINT_STORAGE} or {METERED_STATE_BACKEND} fails "
                          "every job until it is")
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


__all__ = ["InstallResult", "PLUGIN_DIR", "config_file", "config_lines", "install", "write_config"]

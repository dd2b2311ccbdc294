"""Encrypted schemes for ``python job.py`` (PyFlink's local MiniCluster), in one call.

PyFlink runs a local job inside its gateway JVM and never loads FileSystem plugins there, so
``enc+file://`` would be an unknown scheme. :func:`enable` fixes that over py4j, before the job
runs: it builds a plugin manager over a plugins folder holding the shim jar (plus every plugin of
``FLINK_PLUGINS_DIR``, e.g. an S3 FileSystem) and calls
``FileSystem.initialize(configuration, pluginManager)``, exactly what a Flink process does at
start. That is also how the ``heliosdb.crypto.*`` options reach the shim: a FileSystem sees the
configuration it was initialized with, never a job's. pemja (inside flink-python, already on the
gateway's classpath) is made parent-first so the plugin shares the JVM's one copy.

The jars are those of the gateway JVM's Flink line (:mod:`.versions`): a Flink of no supported line is
refused naming the supported ones.

Why not a jar in ``FLINK_LIB_DIR``? It only works with ``FLINK_HOME`` set before the gateway
starts, and FileSystems found on the classpath are configured with an empty configuration unless
``FileSystem.initialize`` runs anyway.

    from heliosdb_flink_crypto.flink.local import enable
    enable({"heliosdb.crypto.kms.uri": "local:///secure/keyring.json"})
    env = StreamExecutionEnvironment.get_execution_environment(Configuration().set_string(
        "execution.checkpointing.dir", "enc+file:///tmp/checkpoints"))

The lib jar (metered state backend, tenant checkpoint storage) must be on the gateway JVM's class
path, like a jar in a cluster's ``lib/``: when :func:`enable` starts the gateway it adds the jar
through ``HADOOP_CLASSPATH``, the one variable PyFlink appends to the gateway's ``-cp`` as it is.
If the gateway was already running, it cannot be added any more (a warning says so).
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import sys
import tempfile
from typing import Mapping

from . import jar_path, lib_jar_path, versions

log = logging.getLogger(__name__)

PLUGIN_DIR_NAME = "heliosdb-crypto"
PARENT_FIRST = "pemja."
#: glibc settings that keep large buffers mapped (flink-facts.md); only effective before the JVM starts
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def flink_configuration(conf: Mapping[str, object] | None = None,
                        python_executable: str | None = None) -> dict[str, str]:
    """The configuration :func:`enable` initializes FileSystems with: ``conf`` as strings, the Python
    executable (this interpreter unless given) and ``pemja.`` among the parent-first patterns."""
    out = {str(k): _text(v) for k, v in (conf or {}).items()}
    out.setdefault("heliosdb.crypto.python.executable", python_executable or sys.executable)
    for key in ("plugin.classloader.parent-first-patterns.additional",
                "classloader.parent-first-patterns.additional"):
        patterns = [p for p in out.get(key, "").replace(",", ";").split(";") if p.strip()]
        if PARENT_FIRST not in patterns:
            patterns.append(PARENT_FIRST)
        out[key] = ";".join(patterns)
    return out


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    return str(v)


def plugins_root(extra_plugins_dir: str | None = None, root: str | None = None, jar: str | None = None) -> str:
    """A plugins folder: ``heliosdb-crypto/`` with the shim jar (``jar``, default :func:`jar_path`), and
    a link to every plugin folder of ``extra_plugins_dir`` (default: ``FLINK_PLUGINS_DIR``, else PyFlink's own)."""
    root = root or tempfile.mkdtemp(prefix="heliosdb-flink-plugins-")
    mine = os.path.join(root, PLUGIN_DIR_NAME)
    os.makedirs(mine, exist_ok=True)
    jar = jar or jar_path()
    target = os.path.join(mine, os.path.basename(jar))
    shutil.copyfile(jar, target + ".tmp")
    os.replace(target + ".tmp", target)  # a new file: a JVM reading the old jar keeps reading it whole
    source = extra_plugins_dir or os.environ.get("FLINK_PLUGINS_DIR") or _pyflink_plugins()
    if source and os.path.isdir(source):
        for name in sorted(os.listdir(source)):
            src = os.path.join(source, name)
            dst = os.path.join(root, name)
            if name != PLUGIN_DIR_NAME and os.path.isdir(src) and not os.path.exists(dst):
                os.symlink(os.path.realpath(src), dst)
    return root


def _pyflink_plugins() -> str | None:
    try:
        import pyflink
    except ImportError:  # pragma: no cover - the flink extra is missing
        return None
    return os.path.join(os.path.dirname(pyflink.__file__), "plugins")


def enable(conf: Mapping[str, object] | None = None, *, python_executable: str | None = None,
           plugins_dir: str | None = None, gateway=None) -> dict[str, str]:
    """Register ``enc+file://``, ``enc+s3://``, ... in this process's PyFlink JVM (starting it if
    needed) with ``conf`` (``heliosdb.crypto.*`` and any other Flink FileSystem settings, such as
    ``s3.endpoint``). Call it before the job runs; calling it again replaces the configuration.
    Returns the configuration used."""
    for k, v in MALLOC_ENV.items():  # before the gateway JVM starts (no effect afterwards)
        os.environ.setdefault(k, v)
    if gateway is None:
        from pyflink import java_gateway
        if java_gateway._gateway is None:
            add_lib_jar_to_gateway_classpath()
        elif not _has_lib(java_gateway._gateway):
            log.warning("the PyFlink gateway was started before enable(): the lib jar (metered state "
                        "backend, tenant checkpoint storage) is not on its class path")
        gateway = java_gateway.get_gateway()
    jvm = gateway.jvm
    line = versions.line_for(str(jvm.org.apache.flink.runtime.util.EnvironmentInformation.getVersion()),
                             "the PyFlink gateway's JVM")
    jar = jar_path(line)
    versions.check_jar(jar, line, "HELIOSDB_SHIM_JAR")
    full = flink_configuration(conf, python_executable)
    jconf = jvm.org.apache.flink.configuration.Configuration()
    for k, v in full.items():
        jconf.setString(k, v)
    root = plugins_root(plugins_dir, _process_root(), jar)
    finder = jvm.org.apache.flink.core.plugin.DirectoryBasedPluginFinder(
        jvm.java.nio.file.Paths.get(root, gateway.new_array(jvm.java.lang.String, 0)))
    patterns = jvm.org.apache.flink.configuration.CoreOptions.getPluginParentFirstLoaderPatterns(jconf)
    manager = jvm.org.apache.flink.core.plugin.DefaultPluginManager(finder.findPlugins(), patterns)
    jvm.org.apache.flink.core.fs.FileSystem.initialize(jconf, manager)
    return full


@functools.cache
def _process_root() -> str:
    """One plugins folder per process for :func:`enable` (a second call refreshes it), removed when
    the process exits: every ``python job.py`` used to leave a copy of the shim jar in the temp folder.
    The gateway JVM keeps the jar it opened; it ends with this process."""
    root = tempfile.mkdtemp(prefix="heliosdb-flink-plugins-")
    atexit.register(shutil.rmtree, root, True)
    return root


def add_lib_jar_to_gateway_classpath(environ=None) -> str | None:
    """Put the lib jar on the class path of a PyFlink gateway started later from ``environ``
    (default ``os.environ``) through ``HADOOP_CLASSPATH``; returns the jar, or None if it is not built."""
    environ = os.environ if environ is None else environ
    try:
        jar = lib_jar_path(gateway_line(environ))
    except FileNotFoundError:
        log.info("lib jar not built: the metered state backend and tenant checkpoint storage are unavailable")
        return None
    parts = [p for p in environ.get("HADOOP_CLASSPATH", "").split(os.pathsep) if p]
    if jar not in parts:
        environ["HADOOP_CLASSPATH"] = os.pathsep.join(parts + [jar])
    return jar


def gateway_line(environ=None) -> versions.Line:
    """The Flink line of a PyFlink gateway started from ``environ``: that of ``FLINK_HOME``'s
    distribution when it is set (PyFlink then runs its jars), else the installed PyFlink's."""
    environ = os.environ if environ is None else environ
    home = environ.get("FLINK_HOME")
    if home:
        return versions.line_for(versions.distribution_version(home), f"FLINK_HOME={home}")
    return versions.default_line()


def _has_lib(gateway) -> bool:
    try:
        gateway.jvm.java.lang.Class.forName("io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory")
        return True
    except Exception:  # py4j wraps ClassNotFoundException
        return False


__all__ = ["add_lib_jar_to_gateway_classpath", "enable", "flink_configuration", "gateway_line", "plugins_root", "MALLOC_ENV",
           "PARENT_FIRST"]

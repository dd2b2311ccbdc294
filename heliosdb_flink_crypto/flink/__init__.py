"""Flink integration: the Java shim's jar, the hooks it calls, ``flink install`` and the local helper.

* :func:`jar_path` the built shim jar of a Flink line (``scripts/build-shim.sh`` puts each line's
  jars in ``flink/jars/flink-LINE/``; :mod:`.versions` lists the lines), a FileSystem plugin;
  :func:`lib_jar_path` the lib jar for Flink's ``lib/`` (the metered state backend and the tenant
  checkpoint storage, :mod:`.lib_ops`).
* :mod:`.hooks` the Python side the shim calls through pemja (one ``dispatch`` entry).
* :mod:`.install` copies the jar into a Flink distribution (``heliosdb-flink-crypto flink install``).
* :mod:`.local` enables the encrypted schemes for ``python job.py`` (PyFlink's local MiniCluster).
"""
from __future__ import annotations

import os

from . import versions

JAR_NAME = "heliosdb-flink-crypto-shim.jar"
LIB_JAR_NAME = "heliosdb-flink-crypto-lib.jar"
#: the lib jar's factories (config values of state.backend.type and execution.checkpointing.storage)
METERED_STATE_BACKEND = "io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory"
TENANT_CHECKPOINT_STORAGE = "io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory"
#: metrics.reporter.heliosdb.factory.class: the crypto gauges on the JobManager's metric group
JOBMANAGER_METRICS_REPORTER = "io.heliosdb.flink.crypto.lib.JobManagerMetricsFactory"
#: the encrypted schemes the shim registers, and the scheme each one wraps
SCHEMES = {"enc+file": "file", "enc+s3": "s3", "enc+s3a": "s3a", "enc+s3p": "s3p", "enc+gs": "gs",
           "enc+hdfs": "hdfs", "enc+abfss": "abfss"}


def jar_path(line: "versions.Line | None" = None) -> str:
    """Path of the shim jar for Flink ``line`` (default: the installed PyFlink's line,
    :func:`versions.default_line`); FileNotFoundError (saying how to build it) if it is missing."""
    return _jar(JAR_NAME, "HELIOSDB_SHIM_JAR", line)


def lib_jar_path(line: "versions.Line | None" = None) -> str:
    """Path of the lib jar (for Flink's ``lib/``) for Flink ``line``; FileNotFoundError if it is missing."""
    return _jar(LIB_JAR_NAME, "HELIOSDB_LIB_JAR", line)


def _jar(name: str, env: str, line) -> str:
    path = os.environ.get(env) or versions.jar_file(name, line or versions.default_line())
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} not found at {path}: run scripts/build-shim.sh "
                                f"(needs Java 11+ and Maven) or set {env}")
    return path


__all__ = ["JAR_NAME", "JOBMANAGER_METRICS_REPORTER", "LIB_JAR_NAME", "METERED_STATE_BACKEND", "SCHEMES",
           "TENANT_CHECKPOINT_STORAGE", "jar_path", "lib_jar_path"]

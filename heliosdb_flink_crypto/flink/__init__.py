"""Flink integration: the Java shim's jar, the hooks it calls, ``flink install`` and the local helper.

* :func:`jar_path` the built shim jar (``scripts/build-shim.sh`` puts it in ``flink/jars/``).
* :mod:`.hooks` the Python side the shim calls through pemja (one ``dispatch`` entry).
* :mod:`.install` copies the jar into a Flink distribution (``heliosdb-flink-crypto flink install``).
* :mod:`.local` enables the encrypted schemes for ``python job.py`` (PyFlink's local MiniCluster).
"""
from __future__ import annotations

import os

JAR_NAME = "heliosdb-flink-crypto-shim.jar"
#: the encrypted schemes the shim registers, and the scheme each one wraps
SCHEMES = {"enc+file": "file", "enc+s3": "s3", "enc+s3a": "s3a", "enc+s3p": "s3p", "enc+gs": "gs",
           "enc+hdfs": "hdfs", "enc+abfss": "abfss"}


def jar_path() -> str:
    """Path of the shim jar; FileNotFoundError (saying how to build it) if it is missing."""
    override = os.environ.get("HELIOSDB_SHIM_JAR")
    path = override or os.path.join(os.path.dirname(os.path.abspath(__file__)), "jars", JAR_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shim jar not found at {path}: run scripts/build-shim.sh "
                                "(needs Java 11+ and Maven) or set HELIOSDB_SHIM_JAR")
    return path


__all__ = ["JAR_NAME", "SCHEMES", "jar_path"]

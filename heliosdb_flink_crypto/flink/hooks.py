"""The Python side of the Java shim, called in-process through pemja: the module both jars load.

The shim calls ONE function, :func:`dispatch` ``(op, *args)`` (the bridge protocol, bridge.py);
importing this module registers every group of operations into the bridge. Arguments and results are
ints, strings, bytes and tuples only; every error raised names the file, option or key at fault and
no message carries key material. Keys stay in this process. Loaded by pemja, it holds the KMS SDKs'
loggers at WARNING and puts pemja's log handler behind the redacting filter (logsafe.py).

Operations (``dispatch(op, ...)``), by the module that holds them:

* bridge.py: ``configure(conf_json) -> session`` (the ``heliosdb.crypto.*`` entries of Flink's
  configuration; a ConfigError names the key), ``register(address, size) -> buffer`` /
  ``unregister(buffer)`` (the shim's reusable direct ByteBuffers), ``metrics_snapshot() -> json``,
  ``ping() -> version``, ``protocol() -> int`` (the jars refuse a package that answers another)
* file_ops.py: ``writer(session, path) -> (handle, header_bytes, segment_size, overhead)``, then
  ``seal``/``seal_bytes`` and ``finish``/``discard``; ``reader(session, path, header_bytes) ->
  handle``, then ``open``/``open_bytes`` and ``close``; ``malformed(session, path, reason)``
* rebind.py: ``reseal(session, src, dst, header) -> header | b""`` (a rename changes the binding name)
* lib_ops.py: ``flink_metrics(conf_json) -> json`` and ``check_restore(session, job_dir, pointer)
  -> tenant`` (the lib jar's metered state backend and tenant checkpoint storage)
* insecure_ops.py: ``insecure_reader_with_dek(path, header_bytes, dek_hex, bound_name) -> handle``,
  tests only (format vectors), refused unless ``HELIOSDB_INSECURE_TEST_HOOKS=1``
"""
from __future__ import annotations

import sys

from .. import logsafe
from . import file_ops, insecure_ops, lib_ops, rebind  # noqa: F401 (importing them registers their operations)
from .bridge import OPS, dispatch, reset, session

if "pemja" in sys.modules:  # in a Flink process: pemja sends Python's records to Java's logging
    logsafe.guard_embedded()

__all__ = ["OPS", "dispatch", "reset", "session"]

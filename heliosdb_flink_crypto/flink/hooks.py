"""The Python side of the Java shim, called in-process through pemja: the module both jars load.

The shim calls ONE function, :func:`dispatch` ``(op, *args)`` (the bridge protocol, bridge.py);
importing this module registers every group of operations into the bridge. Arguments and results are
ints, strings, bytes and tuples only; every error raised names the file, option or key at fault and
no message carries key material. Keys stay in this process.

==========================  ==============================================================  ==============
operation                   what                                                            module
==========================  ==============================================================  ==============
``configure(conf_json)``    a session for the ``heliosdb.crypto.*`` entries of Flink's       bridge
                            configuration (a ConfigError names the key)
``register(address, size)`` a reusable direct ByteBuffer, by id / ``unregister(buffer)``     bridge
``metrics_snapshot()``      the process's metrics as JSON; ``ping() -> version``              bridge
``writer(session, path)``   ``(handle, header_bytes, segment_size, overhead)``; then          file_ops
                            ``seal``/``seal_bytes`` and ``finish``/``discard``
``reader(session, path,     a handle checked against ``path``'s binding name; then           file_ops
header_bytes)``             ``open``/``open_bytes`` and ``close``
``malformed(session, path,  the shim could not frame a file (bad magic, length)              file_ops
reason)``
``reseal(session, src,      a rename changes the binding name: the header for ``dst``        rebind
dst, header)``
``flink_metrics(conf_json)`` the lib jar's gauges; ``check_restore(session, job_dir,         lib_ops
                            pointer)`` its tenant guard
``insecure_reader_with_dek  tests only (format vectors), refused unless                      insecure_ops
(path, header, dek, name)`` ``HELIOSDB_INSECURE_TEST_HOOKS=1``
==========================  ==============================================================  ==============
"""
from __future__ import annotations

from . import file_ops, insecure_ops, lib_ops, rebind  # noqa: F401 (importing them registers their operations)
from .bridge import OPS, dispatch, reset, session

__all__ = ["OPS", "dispatch", "reset", "session"]

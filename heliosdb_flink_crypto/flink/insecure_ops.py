"""The bridge's test-only operation (format vectors carry their DEK; version 1 files readable):

* ``insecure_reader_with_dek(path, header_bytes, dek_hex, bound_name) -> handle``: a reader handle
  (read with file_ops' ``open``/``open_bytes``/``close``) for a header opened with a caller-given
  data key; refused unless ``HELIOSDB_INSECURE_TEST_HOOKS=1``. It reports no events: not a real read.
"""
from __future__ import annotations

import os

from ..engine import check_binding, check_version, open_header
from ..format import parse
from . import bridge
from .file_ops import FileReader


@bridge.operation
def insecure_reader_with_dek(path: str, header: bytes, dek_hex: str, bound_name: str = "") -> int:
    """TESTS ONLY: open a header with a caller-given data key and check it is sealed for
    ``bound_name``. Refused unless HELIOSDB_INSECURE_TEST_HOOKS=1."""
    if os.environ.get("HELIOSDB_INSECURE_TEST_HOOKS") != "1":
        raise PermissionError("insecure_reader_with_dek is for tests (HELIOSDB_INSECURE_TEST_HOOKS=1)")
    h = parse(header, path)
    check_version(h, True, path)
    keys = open_header(h, bytes(header[:h.length]), bytes.fromhex(dek_hex), path)
    check_binding(h, bound_name, path)
    return bridge.add_handle(FileReader(keys, path, h.segment_size))

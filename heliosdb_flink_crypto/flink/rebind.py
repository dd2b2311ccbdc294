"""Bridge operation for the shim's rename: a file moved to a place with another binding name (F-24).

RocksDB and ForSt write ``CURRENT``, ``IDENTITY`` and ``OPTIONS-*`` as ``<n>.dbtmp`` and rename them
into place. A version 2 header is sealed for its name, so such a rename re-seals the header:

* ``reseal(session, src, dst, header) -> bytes``: ``header`` (the raw bytes at the start of ``src``,
  at least its header length) is authenticated and checked against ``src``'s binding name exactly as
  a read would; the result is the header for ``dst``: the same DEK, salt, nonce prefix and key slots,
  ``dst``'s binding name, a new MAC. The body keys do not depend on the name, so the shim writes this
  header followed by the body bytes unchanged. ``b""`` when nothing is to be re-sealed: both paths
  have the same binding name, or the file is of format version 1 (it carries no name).

A rename into another tenant's prefix is refused (the file could never be read there).
"""
from __future__ import annotations

from dataclasses import replace

from ..crypto import name_for
from ..engine import seal_header
from ..errors import HeliosCryptoError
from ..format import VERSION_1
from . import bridge
from ..errors import TenantMismatchError


@bridge.operation
def reseal(sid: int, src: str, dst: str, header: bytes) -> bytes:
    session = bridge.session(sid)
    crypto = session.crypto_for(src)
    try:
        h, keys = crypto.open_file(header, src)
    except HeliosCryptoError as e:
        crypto.report_open_failure(e, src)
        raise
    name = name_for(dst)
    if h.version == VERSION_1 or h.name == name:
        return b""
    target = session.crypto_for(dst)
    if target.tenant != h.tenant:
        raise TenantMismatchError(dst, h.tenant, target.tenant)
    _, raw, _ = seal_header(replace(h, name=name), keys)
    crypto.bus.emit("rebind", "ok", path=dst, previous=src, file_id=h.file_id, tenant=h.tenant)
    return raw


__all__ = ["reseal"]

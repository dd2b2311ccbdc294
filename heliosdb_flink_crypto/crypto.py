"""CheckpointCrypto: encrypts and decrypts checkpoint files with data keys from the configured KMSs.

The one object a user (or the Flink hooks) holds. New files get a header from the segment engine
(``engine/``: per-file keys, AEAD segments, headers, streams) sealed with a cached DEK that every
configured KMS wrapped (:class:`~heliosdb_flink_crypto.datakeys.DataKeySource`); existing files are
opened by finding their DEK in the cache or through any configured KMS that can unwrap one of the
header's key slots. Every file's events come from one :class:`~heliosdb_flink_crypto.observe.FileEvents`.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

from .config import option
from .datakeys import DataKeySource
from .engine.buffers import MEMORY_TYPES
from .engine import (DecryptingReader, EncryptingWriter, FileKeys, check_binding, check_version, name_for,
                     new_header, open_header)
from .errors import AuthenticationError, HeliosCryptoError
from .format import PREFIX_LEN, SUITE_AES_GCM, Header, parse, parse_prefix
from .kms import KeyProvider
from .kms.cache import CachePolicy, DekCache
from .localfile import PositionalFile
from .observe import EventBus, FileEvents

DEFAULT_SEGMENT_SIZE = option("heliosdb.crypto.segment-size").default  # one default, the option's


class CheckpointCrypto(DataKeySource):
    """Encrypt and decrypt checkpoint files.

    ``kms_uris``: the first KMS generates/wraps each DEK, every other one wraps it too (any one can
    decrypt). ``decrypt_uris``: further KMS URIs trusted for decryption only. Only these configured
    URIs are ever opened: a header's key slot is used when it names the same key
    (kms.identity.key_identity), and then through the provider of the configured URI.

    Every new file is bound to a name (rule F-24: ``name=`` of the writers, from the path for
    ``open_path``/the Flink hooks) and every reader checks it after the header authenticated:
    ``name=None`` means the binding name of ``path`` ("" without a path, as for in-memory data).
    ``read_v1=True`` also reads format version 1 files, which carry no binding (F-30).
    """

    def __init__(self, kms_uris: Iterable[str] = (), *, suite: int = SUITE_AES_GCM,
                 segment_size: int = DEFAULT_SEGMENT_SIZE, tenant: str = "",
                 settings: Mapping[str, str] | None = None, cache: DekCache | None = None,
                 cache_policy: CachePolicy | None = None, decrypt_uris: Iterable[str] = (),
                 bus: EventBus | None = None, providers: Mapping[str, KeyProvider] | None = None,
                 rng=os.urandom, read_v1: bool = False):
        super().__init__(kms_uris, settings=settings, cache=cache, cache_policy=cache_policy,
                         decrypt_uris=decrypt_uris, bus=bus, providers=providers, rng=rng)
        self.suite, self.segment_size, self.tenant = suite, segment_size, tenant
        self.read_v1 = read_v1

    def __repr__(self) -> str:
        return f"CheckpointCrypto(kms={self.kms_uris}, suite={self.suite}, segment={self.segment_size})"

    # -- new files -----------------------------------------------------------------
    def new_file(self, tenant: str | None = None, *, name: str = "", path: str | None = None,
                 segment_size: int | None = None) -> tuple[Header, bytes, FileKeys, FileEvents]:
        """Header, header bytes and keys for one new file bound to ``name`` (F-24), with segments of
        ``segment_size`` (default: this instance's), and the file's events (``path`` names it there):
        call their ``encrypted(nbytes)`` once the file is complete."""
        tenant = self.tenant if tenant is None else tenant
        scope = (tenant, tuple(self.kms_uris))
        try:
            dk = self.cache.current(scope, lambda: self._new_data_key(tenant))
        except (HeliosCryptoError, ImportError, ValueError) as e:
            self.bus.emit("encrypt", "error", tenant=tenant, error=type(e).__name__)
            raise
        h, raw, keys = new_header(dk, self.suite, segment_size or self.segment_size, rng=self._rng,
                                  name=name)
        return h, raw, keys, FileEvents(self.bus, on_encrypted=lambda n: self.cache.add_bytes(scope, dk, n),
                                        path=path, file_id=h.file_id, tenant=tenant,
                                        kms_uri=dk.slots[0].kms_uri, key_version=dk.slots[0].key_version)

    # -- existing files ------------------------------------------------------------
    def open_file(self, raw: bytes, path: str | None = None, *, name: str | None = None
                  ) -> tuple[Header, FileKeys]:
        """Parse and authenticate a header (raw holds at least all of it), then check that it is
        sealed for ``name`` (None: the binding name of ``path``); MisplacedFileError if not."""
        h = parse(raw, path)
        check_version(h, self.read_v1, path)  # before any KMS call
        raw = bytes(raw[:h.length])
        dek, ref = self._find_dek(h, path)
        try:
            keys = open_header(h, raw, dek, path)
            if ref is not None:  # cached only once the header authenticated with this DEK
                self.cache.put(ref, dek)
            check_binding(h, name_for(path) if name is None else name, path)
        except AuthenticationError:
            self.read_events(h, path).auth_failure()
            raise
        return h, keys

    def read_events(self, h: Header, path: str | None) -> FileEvents:
        """The events of a file being read (its fields identify the file, never key material)."""
        return FileEvents(self.bus, path=path, file_id=h.file_id, tenant=h.tenant, kms_uri=h.slots[0].kms_uri,
                          key_version=h.slots[0].key_version)

    # -- file objects --------------------------------------------------------------
    def writer(self, sink, tenant: str | None = None, close_sink: bool = False, *, name: str | None = None
               ) -> EncryptingWriter:
        """An encrypting file object over ``sink``, the file bound to ``name`` (F-24). None: the
        binding name of ``sink.name`` for a file opened by path, else "" (pass the final path's
        ``name_for(path)`` when writing to a temporary file renamed later)."""
        if name is None:
            sink_name = getattr(sink, "name", None)
            name = name_for(sink_name) if isinstance(sink_name, str) else ""
        h, raw, keys, events = self.new_file(tenant, name=name)
        return EncryptingWriter(sink, raw, keys, h.segment_size, on_close=events.encrypted, close_sink=close_sink,
                                on_abort=events.aborted)

    def reader(self, source, path: str | None = None, ciphertext_len: int | None = None,
               close_source: bool = False, *, name: str | None = None) -> DecryptingReader:
        """A seekable plaintext reader over ``source``: a seekable binary file, or bytes (decrypted
        in place); the file must be sealed for ``name`` (None: ``path``'s binding name)."""
        try:
            if isinstance(source, MEMORY_TYPES):
                head = bytes(source[:PREFIX_LEN])
                _, hlen, _ = parse_prefix(head, path)
                head = bytes(source[:hlen])
            else:
                source.seek(0)
                head = _read_exact(source, PREFIX_LEN)
                _, hlen, _ = parse_prefix(head, path)
                head += _read_exact(source, hlen - PREFIX_LEN)
            h, keys = self.open_file(head, path, name=name)
            events = self.read_events(h, path)
            r = DecryptingReader(
                source, h.length, keys, h.segment_size, ciphertext_len, path, close_source=close_source,
                on_close=lambda n, sec, _failed: events.decrypted(n, sec), on_auth_failure=events.auth_failure)
        except HeliosCryptoError as e:
            self.report_open_failure(e, path)
            if close_source:
                source.close()
            raise
        return r

    def report_open_failure(self, e: HeliosCryptoError, path: str | None, **fields) -> None:
        """Events for a file that could not be opened for reading (readers here and in the shim's
        hooks): FileEvents.open_failed."""
        FileEvents(self.bus, path=path).open_failed(e, **fields)

    def open_path(self, path: str, *, name: str | None = None) -> DecryptingReader:
        """A reader over a local regular file, read by position (a file that shrinks meanwhile fails
        authentication; NotRegularFileError for a FIFO, socket, device or directory), checked against
        ``path``'s binding name (or ``name``: a file deliberately moved)."""
        return self.reader(PositionalFile.open(path), path=path, close_source=True, name=name)

    def encrypt_bytes(self, data: bytes, tenant: str | None = None, *, name: str = "") -> bytes:
        import io
        buf = io.BytesIO()
        with self.writer(buf, tenant, name=name) as w:
            w.write(data)
        return buf.getvalue()

    def decrypt_bytes(self, data: bytes, path: str | None = None, *, name: str = "") -> bytes:
        """In memory: ``path`` only names the data in errors; the binding checked is ``name``."""
        with self.reader(data, path, name=name) as r:
            return r.read()

def _read_exact(f, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return bytes(out)

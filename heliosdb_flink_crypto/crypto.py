"""CheckpointCrypto: the engine bound to key providers, a DEK cache and the event bus.

The one object a user (or the Flink hooks) holds: it makes headers for new files with a cached
DEK wrapped by every configured KMS, and opens existing files by finding their DEK in the cache
or through any provider that can unwrap one of the header's key slots.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Iterable, Mapping

from .engine.buffers import MEMORY_TYPES
from .engine import (DataKey, DecryptingReader, EncryptingWriter, FileKeys, check_binding, check_version,
                     kms_context, name_for, new_header, open_header)
from .errors import (AuthenticationError, FormatError, HeliosCryptoError, KeyAccessError, KmsError,
                     KmsUnavailableError)
from .format import PREFIX_LEN, SUITE_AES_GCM, Header, KeySlot, parse, parse_prefix
from .kms import KeyProvider, open_provider
from .kms.cache import CachePolicy, DekCache, DekRef
from .kms.identity import TrustedSet, stored_uri, untrusted_message
from .localfile import PositionalFile
from .observe import BUS, EventBus
from .text import shown

DEFAULT_SEGMENT_SIZE = 256 * 1024


class CheckpointCrypto:
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
        self.kms_uris = list(kms_uris)
        self.suite, self.segment_size, self.tenant = suite, segment_size, tenant
        self.settings = dict(settings or {})
        self.cache = cache or DekCache(cache_policy)
        self.trusted = TrustedSet(self.kms_uris + list(decrypt_uris), self.settings)
        self.bus = bus or BUS
        self._providers: dict[str, KeyProvider] = dict(providers or {})
        self._rng = rng
        self.read_v1 = read_v1

    def __repr__(self) -> str:
        return f"CheckpointCrypto(kms={self.kms_uris}, suite={self.suite}, segment={self.segment_size})"

    # -- providers -----------------------------------------------------------------
    def provider(self, uri: str) -> KeyProvider:
        p = self._providers.get(uri)
        if p is None:
            p = self._providers[uri] = open_provider(uri, self.settings)
        return p

    def _kms(self, op: str, uri: str, fn, **fields):
        t = time.perf_counter()
        try:
            result = fn()
        except KmsError as e:
            self.bus.emit(op, "error", kms_uri=uri, seconds=time.perf_counter() - t, error=str(e), **fields)
            self.bus.emit("kms_call", "error", kms_uri=uri, kms_op=op, seconds=time.perf_counter() - t)
            raise
        dt = time.perf_counter() - t
        self.bus.emit(op, "ok", kms_uri=uri, seconds=dt, **fields)
        self.bus.emit("kms_call", "ok", kms_uri=uri, kms_op=op, seconds=dt)
        return result

    # -- new data keys -------------------------------------------------------------
    def _new_data_key(self, tenant: str) -> DataKey:
        """A new DEK wrapped by every reachable KMS, in configured order (the first reachable one
        generates it). A KMS that is unavailable (not one that denies) is skipped, so a multi-KMS
        setup keeps writing while any one KMS answers; such a DEK is marked incomplete and the cache
        replaces it soon (CachePolicy.incomplete_max_age). With none reachable the error names all."""
        if not self.kms_uris:
            raise KeyAccessError("no KMS configured for encryption (heliosdb.crypto.kms.uri)")
        dek_id = self._rng(16)
        ctx = kms_context(dek_id, tenant)
        dek, slots, down = None, [], []
        for i, uri in enumerate(self.kms_uris):
            try:
                dek, wrapped, version = self._kms("dek_generate", uri,
                                                  lambda u=uri: self.provider(u).generate_data_key(ctx),
                                                  tenant=tenant, dek_id=dek_id.hex())
            except KmsUnavailableError as e:
                down.append(e)
                continue
            slots, more_down = self.wrap_dek(dek, dek_id, tenant, self.kms_uris[i + 1:], skip_unavailable=True)
            slots.insert(0, KeySlot(stored_uri(uri), version, wrapped))
            down += more_down
            break
        if not slots:
            if len(down) == 1:
                raise down[0]
            raise KmsUnavailableError("every KMS", ", ".join(self.kms_uris), "wrap",
                                      "; ".join(str(e) for e in down))
        for s in slots:
            self.cache.put(self._ref(dek_id, tenant, s), dek)
        return DataKey(dek_id, dek, tuple(slots), tenant, complete=not down)

    def wrap_dek(self, dek: bytes, dek_id: bytes, tenant: str, uris, *, skip_unavailable: bool = False,
                 **fields) -> tuple[list[KeySlot], list[KmsUnavailableError]]:
        """Key slots for ``dek`` under the current KEK version of each KMS in ``uris``, bound to the
        DEK id and tenant (F-23); with ``skip_unavailable`` an unreachable KMS is left out and its
        error returned instead of raised. Used for new DEKs and by rewrap."""
        ctx = kms_context(dek_id, tenant)
        slots, down = [], []
        for uri in uris:
            try:
                wrapped, version = self._kms("wrap", uri, lambda u=uri: self.provider(u).wrap(dek, ctx),
                                             tenant=tenant, dek_id=dek_id.hex(), **fields)
            except KmsUnavailableError as e:
                if not skip_unavailable:
                    raise
                down.append(e)
                continue
            slots.append(KeySlot(stored_uri(uri), version, wrapped))
        return slots, down

    def new_file(self, tenant: str | None = None, *, name: str = "", segment_size: int | None = None
                 ) -> tuple[Header, bytes, FileKeys, object]:
        """Header, header bytes and keys for one new file bound to ``name`` (F-24), with segments of
        ``segment_size`` (default: this instance's); the last item is a ``done(nbytes)`` callback."""
        tenant = self.tenant if tenant is None else tenant
        scope = (tenant, tuple(self.kms_uris))
        try:
            dk = self.cache.current(scope, lambda: self._new_data_key(tenant))
        except (HeliosCryptoError, ImportError, ValueError) as e:
            self.bus.emit("encrypt", "error", tenant=tenant, error=type(e).__name__)
            raise
        h, raw, keys = new_header(dk, self.suite, segment_size or self.segment_size, rng=self._rng, name=name)

        def done(nbytes: int, seconds: float | None = None, path: str | None = None,
                 t0=time.perf_counter()):
            """Call once the file is complete; ``seconds``: time spent sealing (default: since new_file)."""
            self.cache.add_bytes(scope, dk, nbytes)
            self.bus.emit("encrypt", "ok", path=path, file_id=h.file_id, tenant=tenant, bytes=nbytes,
                          kms_uri=dk.slots[0].kms_uri, key_version=dk.slots[0].key_version,
                          seconds=time.perf_counter() - t0 if seconds is None else seconds)
        return h, raw, keys, done

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
            self.bus.emit("auth_failure", "error", path=path, file_id=h.file_id, tenant=h.tenant)
            raise
        return h, keys

    def data_key(self, h: Header, path: str | None = None) -> bytes:
        """The DEK of a parsed header: from the cache, else unwrapped by a trusted KMS of its slots.
        Not authenticated by itself (and so not cached): open_file checks the commitment and MAC."""
        return self._find_dek(h, path)[0]

    def trusted_uri(self, slot_uri: str) -> str | None:
        """The configured URI that names the same key as a header's ``slot_uri``, else None."""
        return self.trusted.uri_for(slot_uri)

    def _ref(self, dek_id: bytes, tenant: str, s: KeySlot) -> DekRef:
        return DekRef(dek_id, self.trusted.identity(s.kms_uri), s.key_version,
                      hashlib.sha256(s.wrapped).digest(), tenant)

    def _find_dek(self, h: Header, path: str | None) -> tuple[bytes, DekRef | None]:
        """(DEK, cache ref to put once authenticated; None for a cache hit)."""
        usable, untrusted = [], []
        for s in h.slots:
            uri = self.trusted.uri_for(s.kms_uri)
            if uri is None:
                untrusted.append(shown(s.kms_uri))
                continue
            ref = self._ref(h.dek_id, h.tenant, s)
            dek = self.cache.get(ref)
            if dek is not None:
                return dek, None
            usable.append((s, uri, ref))
        if not usable:
            raise KeyAccessError(untrusted_message(untrusted, bool(self.trusted)), path)
        ctx = kms_context(h.dek_id, h.tenant)
        errors = []
        for s, uri, ref in usable:
            try:
                dek = self._kms("unwrap", uri,
                                lambda s=s, u=uri: self.provider(u).unwrap(s.wrapped, s.key_version, ctx),
                                path=path, file_id=h.file_id, tenant=h.tenant, key_version=s.key_version)
            except (KmsError, ImportError, ValueError) as e:
                errors.append(str(e))
                continue
            if len(dek) != 32:
                errors.append(f"{uri} returned a key of the wrong size")
                continue
            return dek, ref
        if untrusted:
            errors.append("not trusted here: " + ", ".join(untrusted))
        raise KeyAccessError("no key provider could unwrap the data key: " + "; ".join(errors), path)

    # -- file objects --------------------------------------------------------------
    def writer(self, sink, tenant: str | None = None, close_sink: bool = False, *, name: str | None = None
               ) -> EncryptingWriter:
        """An encrypting file object over ``sink``, the file bound to ``name`` (F-24). None: the
        binding name of ``sink.name`` for a file opened by path, else "" (pass the final path's
        ``name_for(path)`` when writing to a temporary file renamed later)."""
        if name is None:
            sink_name = getattr(sink, "name", None)
            name = name_for(sink_name) if isinstance(sink_name, str) else ""
        h, raw, keys, done = self.new_file(tenant, name=name)
        return EncryptingWriter(sink, raw, keys, h.segment_size, on_close=done, close_sink=close_sink,
                                on_abort=lambda: self.bus.emit("encrypt", "error", file_id=h.file_id,
                                                               tenant=h.tenant, error="aborted"))

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
            fields = file_fields(h, path)
            r = DecryptingReader(
                source, h.length, keys, h.segment_size, ciphertext_len, path, close_source=close_source,
                on_close=lambda n, sec, failed: self.bus.emit(
                    "decrypt", "error" if failed else "ok", bytes=n, seconds=sec,
                    **({"error": "AuthenticationError"} if failed else {}), **fields),
                on_auth_failure=lambda: self.bus.emit("auth_failure", "error", **fields))
        except HeliosCryptoError as e:
            self.report_open_failure(e, path)
            if close_source:
                source.close()
            raise
        return r

    def report_open_failure(self, e: HeliosCryptoError, path: str | None, **fields) -> None:
        """Events for a file that could not be opened for reading (readers here and in the shim's
        hooks): a malformed file is an authentication failure too; header MAC failures were already
        reported by open_file."""
        if isinstance(e, FormatError):
            self.bus.emit("auth_failure", "error", path=path, error="malformed")
        self.bus.emit("decrypt", "error", path=path, error=type(e).__name__, **fields)

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

    def close(self) -> None:
        for p in self._providers.values():
            p.close()


def file_fields(h: Header, path: str | None) -> dict:
    """The event fields that identify a file being read (never key material)."""
    return dict(path=path, file_id=h.file_id, tenant=h.tenant, kms_uri=h.slots[0].kms_uri,
                key_version=h.slots[0].key_version)


def _read_exact(f, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return bytes(out)

"""Header of an encrypted checkpoint file: plain functions over value objects.

Layout (big-endian; rule numbers refer to docs/format.md):

  offset size  field
  0      4     magic b"HFCE"                                        (F-1)
  4      1     format version: 2 (1 = no name, read only when enabled)  (F-2, F-30)
  5      1     suite: 1 = AES-256-GCM, 2 = AES-256-CBC-HMAC-SHA256   (F-3)
  6      2     flags, must be 0                                     (F-4)
  8      4     header length H, PREFIX_LEN+... <= MAX_HEADER_LEN    (F-5)
  12     4     segment size S (plaintext bytes per segment)         (F-6)
  16     32    salt (random per file; also the file id)             (F-7)
  48     7     nonce prefix (random per file)                       (F-8)
  55     1     reserved, must be 0
  56     16    DEK id (random per data key)                         (F-9)
  72     8     created, Unix milliseconds
  80     var   tenant: u16 length + UTF-8 (<= MAX_TENANT)           (F-10)
  ..     var   name (v2 only): u16 length + UTF-8 (<= MAX_NAME)     (F-24)
  ..     1     key slot count K, 1..MAX_SLOTS                       (F-11)
  ..     var   K slots: kms uri, key version, wrapped DEK, each u16 length + bytes
  H-64   32    key commitment                                       (F-12)
  H-32   32    header MAC, HMAC-SHA256 over bytes [0, H-32)         (F-13)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property

from ..errors import FormatError

MAGIC = b"HFCE"
VERSION = 2  # what writers write
VERSION_1 = 1  # no name field; readable only where explicitly enabled (read_v1)
VERSIONS = (VERSION_1, VERSION)
SUITE_AES_GCM = 1
SUITE_AES_CBC_HMAC = 2
SUITE_NAMES = {SUITE_AES_GCM: "AES-256-GCM", SUITE_AES_CBC_HMAC: "AES-256-CBC-HMAC-SHA256"}
#: configuration / CLI names (heliosdb.crypto.algorithm) -> suite id
SUITE_IDS = {"aes-256-gcm": SUITE_AES_GCM, "aes-256-cbc-hmac-sha256": SUITE_AES_CBC_HMAC}

PREFIX = struct.Struct(">4sBBHII")  # magic, version, suite, flags, header length, segment size
PREFIX_LEN = PREFIX.size  # 16: enough to compute plaintext lengths (F-16)
FIXED = struct.Struct(">32s7sB16sQ")  # salt, nonce prefix, reserved, dek id, created
SALT_LEN, NONCE_PREFIX_LEN, DEK_ID_LEN = 32, 7, 16
COMMITMENT_LEN = MAC_LEN = 32

MIN_SEGMENT_SIZE = 16  # tests use tiny segments; writers default far larger
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENT_ALIGN = 16  # segment sizes are multiples of the AES block
MAX_HEADER_LEN = 64 * 1024
MAX_TENANT = 255
MAX_NAME = 1024
MAX_SLOTS = 8
MAX_URI = 2048
MAX_KEY_VERSION = 256
MAX_WRAPPED = 8192


@dataclass(frozen=True)
class KeySlot:
    """One KMS's wrapping of the file's DEK. ``wrapped`` is ciphertext, safe to show."""

    kms_uri: str
    key_version: str
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True)
class Header:
    suite: int
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    dek_id: bytes
    created_ms: int
    tenant: str
    slots: tuple[KeySlot, ...]
    commitment: bytes = b""
    mac: bytes = b""
    version: int = VERSION
    name: str = ""  # the binding name (F-24); always "" in version 1

    @property
    def file_id(self) -> str:
        return self.salt[:16].hex()

    @cached_property  # a frozen instance: worked out once (a reader asks for it more than once)
    def length(self) -> int:
        return len(serialize_unsigned(self)) + COMMITMENT_LEN + MAC_LEN


def validate_segment_size(size: int) -> int:
    if not isinstance(size, int) or not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE or size % SEGMENT_ALIGN:
        raise ValueError(f"segment size {size!r} must be a multiple of {SEGMENT_ALIGN} "
                         f"in [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]")
    return size


def _lp(data: bytes, maximum: int, what: str) -> bytes:
    if len(data) > maximum:
        raise ValueError(f"{what} is {len(data)} bytes, over its maximum of {maximum}")
    return struct.pack(">H", len(data)) + data


def serialize_unsigned(h: Header) -> bytes:
    """Header bytes up to (not including) the commitment: the part the MAC and the commitment follow."""
    if h.suite not in SUITE_NAMES:
        raise ValueError(f"unknown suite {h.suite}")
    validate_segment_size(h.segment_size)
    if h.version not in VERSIONS or (h.version == VERSION_1 and h.name):
        raise ValueError(f"format version {h.version} cannot hold the name {h.name!r}")
    rest = (FIXED.pack(h.salt, h.nonce_prefix, 0, h.dek_id, h.created_ms) + _lp(h.tenant.encode(), MAX_TENANT, "tenant")
            + (_lp(h.name.encode(), MAX_NAME, "name") if h.version != VERSION_1 else b"") + _slot_bytes(h.slots))
    total = PREFIX_LEN + len(rest) + COMMITMENT_LEN + MAC_LEN
    if total > MAX_HEADER_LEN:
        raise ValueError(f"header of {total} bytes is over its maximum of {MAX_HEADER_LEN}")
    return PREFIX.pack(MAGIC, h.version, h.suite, 0, total, h.segment_size) + rest


def _slot_bytes(slots: tuple[KeySlot, ...]) -> bytes:
    """The slot count and the slots."""
    if not 1 <= len(slots) <= MAX_SLOTS:
        raise ValueError(f"a header holds 1 to {MAX_SLOTS} key slots, not {len(slots)}")
    return bytes([len(slots)]) + b"".join(
        _lp(s.kms_uri.encode(), MAX_URI, "KMS URI") + _lp(s.key_version.encode(), MAX_KEY_VERSION, "key version")
        + _lp(s.wrapped, MAX_WRAPPED, "wrapped DEK") for s in slots)


def parse_prefix(data: bytes, path: str | None = None) -> tuple[int, int, int]:
    """(suite, header length, segment size) from the first PREFIX_LEN bytes, every field checked.
    Both versions share this prefix and the segment layout; whether version 1 may be read is the
    reader's policy (CheckpointCrypto's read_v1), not the format's."""
    if len(data) < PREFIX_LEN:
        raise FormatError("too short to be an encrypted checkpoint file", path)
    magic, version, suite, flags, hlen, seg = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not an encrypted checkpoint file (bad magic)", path)
    if version not in VERSIONS:
        raise FormatError(f"unsupported format version {version}", path)
    if suite not in SUITE_NAMES:
        raise FormatError(f"unknown algorithm suite {suite}", path)
    if flags:
        raise FormatError("reserved flags are set", path)
    minimum = min_header_length(version)
    if not minimum <= hlen <= MAX_HEADER_LEN:
        raise FormatError(f"header length {hlen} outside [{minimum}, {MAX_HEADER_LEN}]", path)
    if not MIN_SEGMENT_SIZE <= seg <= MAX_SEGMENT_SIZE or seg % SEGMENT_ALIGN:
        raise FormatError(f"segment size {seg} is not allowed", path)
    return suite, hlen, seg


def declared_length(data: bytes) -> int:
    """The header length H (F-5) a prefix declares: where the header ends and the first segment starts."""
    return PREFIX.unpack_from(data)[4]


def mac_input(raw: bytes) -> bytes:
    """The bytes the header MAC covers (F-13): the header of ``raw`` up to its MAC."""
    return bytes(raw[:declared_length(raw) - MAC_LEN])


def min_header_length(version: int) -> int:
    """Prefix, fixed fields, empty tenant (and name), one slot of empty fields, commitment, MAC."""
    return PREFIX_LEN + FIXED.size + 2 + (2 if version != VERSION_1 else 0) + 1 + 6 + COMMITMENT_LEN + MAC_LEN


class _Cursor:
    def __init__(self, data: bytes, end: int, path: str | None):
        self.data, self.pos, self.end, self.path = data, PREFIX_LEN, end, path

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise FormatError("header fields run past the header length", self.path)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def lp(self, maximum: int, what: str) -> bytes:
        (n,) = struct.unpack(">H", self.take(2))
        if n > maximum:
            raise FormatError(f"{what} length {n} over its maximum of {maximum}", self.path)
        return self.take(n)

    def text(self, maximum: int, what: str) -> str:
        try:
            return self.lp(maximum, what).decode()
        except UnicodeDecodeError:
            raise FormatError(f"{what} is not UTF-8", self.path) from None


def parse(data: bytes, path: str | None = None) -> Header:
    """Parse a whole header (``data`` holds at least its declared length). Not yet authenticated."""
    suite, hlen, seg = parse_prefix(data, path)
    if len(data) < hlen:
        raise FormatError("file ends inside its header", path)
    c = _Cursor(bytes(data[:hlen]), hlen - COMMITMENT_LEN - MAC_LEN, path)
    salt, prefix, reserved, dek_id, created = FIXED.unpack(c.take(FIXED.size))
    if reserved:
        raise FormatError("reserved byte is set", path)
    tenant = c.text(MAX_TENANT, "tenant")
    version = data[4]
    name = c.text(MAX_NAME, "name") if version != VERSION_1 else ""
    count = c.take(1)[0]
    if not 1 <= count <= MAX_SLOTS:
        raise FormatError(f"key slot count {count} outside [1, {MAX_SLOTS}]", path)
    slots = tuple(KeySlot(c.text(MAX_URI, "KMS URI"), c.text(MAX_KEY_VERSION, "key version"),
                          c.lp(MAX_WRAPPED, "wrapped DEK")) for _ in range(count))
    if c.pos != c.end:
        raise FormatError("header length does not match its fields", path)
    tail = c.data[c.end:]
    h = Header(suite, seg, salt, prefix, dek_id, created, tenant, slots,
               commitment=tail[:COMMITMENT_LEN], mac=tail[COMMITMENT_LEN:], version=version, name=name)
    h.__dict__["length"] = hlen  # the fields filled exactly the declared length: Header.length's value
    return h

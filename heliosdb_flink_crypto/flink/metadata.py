"""Flink's checkpoint metadata: which files a checkpoint or savepoint references.

Reads the plaintext of a ``_metadata`` file (decrypt it first) as Flink's
``Checkpoints.loadCheckpointMetadata`` does: magic ``0x4960672d``, the metadata format version, then
what ``MetadataV2V3SerializerBase`` and its subclasses wrote - checkpoint id, master states, and per
operator and subtask the operator, keyed and channel state handles. Versions 2 to 6 (Flink 1.20
writes 4, Flink 2.3 writes 6; 5 adds operator names and uids, 6 merged channel state handles), every
handle type those serializers write: file (absolute path), relative file (relative to the folder of
``_metadata``: savepoints), inline bytes (no file), key groups, incremental RocksDB/ForSt (shared
and private files), changelog (materialized, in-memory and file increments), file-merging segments
and their operator handles, channel state, operator coordinator and master states. Version 4 and
later end with Java-serialized checkpoint properties, which are skipped (never deserialized).

Nothing is opened or resolved here. Anything Flink's reader would refuse, an unknown handle type,
a length or count beyond the bytes left, or nesting deeper than ``MAX_DEPTH`` raises
:class:`MetadataFormatError` naming the file and byte offset: the reader never crashes or hangs.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..errors import MetadataFormatError
from .javaio import JavaInput

HEADER_MAGIC = 0x4960672D
MASTER_STATE_MAGIC = 0xC96B1696
JAVA_SERIALIZATION_MAGIC = b"\xac\xed\x00\x05"
VERSIONS = range(2, 7)
MAX_DEPTH = 16

# handle type codes of MetadataV2V3SerializerBase
(NULL, BYTES, FILE, KEY_GROUPS, OPERATOR, INCREMENTAL, RELATIVE, SAVEPOINT_KEY_GROUPS, CHANGELOG,
 CHANGELOG_BYTES, CHANGELOG_FILE, INCREMENTAL_V2, KEY_GROUPS_V2, CHANGELOG_FILE_V2, CHANGELOG_V2,
 SEGMENT, EMPTY_SEGMENT, SEGMENT_OPERATOR) = range(18)
# ChannelStateHandleSerializerV2 (metadata version 6)
INPUT_CHANNEL, RESULT_SUBPARTITION, MERGED_INPUT_CHANNEL, MERGED_RESULT_SUBPARTITION = 1, 2, 3, 4
SCOPES = ("exclusive", "shared")  # CheckpointedStateScope ordinals
MODES = 3  # OperatorStateHandle.Mode: SPLIT_DISTRIBUTE, UNION, BROADCAST


@dataclass(frozen=True)
class FileRef:
    """A file a checkpoint references. ``path`` as written: a URI or absolute path, or, when
    ``relative``, a path relative to the folder holding ``_metadata``. ``size``: bytes of state the
    handle records (the file's plaintext length; for a segment, the segment's; -1: unknown), unless
    not ``exact``: changelog files (StateChangeFsUploader counts the bytes after the one-byte
    compression flag it writes first). ``offset``: where a file-merging segment starts in its file.
    ``where``: the handle, for people."""
    path: str
    size: int
    where: str
    relative: bool = False
    segment: bool = False
    offset: int = 0
    exact: bool = True


@dataclass(frozen=True)
class CheckpointMetadata:
    version: int
    checkpoint_id: int
    files: tuple[FileRef, ...]
    inline: tuple[tuple[str, int], ...]  # (where, bytes) of state stored inside _metadata
    directories: tuple[str, ...]  # file-merging folders named by operator state handles
    master_states: tuple[str, ...]
    operators: int
    properties_length: int  # Java-serialized CheckpointProperties (version >= 4), skipped


def parse_metadata(data: bytes, path: str | None = None) -> CheckpointMetadata:
    """The references in a ``_metadata`` plaintext; MetadataFormatError naming ``path`` and the offset."""
    return _Parser(data, path).metadata()


class _Parser(JavaInput):
    def __init__(self, data: bytes, path: str | None):
        super().__init__(data, path, MetadataFormatError)
        self.depth, self.version = 0, 0
        self.files: list[FileRef] = []
        self.inline: list[tuple[str, int]] = []
        self.dirs: list[str] = []

    @contextlib.contextmanager
    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"state handles nested deeper than {MAX_DEPTH}")
        try:
            yield
        finally:
            self.depth -= 1

    # -- structure --------------------------------------------------------------------------
    def metadata(self) -> CheckpointMetadata:
        if self.num(">I", "magic number") != HEADER_MAGIC:
            self.fail("not Flink checkpoint metadata (wrong magic number)", 0)
        self.version = self.i32("metadata version")
        if self.version not in VERSIONS:
            self.fail(f"metadata version {self.version} is not supported (known: 2 to 6, Flink 1.3 to 2.3)", 4)
        cid = self.i64("checkpoint id")
        if cid < 0:
            self.fail(f"invalid checkpoint id {cid}", 8)
        masters = tuple(self.master_state() for _ in range(self.count("number of master states", 8)))
        operators = self.count("number of operator states", 24)
        for _ in range(operators):
            self.operator_state()
        properties = len(self.b) - self.pos
        if self.version >= 4 and not self.b[self.pos:].startswith(JAVA_SERIALIZATION_MAGIC):
            self.fail("checkpoint properties missing")
        if self.version < 4 and properties:
            self.fail(f"{properties} trailing bytes")
        return CheckpointMetadata(self.version, cid, tuple(self.files), tuple(self.inline),
                                  tuple(self.dirs), masters, operators, properties)

    def master_state(self) -> str:
        if self.num(">I", "master state magic number") != MASTER_STATE_MAGIC:
            self.fail("wrong master state magic number", self.pos - 4)
        at, size = self.pos, self.i32("master state length")
        if not 0 < size <= len(self.b) - self.pos:
            self.fail(f"master state length {size}", at)
        end = self.pos + size
        self.i32("master state version")
        name = self.utf("master state name")
        self.blob("master state bytes")
        if self.pos != end:
            self.fail("master state length does not match its content", at)
        return name

    def operator_state(self) -> None:
        uid = ""
        if self.version >= 5:
            name, uid = self.utf("operator name"), self.utf("operator uid")
            uid = uid or name
        op = "operator " + self.take(16, "operator id").hex() + (f" ({uid})" if uid else "")
        self.take(8, "parallelism")
        if self.version == 2:
            self.take(4, "chain length")
        else:
            self.stream(f"{op} coordinator state", inline_only=True)
        subtasks = self.i32("number of subtasks")
        if subtasks < 0 and self.version >= 3:
            return  # fully finished operator: no state
        for _ in range(self.count("number of subtasks", 4, subtasks)):
            index = self.i32("subtask index")
            if index < 0 and self.version >= 3:
                continue  # finished subtask: no state
            self.subtask(f"{op} subtask {index}")

    def subtask(self, where: str) -> None:
        if self.version == 2:
            self.take(8, "duration")
            if self.i32("number of legacy states") > 0:
                self.fail("legacy state (Flink <= 1.1) is not supported", self.pos - 4)
        for kind in ("managed", "raw"):
            if self.i32(f"has {kind} operator state"):
                self.operator(f"{where}: {kind} operator state")
        for kind in ("managed", "raw"):
            self.keyed(f"{where}: {kind} keyed state")
        if self.version >= 3:
            for kind, types in (("input channel", (INPUT_CHANNEL, MERGED_INPUT_CHANNEL)),
                                ("output subpartition", (RESULT_SUBPARTITION, MERGED_RESULT_SUBPARTITION))):
                for i in range(self.count(f"number of {kind} states", 8)):
                    self.channel(f"{where}: {kind} state {i}", types)

    def channel(self, where: str, types: tuple[int, int]) -> None:
        kind = types[0]
        if self.version >= 6:
            at, kind = self.pos, self.num(">B", "channel state handle type")
            if kind not in types:
                self.fail(f"unknown channel state handle type {kind}", at)
        if kind in (MERGED_INPUT_CHANNEL, MERGED_RESULT_SUBPARTITION):
            self.take(12, "subtask index and state size")
            self.stream(where)
            self.blob("channel offsets")
            return
        self.take(12, "subtask index and channel")
        self.take(8 * self.count("number of offsets", 8), "offsets")
        self.take(8, "state size")
        self.stream(where)

    def key_groups(self) -> None:
        self.take(4, "first key group")
        self.take(8 * self.count("number of key groups", 8), "key group offsets")

    def keyed(self, where: str) -> None:
        at, t = self.pos, self.num(">b", "keyed state handle type")
        with self.nested():
            if t == NULL:
                return
            if t in (KEY_GROUPS, KEY_GROUPS_V2, SAVEPOINT_KEY_GROUPS):
                self.key_groups()
                self.stream(where)
                if t == KEY_GROUPS_V2:
                    self.utf("state handle id")
            elif t in (INCREMENTAL, INCREMENTAL_V2):
                self.take(8, "checkpoint id")
                self.utf("backend id")
                self.take(16 if t == INCREMENTAL_V2 else 8, "key group range and size")
                self.stream(f"{where}, meta data")
                for kind in ("shared", "private"):
                    for _ in range(self.count(f"number of {kind} files", 3)):
                        self.stream(f"{where}, {kind} {self.utf('local path')}")
                if t == INCREMENTAL_V2:
                    self.utf("state handle id")
            elif t in (CHANGELOG, CHANGELOG_V2):
                self.take(16, "key group range and checkpointed size")
                for kind in ("materialized", "changelog"):
                    for i in range(self.count(f"number of {kind} handles")):
                        self.keyed(f"{where}, {kind} {i}")
                self.take(16 if t == CHANGELOG_V2 else 8, "materialization and checkpoint id")
                self.utf("state handle id")
            elif t == CHANGELOG_BYTES:
                self.take(24, "key group range and sequence numbers")
                total = 0
                for _ in range(self.count("number of changes", 8)):
                    self.take(4, "key group")
                    total += self.blob("change")
                self.inline.append((f"{where}, in-memory changelog", total))
                self.utf("state handle id")
            elif t in (CHANGELOG_FILE, CHANGELOG_FILE_V2):
                self.take(8, "key group range")
                for i in range(self.count("number of changelog files", 9)):
                    self.take(8, "offset")
                    self.stream(f"{where}, changelog file {i}", exact=False)
                self.take(16, "state size and checkpointed size")
                self.utf("state handle id")
                if t == CHANGELOG_FILE_V2:
                    self.utf("storage identifier")
            else:
                self.fail(f"unknown keyed state handle type {t}", at)

    def operator(self, where: str) -> None:
        at, t = self.pos, self.num(">b", "operator state handle type")
        if t == NULL:
            return
        if t not in (OPERATOR, SEGMENT_OPERATOR):
            self.fail(f"unknown operator state handle type {t}", at)
        for _ in range(self.count("number of operator states", 7)):
            self.utf("state name")
            if not 0 <= self.num(">b", "distribution mode") < MODES:
                self.fail("unknown distribution mode", self.pos - 1)
            self.take(8 * self.count("number of offsets", 8), "offsets")
        if t == SEGMENT_OPERATOR:
            self.dirs += [self.utf("task-owned folder"), self.utf("shared folder")]
            self.take(1, "empty flag")
            if self.b[self.pos:self.pos + 1] not in (bytes([SEGMENT]), bytes([EMPTY_SEGMENT])):
                self.fail("file-merging operator state without a segment handle")
        self.stream(where)

    def stream(self, where: str, inline_only: bool = False, exact: bool = True) -> None:
        at, t = self.pos, self.num(">B", "state handle type")
        if inline_only and t not in (NULL, BYTES):
            self.fail(f"expected inline state (a byte stream handle), found handle type {t}", at)
        with self.nested():
            if t in (NULL, EMPTY_SEGMENT):
                return
            if t == BYTES:
                self.utf("handle name")
                self.inline.append((where, self.blob("inline state")))
            elif t == FILE:
                size = self.i64("state size")
                self.files.append(FileRef(self.utf("file path"), size, where, exact=exact))
            elif t == RELATIVE:
                rel = self.utf("relative path")
                self.files.append(FileRef(rel, self.i64("state size"), where, relative=True, exact=exact))
            elif t == KEY_GROUPS:
                self.key_groups()
                self.stream(where, exact=exact)
            elif t == SEGMENT:
                start, size = self.i64("segment start"), self.i64("segment size")
                scope = self.i32("scope")
                if not 0 <= scope < len(SCOPES) or start < 0 or size < 0:
                    self.fail("invalid segment (scope, start or size)", at)
                self.files.append(FileRef(self.utf("file path"), size, f"{where} ({SCOPES[scope]} segment)",
                                          segment=True, offset=start))
                self.utf("logical file id")
            else:
                self.fail(f"unknown state handle type {t}", at)

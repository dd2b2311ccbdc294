"""Checkpoint metadata bytes as Flink's serializers lay them out (MetadataV2V3SerializerBase, V2-V6,
ChannelStateHandleSerializerV1/V2), for tests that need metadata without starting a JVM: fake
checkpoint folders, truncations and corruptions. tests/flink/test_checkpoint_verify_e2e.py checks
the reader against Flink's own serializers and real jobs."""
from __future__ import annotations

import struct

HEADER_MAGIC, MASTER_MAGIC = 0x4960672D, 0xC96B1696
PROPERTIES = b"\xac\xed\x00\x05" + b"sr\x00<java serialized CheckpointProperties>"
NULL = b"\x00"


def u8(v):
    return struct.pack(">B", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def utf(s: str) -> bytes:
    """Java's modified UTF-8 (DataOutput.writeUTF)."""
    out = bytearray()
    for unit in struct.unpack(f"<{len(s.encode('utf-16-le')) // 2}H", s.encode("utf-16-le")):
        if 0 < unit < 0x80:
            out.append(unit)
        elif unit < 0x800:
            out += bytes([0xC0 | unit >> 6, 0x80 | unit & 0x3F])
        else:
            out += bytes([0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F])
    return struct.pack(">H", len(out)) + bytes(out)


# -- stream handles ---------------------------------------------------------------------------
def file(path, size):
    return u8(2) + i64(size) + utf(path)


def relative(name, size):
    return u8(6) + utf(name) + i64(size)


def inline(data=b"inline", name="inline"):
    return u8(1) + utf(name) + i32(len(data)) + data


def segment(path, start, size, scope=1):
    return u8(15) + i64(start) + i64(size) + i32(scope) + utf(path) + utf("logical-" + path)


def key_group_offsets(n=2):
    return i32(0) + i32(n) + b"".join(i64(i) for i in range(n))


def key_groups_stream(inner):
    return u8(3) + key_group_offsets() + inner


# -- keyed, operator and channel handles -------------------------------------------------------
def key_groups(inner, kind=12):
    return u8(kind) + key_group_offsets() + inner + (utf("handle-id") if kind == 12 else b"")


def incremental(meta, shared=(), private=(), v2=True):
    lst = lambda items: i32(len(items)) + b"".join(utf(local) + h for local, h in items)  # noqa: E731
    return (u8(11 if v2 else 5) + i64(7) + utf("backend") + i32(0) + i32(2) + (i64(300) if v2 else b"")
            + meta + lst(shared) + lst(private) + (utf("handle-id") if v2 else b""))


def changelog(materialized=(), deltas=(), v2=True):
    return (u8(14 if v2 else 8) + i32(0) + i32(2) + i64(300) + i32(len(materialized)) + b"".join(materialized)
            + i32(len(deltas)) + b"".join(deltas) + i64(5) + (i64(7) if v2 else b"") + utf("handle-id"))


def changelog_bytes(changes=(b"change",)):
    return (u8(9) + i32(0) + i32(2) + i64(1) + i64(2) + i32(len(changes))
            + b"".join(i32(0) + i32(len(c)) + c for c in changes) + utf("handle-id"))


def changelog_files(handles, v2=True):
    return (u8(13 if v2 else 10) + i32(0) + i32(2) + i32(len(handles)) + b"".join(i64(0) + h for h in handles)
            + i64(10) + i64(10) + utf("handle-id") + (utf("filesystem") if v2 else b""))


def operator(inner, dirs=None, mode=1):
    states = i32(1) + utf("state") + u8(mode) + i32(1) + i64(0)
    if dirs is None:
        return u8(4) + states + inner
    return u8(17) + states + utf(dirs[0]) + utf(dirs[1]) + u8(0) + inner


def channel(version, inner, merged=False, output=False):
    if merged:
        return u8(4 if output else 3) + i32(0) + i64(10) + inner + i32(3) + b"off"
    body = i32(0) + i32(0) + i32(0) + i32(1) + i64(0) + i64(10) + inner
    return (u8(2 if output else 1) + body) if version >= 6 else body


def subtask(version, managed_op=None, raw_op=None, managed_keyed=NULL, raw_keyed=NULL, inputs=(), outputs=()):
    out = i64(-1) + i32(0) if version == 2 else b""
    for h in (managed_op, raw_op):
        out += i32(0) if h is None else i32(1) + h
    out += managed_keyed + raw_keyed
    if version >= 3:
        out += i32(len(inputs)) + b"".join(inputs) + i32(len(outputs)) + b"".join(outputs)
    return out


def operator_state(version, subtasks, coordinator=NULL, uid="", finished=False, op_id=b"\x01" * 16):
    """``subtasks``: {index: subtask bytes, or None for a finished subtask}."""
    out = (utf("") + utf(uid)) if version >= 5 else b""
    out += op_id + i32(len(subtasks) or 1) + i32(128)
    out += i32(1) if version == 2 else coordinator
    if finished:
        return out + i32(-1)
    out += i32(len(subtasks))
    for index, state in subtasks.items():
        out += i32(-index - 1) if state is None else i32(index) + state
    return out


def master(name="hook", data=b"master"):
    body = i32(1) + utf(name) + i32(len(data)) + data
    return i32(MASTER_MAGIC - (1 << 32)) + i32(len(body)) + body


def metadata(version, checkpoint_id, operators, masters=(), properties=PROPERTIES):
    return (i32(HEADER_MAGIC) + i32(version) + i64(checkpoint_id) + i32(len(masters)) + b"".join(masters)
            + i32(len(operators)) + b"".join(operators) + (properties if version >= 4 else b""))


def every_handle(version: int) -> tuple[bytes, list[tuple[str, int, bool, bool, int]]]:
    """Metadata holding every handle type ``version`` can hold, and the (path, size, relative,
    segment, offset) of every file it references."""
    files = []

    def f(name, size, rel=False, seg=None):
        files.append((name if rel else f"file:/data/job/{name}", size, rel, seg is not None, seg or 0))
        if rel:
            return relative(name, size)
        return segment(files[-1][0], seg, size) if seg is not None else file(files[-1][0], size)

    managed_op, keyed = operator(f("operator", 1)), key_groups(f("keyed", 2))
    nested = key_groups(key_groups_stream(f("nested", 3)), kind=3)
    inputs, outputs = [], []
    if version >= 3:
        inputs, outputs = [channel(version, f("in", 4))], [channel(version, f("out", 5), output=True)]
    if version >= 6:
        inputs.append(channel(version, f("merged-in", 6), merged=True))
        outputs.append(channel(version, f("merged-out", 7), merged=True, output=True))
    sub0 = subtask(version, managed_op, operator(inline()), keyed, nested, inputs, outputs)
    sub1 = subtask(version, managed_op=operator(f("seg", 8, seg=5), dirs=("t", "s")),
                   managed_keyed=incremental(f("meta", 9), [("1.sst", f("sst", 10)), ("2.sst", inline())],
                                             [("MANIFEST", f("manifest", 11))], v2=version > 2),
                   raw_keyed=key_groups(f("savepoint-file", 12, rel=True), kind=7))
    deltas = [changelog_files([f("log", 14)], v2=version > 2), changelog_bytes()]
    sub2 = subtask(version, managed_op=operator(u8(16), dirs=("t", "s")),
                   managed_keyed=changelog([key_groups(f("materialized", 13))], deltas, v2=version > 2))
    ops = [operator_state(version, {0: sub0, 1: None if version >= 3 else subtask(version)},
                          coordinator=inline(b"c" * 16), uid="count-uid"),
           operator_state(version, {0: sub1, 1: sub2})]
    if version >= 3:
        ops.append(operator_state(version, {}, finished=True))
    return metadata(version, 7, ops, [master()]), files

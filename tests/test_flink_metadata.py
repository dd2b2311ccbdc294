"""The checkpoint metadata reader on metadata laid out as Flink's serializers write it (every handle
type, versions 2-6) and on every truncation, bit flip and corruption of it: a MetadataFormatError
naming the file and offset, never another exception, never a hang. Flink's own serializers and real
jobs: tests/flink/test_checkpoint_verify_e2e.py."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metadata_writer as w
from heliosdb_flink_crypto.errors import FormatError, MetadataFormatError
from heliosdb_flink_crypto.flink.metadata import MAX_DEPTH, parse_metadata

PATH = "/ckpt/job/chk-7/_metadata"


def refs(m):
    return sorted((f.path, f.size, f.relative, f.segment, f.offset) for f in m.files)


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
def test_every_handle_type_of_each_version(version):
    data, files = w.every_handle(version)
    m = parse_metadata(data, PATH)
    assert (m.version, m.checkpoint_id, m.master_states) == (version, 7, ("hook",))
    assert refs(m) == sorted(files)
    assert m.operators == (2 if version == 2 else 3)
    assert m.directories == ("t", "s", "t", "s")
    assert sorted(n for _, n in m.inline) == sorted([6, 6, 6] + ([16] if version >= 3 else []))
    assert m.properties_length == (len(w.PROPERTIES) if version >= 4 else 0)
    assert [f.path for f in m.files if not f.exact] == ["file:/data/job/log"]  # changelog: a format byte
    where = {f.path: f.where for f in m.files}
    assert where["file:/data/job/sst"].endswith("subtask 0: managed keyed state, shared 1.sst")
    assert where["file:/data/job/seg"].endswith("managed operator state (shared segment)")
    assert ("(count-uid)" in where["file:/data/job/keyed"]) == (version >= 5)


@pytest.mark.parametrize("version", [2, 3, 6])
def test_every_truncation_names_the_file_and_offset(version):
    data, _ = w.every_handle(version)
    end = len(data) - (len(w.PROPERTIES) - 4 if version >= 4 else 0)  # properties: only their magic is read
    for n in range(end):
        with pytest.raises(MetadataFormatError) as e:
            parse_metadata(data[:n], PATH)
        assert e.value.path == PATH and PATH in str(e.value) and 0 <= e.value.offset <= n
        assert f"at byte {e.value.offset}" in str(e.value)


def test_every_single_byte_change_parses_or_fails_cleanly():
    data, _ = w.every_handle(6)
    for i in range(len(data)):
        for delta in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= delta
            try:
                parse_metadata(bytes(bad), PATH)
            except MetadataFormatError:
                pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2400))
def test_random_bytes_spliced_in_parse_or_fail_cleanly(junk, at):
    data, _ = w.every_handle(6)
    try:
        parse_metadata(data[:at] + junk + data[at + len(junk):], PATH)
    except MetadataFormatError:
        pass


def _op(version, sub):
    return w.metadata(version, 7, [w.operator_state(version, {0: sub})])


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x00\x01" + bytes(20), "wrong magic number"),
    (w.i32(w.HEADER_MAGIC) + w.i32(1) + bytes(20), "metadata version 1 is not supported"),
    (w.i32(w.HEADER_MAGIC) + w.i32(7) + bytes(20), "metadata version 7 is not supported"),
    (w.metadata(6, -1, []), "invalid checkpoint id -1"),
    (w.metadata(3, 7, []) + b"x", "1 trailing bytes"),
    (w.metadata(4, 7, [], properties=b""), "checkpoint properties missing"),
    (w.metadata(2, 7, [w.operator_state(2, {0: w.i64(-1) + w.i32(1)})]), "legacy state"),
    (w.metadata(6, 7, [], [w.i32(5) + w.i32(4) + bytes(4)]), "wrong master state magic number"),
    (w.metadata(6, 7, [], [w.master()[:4] + w.i32(0)]), "master state length 0"),
    (w.metadata(6, 7, [], [w.master()[:4] + w.i32(40) + w.master()[8:] + bytes(40)]), "does not match"),
    (_op(6, w.subtask(6, managed_keyed=b"\x63")), "unknown keyed state handle type 99"),
    (_op(6, w.subtask(6, managed_op=b"\x63")), "unknown operator state handle type 99"),
    (_op(6, w.subtask(6, managed_keyed=w.key_groups(b"\x63"))), "unknown state handle type 99"),
    (_op(6, w.subtask(6, inputs=[b"\x02" + bytes(40)])), "unknown channel state handle type 2"),
    (_op(6, w.subtask(6, managed_op=w.operator(w.NULL, mode=3))), "unknown distribution mode"),
    (_op(6, w.subtask(6, managed_op=w.operator(w.NULL, dirs=("t", "s")))), "without a segment handle"),
    (_op(6, w.subtask(6, managed_keyed=w.key_groups(w.segment("p", 0, 1, scope=2)))), "invalid segment"),
    (_op(6, w.subtask(6, managed_keyed=w.key_groups(w.segment("p", -1, 1)))), "invalid segment"),
    (w.metadata(6, 7, [w.operator_state(6, {}, coordinator=w.file("p", 1))]), "expected inline state"),
    (_op(6, w.subtask(6, managed_keyed=w.key_groups(w.u8(2) + w.i64(1) + b"\x00\x02\xc3\x28"))),
     "file path: not valid modified UTF-8"),
    (_op(6, w.subtask(6, managed_keyed=w.u8(12) + w.i32(0) + w.i32(0x7FFFFFFF))), "number of key groups"),
    (w.metadata(6, 7, [])[:-len(w.PROPERTIES) - 4] + w.i32(-1) + w.PROPERTIES, "number of operator states: -1"),
])
def test_malformed_metadata_is_refused_saying_what(data, message):
    with pytest.raises(MetadataFormatError, match=message) as e:
        parse_metadata(data, PATH)
    assert isinstance(e.value, FormatError) and str(e.value).startswith(PATH + ": checkpoint metadata, at byte")


def test_nesting_is_bounded():
    handle = w.file("p", 1)
    for _ in range(MAX_DEPTH + 5):
        handle = w.key_groups_stream(handle)
    with pytest.raises(MetadataFormatError, match=f"nested deeper than {MAX_DEPTH}"):
        parse_metadata(_op(6, w.subtask(6, managed_keyed=w.key_groups(handle))), PATH)
    deep_but_allowed = w.file("p", 1)
    for _ in range(MAX_DEPTH - 3):
        deep_but_allowed = w.key_groups_stream(deep_but_allowed)
    m = parse_metadata(_op(6, w.subtask(6, managed_keyed=w.key_groups(deep_but_allowed))), PATH)
    assert [f.path for f in m.files] == ["p"]


def test_java_modified_utf8_paths():
    name = "s3://b/\u00e9t\u00e9/\x00nul/\U0001f600.sst"
    m = parse_metadata(_op(6, w.subtask(6, managed_keyed=w.key_groups(w.file(name, 3)))), PATH)
    assert m.files[0].path == name


def test_finished_operators_and_subtasks_hold_no_state():
    data = w.metadata(6, 9, [w.operator_state(6, {}, finished=True), w.operator_state(6, {0: None, 1: None})])
    m = parse_metadata(data, None)
    assert (m.checkpoint_id, m.operators, m.files, m.inline) == (9, 2, (), ())

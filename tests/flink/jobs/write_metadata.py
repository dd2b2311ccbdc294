"""Write ``_metadata`` files with Flink's own serializers (PyFlink's JVM, through py4j).

One checkpoint whose operators hold every state handle type Flink can write, stored with
``Checkpoints.storeCheckpointMetadata`` by MetadataV3Serializer to MetadataV6Serializer (Flink 2.3
writes 6; Flink 1.20 writes 4, and its MetadataV2V3SerializerBase differs from 2.3's only in names,
so 2.3's V4 serializer writes the bytes 1.20 writes). Each goes to ``OUT/v<N>/_metadata``
(plaintext), and ``OUT/expected.json`` lists, per version, what the reader must find in it.

    python write_metadata.py OUT
"""
from __future__ import annotations

import json
import os
import sys

LONG = 1 << 32  # py4j passes Python ints above 2^31 as java.lang.Long (generic Long fields need one)


class Checkpoint:
    """Builds one CheckpointMetadata for a serializer version, recording the files and inline
    states it references."""

    def __init__(self, gateway, version: int):
        self.g, self.jvm, self.version = gateway, gateway.jvm, version
        self.st, self.cp = self.jvm.org.apache.flink.runtime.state, self.jvm.org.apache.flink.runtime.checkpoint
        self.files: list[dict] = []
        self.inline: list[int] = []
        self.kg = self.st.KeyGroupRange.of(0, 1)

    # -- small Java values ---------------------------------------------------------------
    def longs(self, *v):
        a = self.g.new_array(self.jvm.long, len(v))
        for i, x in enumerate(v):
            a[i] = x
        return a

    def jlist(self, *items):
        lst = self.jvm.java.util.ArrayList()
        for x in items:
            lst.add(x)
        return lst

    def offsets(self):
        return self.st.KeyGroupRangeOffsets(self.kg, self.longs(0, 5))

    def op_states(self):
        info = self.st.OperatorStateHandle.StateMetaInfo(self.longs(0), self.st.OperatorStateHandle.Mode.UNION)
        return self.jvm.java.util.HashMap({"s": info})

    def dirs(self):
        return [self.st.filemerging.DirectoryStreamStateHandle.of(self.jvm.org.apache.flink.core.fs.Path(
            f"file:/data/job/{d}")) for d in ("taskowned", "shared")]

    # -- stream handles --------------------------------------------------------------------
    def file(self, name, size, segment=False, offset=0):
        uri = f"file:/data/job/{name}"
        self.files.append({"path": uri, "size": size, "relative": False, "segment": segment, "offset": offset})
        p = self.jvm.org.apache.flink.core.fs.Path(uri)
        if segment:
            return self.st.filemerging.SegmentFileStateHandle(
                p, offset, size, self.st.CheckpointedStateScope.SHARED,
                self.cp.filemerging.LogicalFile.LogicalFileId("lf-" + name))
        return self.st.filesystem.FileStateHandle(p, size)

    def relative(self, name, size):
        self.files.append({"path": name, "size": size, "relative": True, "segment": False, "offset": 0})
        return self.st.filesystem.RelativeFileStateHandle(
            self.jvm.org.apache.flink.core.fs.Path("file:/sp/" + name), name, size)

    def inline_bytes(self, name, n):
        self.inline.append(n)
        return self.st.memory.ByteStreamStateHandle(name, bytearray(b"i" * n))

    # -- keyed and operator handles --------------------------------------------------------
    def incremental(self):
        hlp = self.st.IncrementalKeyedStateHandle.HandleAndLocalPath
        shared = self.jlist(hlp.of(self.file("shared/sst-1", 101), "000001.sst"),
                            hlp.of(self.inline_bytes("sst-2", 7), "000002.sst"))
        private = self.jlist(hlp.of(self.file("chk-7/manifest", 102), "MANIFEST-000003"))
        return self.st.IncrementalRemoteKeyedStateHandle(self.jvm.java.util.UUID.randomUUID(), self.kg, 7,
                                                         shared, private, self.file("chk-7/meta", 103))

    def changelog(self):
        cl = self.st.changelog
        files = cl.ChangelogStateHandleStreamImpl(
            self.jlist(self.jvm.org.apache.flink.api.java.tuple.Tuple2.of(self.file("dstl/log-1", 104), LONG)),
            self.kg, 104, 104, "filesystem")
        self.inline.append(2)
        in_memory = cl.inmemory.InMemoryChangelogStateHandle(
            self.jlist(cl.StateChange.ofDataChange(0, bytearray(b"ch"))), cl.SequenceNumber.of(1),
            cl.SequenceNumber.of(2), self.kg)
        materialized = self.st.KeyGroupsStateHandle(self.offsets(), self.file("chk-5/materialized", 105))
        return cl.ChangelogStateBackendHandle.ChangelogStateBackendHandleImpl.restore(
            self.jlist(materialized), self.jlist(files, in_memory), self.kg, 7, 5, 300,
            self.st.StateHandleID("changelog-handle"))

    def merging_operator(self, empty=False):
        fm = self.st.filemerging
        if empty:
            return fm.EmptyFileMergingOperatorStreamStateHandle(*self.dirs(), self.op_states(),
                                                                 fm.EmptySegmentFileStateHandle.INSTANCE)
        return fm.FileMergingOperatorStreamStateHandle(
            *self.dirs(), self.op_states(), self.file("taskowned/merged", 50, segment=True, offset=10))

    def channels(self):
        ch = self.jvm.org.apache.flink.runtime.checkpoint.channel
        info = self.st.AbstractChannelStateHandle.StateContentMetaInfo(self.jlist(LONG), 20)
        ins = [self.st.InputChannelStateHandle(0, ch.InputChannelInfo(0, 0), self.file("chk-7/channel-in", 108),
                                               info)]
        outs = [self.st.ResultSubpartitionStateHandle(0, ch.ResultSubpartitionInfo(0, 0),
                                                      self.file("chk-7/channel-out", 109), info)]
        if self.version >= 6:
            ins.append(self.st.MergedInputChannelStateHandle(0, self.file("chk-7/merged-in", 110), 110,
                                                             bytearray(b"off")))
            outs.append(self.st.MergedResultSubpartitionStateHandle(0, self.file("chk-7/merged-out", 111), 111,
                                                                    bytearray(b"off")))
        return ins, outs

    def subtask(self, managed_op=None, raw_op=None, managed_keyed=None, raw_keyed=None, inputs=(), outputs=()):
        b = self.cp.OperatorSubtaskState.builder()
        for setter, handle in (("setManagedOperatorState", managed_op), ("setRawOperatorState", raw_op),
                               ("setManagedKeyedState", managed_keyed), ("setRawKeyedState", raw_keyed)):
            if handle is not None:  # the builder's default is "no state"
                getattr(b, setter)(handle)
        b.setInputChannelState(self.cp.StateObjectCollection(self.jlist(*inputs)))
        b.setResultSubpartitionState(self.cp.StateObjectCollection(self.jlist(*outputs)))
        return b.build()

    # -- the checkpoint --------------------------------------------------------------------
    def metadata(self):
        st, cp, jvm = self.st, self.cp, self.jvm
        op_id = jvm.org.apache.flink.runtime.jobgraph.OperatorID
        op1 = cp.OperatorState("counter", "count-uid", op_id(), 2, 128)
        op1.setCoordinatorState(self.inline_bytes("coordinator", 16))
        nested = st.KeyGroupsStateHandle(self.offsets(), st.KeyGroupsStateHandle(
            self.offsets(), self.file("chk-7/nested", 113)))
        ins, outs = self.channels()
        op1.putState(0, self.subtask(st.OperatorStreamStateHandle(self.op_states(), self.file("chk-7/operator", 107)),
                                     None, st.KeyGroupsStateHandle(self.offsets(), self.file("chk-7/keyed", 112)),
                                     nested, ins, outs))
        op1.putState(1, cp.FinishedOperatorSubtaskState.INSTANCE)
        op2 = cp.OperatorState(None, None, op_id(), 3, 128)
        self.inline.append(9)
        raw_op = st.OperatorStreamStateHandle(self.op_states(), st.memory.ByteStreamStateHandle("raw", bytearray(9)))
        savepoint_keyed = st.KeyGroupsSavepointStateHandle(self.offsets(), self.relative("savepoint-file", 106))
        op2.putState(0, self.subtask(self.merging_operator(), raw_op, self.incremental(), savepoint_keyed))
        op2.putState(1, self.subtask(self.merging_operator(empty=True), None, self.changelog()))
        op2.putState(2, self.subtask())
        op3 = cp.FullyFinishedOperatorState(None, None, op_id(), 1, 128)
        props = cp.CheckpointProperties.forCheckpoint(cp.CheckpointRetentionPolicy.RETAIN_ON_CANCELLATION)
        return cp.metadata.CheckpointMetadata(7, self.jlist(op1, op2, op3),
                                              self.jlist(cp.MasterState("master-hook", bytearray(6), 1)), props)

    def expected(self) -> dict:
        return {"checkpoint_id": 7, "operators": 3, "master_states": ["master-hook"],
                "files": sorted(self.files, key=json.dumps), "inline": sorted(self.inline),
                "directories": ["file:/data/job/taskowned", "file:/data/job/shared"] * 2}


def main(out: str) -> None:
    from pyflink.java_gateway import get_gateway
    g = get_gateway()
    expected = {}
    for version in (3, 4, 5, 6):
        c = Checkpoint(g, version)
        meta = c.metadata()
        os.makedirs(os.path.join(out, f"v{version}"), exist_ok=True)
        stream = g.jvm.java.io.DataOutputStream(g.jvm.java.io.FileOutputStream(
            os.path.join(out, f"v{version}", "_metadata")))
        serializer = getattr(c.cp.metadata, f"MetadataV{version}Serializer").INSTANCE
        c.cp.Checkpoints.storeCheckpointMetadata(meta, stream, serializer)
        stream.close()
        expected[version] = c.expected()
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The default 1 MiB segments through an inner stream without a channel (S3, GCS, HDFS): each sealed
 * segment reaches it in pieces of at most {@link SealingStage#SCRATCH_BYTES}, every byte in order, and
 * the file reads back whole.
 */
class LargeSegmentsITCase {

    @TempDir
    static java.nio.file.Path dir;
    static PythonSession session;
    static final int SEG = 1 << 20;

    @BeforeAll
    static void setUp() throws Exception {
        session = PythonSession.open(TestSupport.conf(TestSupport.keyring(dir), "1mb"));
    }

    /** An in-memory inner stream that keeps what reaches it and the largest single write. */
    static final class Sizes extends FSDataOutputStream {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int largest;
        int writes;

        @Override
        public long getPos() {
            return bytes.size();
        }

        @Override
        public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            largest = Math.max(largest, len);
            writes++;
            bytes.write(b, off, len);
        }

        @Override
        public void flush() {
        }

        @Override
        public void sync() {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void sealedSegmentsReachAStreamWithoutAChannelInPiecesAndReadBackWhole() throws IOException {
        assertTrue(SEG + 16 > SealingStage.SCRATCH_BYTES, "the segments must be larger than a piece");
        byte[] data = TestSupport.data(SEG * 2 + SEG / 2 + 7, 3);
        Sizes sink = new Sizes();
        try (EncryptingOutputStream out = new EncryptingOutputStream(sink, session, "large")) {
            for (int off = 0; off < data.length; off += 65536) {
                out.write(data, off, Math.min(65536, data.length - off));
            }
        }
        assertEquals(SealingStage.SCRATCH_BYTES, sink.largest, "a sealed segment went out in one piece");
        assertTrue(sink.writes >= 3 * ((SEG + 16) / SealingStage.SCRATCH_BYTES), "writes: " + sink.writes);

        byte[] file = sink.bytes.toByteArray();
        try (DecryptingInputStream in = new DecryptingInputStream(
                new BackgroundIoITCase.Source(file, Long.MAX_VALUE), file.length, session, "large")) {
            byte[] all = new byte[data.length];
            for (int off = 0; off < all.length; ) {
                int got = in.read(all, off, all.length - off);
                assertTrue(got > 0, "ended early at " + off);
                off += got;
            }
            assertEquals(-1, in.read(), "longer than written");
            assertArrayEquals(data, all);
        }
    }
}

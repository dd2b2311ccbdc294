package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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

    @Test
    void sealedSegmentsReachAStreamWithoutAChannelInPiecesAndReadBackWhole() throws IOException {
        assertTrue(SEG + 16 > SealingStage.SCRATCH_BYTES, "the segments must be larger than a piece");
        byte[] data = TestSupport.data(SEG * 2 + SEG / 2 + 7, 3);
        BackgroundIoITCase.Sink sink = new BackgroundIoITCase.Sink(Long.MAX_VALUE);
        try (EncryptingOutputStream out = new EncryptingOutputStream(sink, session, "large")) {
            for (int off = 0; off < data.length; off += 65536) {
                out.write(data, off, Math.min(65536, data.length - off));
            }
        }
        assertEquals(SealingStage.SCRATCH_BYTES, sink.largest, "a sealed segment went out in one piece");
        assertTrue(sink.events.size() >= 3 * ((SEG + 16) / SealingStage.SCRATCH_BYTES), "writes: " + sink.events);

        assertArrayEquals(data, BackgroundIoITCase.readBack(session, sink.bytes.toByteArray(), "large", data.length));
    }
}

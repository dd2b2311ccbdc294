package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.ByteBufferReadable;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.ByteBuffer;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** ForSt's block reads: a positional read decrypts exactly the segments it covers, and no more. */
class PositionalReadITCase {

    @TempDir
    static java.nio.file.Path dir;
    static EncryptedFileSystem fs;
    static final int SEG = 64;

    @BeforeAll
    static void setUp() throws Exception {
        fs = EncryptedFileSystem.of("enc+file", FileSystem.getLocalFileSystem(), URI.create("enc+file:///"),
                TestSupport.conf(TestSupport.keyring(dir), String.valueOf(SEG)));
    }

    /** Plaintext bytes decrypted by {@code reads}, run on a fresh stream over {@code data}, stream closed. */
    static long decrypted(byte[] data, Reads reads) throws Exception {
        Path p = new Path("enc+file://" + dir.resolve("blocks").toAbsolutePath());
        try (FSDataOutputStream out = fs.create(p, FileSystem.WriteMode.OVERWRITE)) {
            out.write(data);
        }
        long before = ReadCounters.snapshot()[0];
        try (FSDataInputStream in = fs.open(p)) {
            reads.run((ByteBufferReadable) in);
        } // closing waits for any prefetch, which the counters then include
        return ReadCounters.snapshot()[0] - before;
    }

    interface Reads {
        void run(ByteBufferReadable in) throws Exception;
    }

    static void check(ByteBufferReadable in, byte[] data, long at, int len) throws Exception {
        ByteBuffer b = ByteBuffer.allocateDirect(len);
        assertEquals(len, in.read(at, b));
        b.flip();
        byte[] got = new byte[len];
        b.get(got);
        assertArrayEquals(Arrays.copyOfRange(data, (int) at, (int) at + len), got, "at " + at);
    }

    @Test
    void aBlockReadAcrossASegmentBoundaryDecryptsTheTwoSegmentsOnly() throws Exception {
        byte[] data = TestSupport.data(SEG * 20, 3);
        assertEquals(2 * SEG, decrypted(data, in -> {
            check(in, data, SEG * 3 + 50, 40); // segments 3 and 4
            check(in, data, SEG * 4 + 1, 10); // inside them: nothing more
            check(in, data, SEG * 3, 2 * SEG);
        }), "a read ahead was decrypted for nothing");
    }

    @Test
    void consecutiveBlockReadsDecryptWhatTheyCoverAndAReadOfManySegmentsIsOneWindow() throws Exception {
        byte[] data = TestSupport.data(SEG * 40 + 7, 4);
        assertEquals(40L * SEG + 7, decrypted(data, in -> {
            for (int block = 0; block < 10; block++) { // as ForSt reads a file by blocks: no prefetch
                check(in, data, block * 2L * SEG, 2 * SEG);
            }
            check(in, data, SEG * 20, SEG * 20 + 7); // the rest, final segment included
        }));
        assertEquals(SEG + 7, decrypted(data, in -> check(in, data, SEG * 39 + 5, SEG + 2)));
    }
}

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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ForSt's block reads: a positional read decrypts exactly the segments it covers, and no more, with
 *  Python called on the reading thread (no hand-off to a bridge worker). */
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

    @Test
    void positionalReadsDecryptOnTheReadingThreadAndPastTheLimitThroughTheBridge() throws Exception {
        byte[] data = TestSupport.data(SEG * 8, 5);
        Path p = new Path("enc+file://" + dir.resolve("threads").toAbsolutePath());
        try (FSDataOutputStream out = fs.create(p, FileSystem.WriteMode.OVERWRITE)) {
            out.write(data);
        }
        int before = CallerPython.threads();
        Thread[] readers = new Thread[CallerPython.MAX_THREADS + 6];
        Throwable[] failed = new Throwable[readers.length];
        for (int t = 0; t < readers.length; t++) {
            int me = t;
            readers[t] = new Thread(() -> {
                try (FSDataInputStream in = fs.open(p)) {
                    check((ByteBufferReadable) in, data, (me % 7) * SEG + 3, SEG);
                } catch (Throwable e) {
                    failed[me] = e;
                }
            });
            readers[t].start();
            readers[t].join(); // one at a time: every thread reads while the earlier ones still hold theirs
        }
        for (Throwable e : failed) {
            if (e != null) {
                throw new AssertionError(e);
            }
        }
        assertTrue(before < CallerPython.MAX_THREADS, "an earlier test used them all");
        assertEquals(CallerPython.MAX_THREADS, CallerPython.threads(), "each reading thread got its own, up to the limit");
    }

    @Test
    void aTamperedSegmentReadByPositionFailsNamingTheFile() throws Exception {
        byte[] data = TestSupport.data(SEG * 6, 6);
        java.nio.file.Path raw = dir.resolve("tampered");
        Path p = new Path("enc+file://" + raw.toAbsolutePath());
        try (FSDataOutputStream out = fs.create(p, FileSystem.WriteMode.OVERWRITE)) {
            out.write(data);
        }
        byte[] b = java.nio.file.Files.readAllBytes(raw);
        b[b.length - 3 * (SEG + 16)] ^= 1; // in segment 3
        java.nio.file.Files.write(raw, b);
        try (FSDataInputStream in = fs.open(p)) {
            check((ByteBufferReadable) in, data, 10, SEG); // segments 0 and 1 still authenticate
            java.io.IOException e = assertThrows(java.io.IOException.class,
                    () -> ((ByteBufferReadable) in).read(SEG * 3 + 5, ByteBuffer.allocateDirect(10)));
            assertTrue(e.getMessage().contains("AuthenticationError: " + p), e.getMessage());
        }
    }
}

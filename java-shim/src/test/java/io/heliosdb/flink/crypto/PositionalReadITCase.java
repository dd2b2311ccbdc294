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
        // threads that ended leave room for new ones (a restarted job's task threads)
        int before = CallerPython.made();
        for (int t = 0; t < 3; t++) {
            Thread reader = new Thread(() -> read(p, data, 3));
            reader.start();
            reader.join();
        }
        assertEquals(before + 3, CallerPython.made(), "each reading thread made its own interpreter");
        // more live readers than there is room for: the ones past it go through the bridge, and all read right
        int room = CallerPython.MAX_LIVE - CallerPython.live();
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        java.util.List<Throwable> failed = new java.util.concurrent.CopyOnWriteArrayList<>();
        Thread[] readers = new Thread[CallerPython.MAX_LIVE + 6];
        for (int t = 0; t < readers.length; t++) {
            int me = t;
            readers[t] = new Thread(() -> {
                try {
                    read(p, data, me % 7);
                    done.await(); // stays alive, holding its interpreter
                } catch (Throwable e) {
                    failed.add(e);
                }
            });
            readers[t].start();
        }
        while (CallerPython.made() < before + 3 + room) {
            Thread.sleep(10);
        }
        Thread.sleep(500); // the readers past the limit read through the bridge meanwhile
        done.countDown();
        for (Thread t : readers) {
            t.join();
        }
        assertEquals(java.util.Collections.emptyList(), failed);
        assertEquals(before + 3 + room, CallerPython.made(), "no more than MAX_LIVE at a time");
    }

    static void read(Path p, byte[] data, int block) {
        try (FSDataInputStream in = fs.open(p)) {
            check((ByteBufferReadable) in, data, block * (long) SEG + 3, SEG);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
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

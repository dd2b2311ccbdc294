package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sealed batches are written, and later windows fetched, by the Python workers while the
 * caller goes on: the inner stream must still see one thread at a time, bytes in order, and a
 * failure there must fail the stream (naming the file), never vanish.
 */
class BackgroundIoITCase {

    @TempDir
    static java.nio.file.Path dir;
    static PythonSession session;
    static final int SEG = 64;
    private static int slotsBefore = WorkerSlots.SHARED.limit();

    @AfterAll
    static void restoreSlots() {
        WorkerSlots.SHARED.limit(slotsBefore);
    }

    @BeforeAll
    static void setUp() throws Exception {
        WorkerSlots.SHARED.limit(1); // this class tests the worker path too: one slot, as the property's 1 gives
        session = PythonSession.open(TestSupport.conf(TestSupport.keyring(dir), String.valueOf(SEG)));
    }

    /** Records how many threads are inside it at once and which threads called it. */
    static final class Watched {
        final AtomicInteger inside = new AtomicInteger();
        final AtomicInteger most = new AtomicInteger();
        final Set<String> threads = ConcurrentHashMap.newKeySet();

        void enter() {
            most.accumulateAndGet(inside.incrementAndGet(), Math::max);
            threads.add(Thread.currentThread().getName());
            try {
                Thread.sleep(0, 200_000); // widen the window in which a second thread could enter
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        void leave() {
            inside.decrementAndGet();
        }
    }

    /**
     * An in-memory inner stream that fails every write once {@code failAfter} bytes are in, records
     * what reaches it in order ("write:&lt;thread&gt;", "sync", "close"), and holds every write after
     * the first (the header) until {@code gate} opens.
     */
    static final class Sink extends FSDataOutputStream {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final Watched watched = new Watched();
        final long failAfter;
        final java.util.List<String> events = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        final java.util.concurrent.CountDownLatch gate;
        int largest; // the largest single write

        Sink(long failAfter) {
            this(failAfter, new java.util.concurrent.CountDownLatch(0));
        }

        Sink(long failAfter, java.util.concurrent.CountDownLatch gate) {
            this.failAfter = failAfter;
            this.gate = gate;
        }

        @Override
        public long getPos() {
            return bytes.size();
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (!events.isEmpty()) {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
            }
            events.add("write:" + Thread.currentThread().getName());
            largest = Math.max(largest, len);
            watched.enter();
            try {
                if (bytes.size() + len > failAfter) {
                    throw new IOException("inner stream: no space left on device");
                }
                bytes.write(b, off, len);
            } finally {
                watched.leave();
            }
        }

        @Override
        public void flush() {
            watched.enter();
            watched.leave();
        }

        @Override
        public void sync() {
            events.add("sync");
        }

        @Override
        public void close() {
            events.add("close");
        }
    }

    /** Reads from memory like a network stream (no positional reads), failing past {@code failAt}. */
    static final class Source extends FSDataInputStream {
        final byte[] file;
        final Watched watched = new Watched();
        final long failAt;
        int pos;

        Source(byte[] file, long failAt) {
            this.file = file;
            this.failAt = failAt;
        }

        @Override
        public void seek(long p) {
            pos = (int) p;
        }

        @Override
        public long getPos() {
            return pos;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            watched.enter();
            try {
                if (pos >= file.length) {
                    return -1;
                }
                if (pos + len > failAt) {
                    throw new IOException("inner stream: connection reset");
                }
                int n = Math.min(len, file.length - pos);
                System.arraycopy(file, pos, b, off, n);
                pos += n;
                return n;
            } finally {
                watched.leave();
            }
        }

        @Override
        public void close() {
        }
    }

    static void sleepQuietly() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static byte[] encrypt(Sink sink, byte[] data, String path) throws IOException {
        try (EncryptingOutputStream out = new EncryptingOutputStream(sink, session, path)) {
            for (int off = 0, chunk = 1; off < data.length; chunk = chunk * 5 % 211 + 1) {
                int n = Math.min(chunk, data.length - off);
                out.write(data, off, n);
                off += n;
                if (off % 7 == 0) {
                    out.flush(); // flush waits for the batch in flight: still one thread inside
                }
                if (off % 5 == 0) {
                    sleepQuietly(); // a slow caller (Flink serializing): the worker writes meanwhile
                }
            }
        }
        return sink.bytes.toByteArray();
    }

    @Test
    void theInnerStreamSeesOneThreadAtATimeAndEveryByteInOrder() throws Exception {
        byte[] data = TestSupport.data(SEG * 300 + 11, 5);
        Sink sink = new Sink(Long.MAX_VALUE);
        byte[] file = encrypt(sink, data, "bg-write");
        assertEquals(1, sink.watched.most.get(), "two threads wrote the inner stream at once");
        assertTrue(sink.watched.threads.stream().anyMatch(t -> t.startsWith("heliosdb-crypto-python-")),
                "no batch was written in the background: " + sink.watched.threads);

        Source source = new Source(file, Long.MAX_VALUE);
        try (DecryptingInputStream in = new DecryptingInputStream(source, file.length, session, "bg-write")) {
            byte[] all = new byte[data.length];
            for (int off = 0, chunk = 3; off < all.length; chunk = chunk * 7 % 173 + 1) {
                int n = in.read(all, off, Math.min(chunk, all.length - off));
                assertTrue(n > 0);
                off += n;
            }
            assertArrayEquals(data, all);
            in.seek(SEG * 17L + 5); // random access after prefetching: waits for the prefetch first
            byte[] some = new byte[SEG];
            assertEquals(SEG, in.read(some));
            assertArrayEquals(Arrays.copyOfRange(data, SEG * 17 + 5, SEG * 18 + 5), some);
        }
        assertEquals(1, source.watched.most.get(), "two threads read the inner stream at once");
        assertTrue(source.watched.threads.stream().anyMatch(t -> t.startsWith("heliosdb-crypto-python-")),
                "no window was fetched in the background: " + source.watched.threads);
    }

    @Test
    void aWriteFailingInTheBackgroundFailsTheStreamNamingTheFile() throws Exception {
        byte[] data = TestSupport.data(SEG * 400, 9);
        Sink sink = new Sink(SEG * 100L); // fails in the middle, inside a background batch
        EncryptingOutputStream out = new EncryptingOutputStream(sink, session, "bg-fail");
        IOException e = assertThrows(IOException.class, () -> {
            for (int off = 0; off < data.length; off += 100) {
                out.write(data, off, Math.min(100, data.length - off));
            }
            out.close();
        });
        assertTrue(e.getMessage().contains("bg-fail") && e.getMessage().contains("no space left"), e.getMessage());
        IOException again = assertThrows(IOException.class, () -> out.write(1));
        assertTrue(again.getMessage().contains("bg-fail"), again.getMessage());
        IOException closed = assertThrows(IOException.class, out::close);
        assertTrue(closed.getMessage().contains("bg-fail"), closed.getMessage());
        assertTrue(sink.bytes.size() <= SEG * 100, "bytes were written after the failure");
    }

    @Test
    void aFileWrittenBesideAnotherWritesItsOwnSegmentsAndEverySlotComesBack() throws Exception {
        // one stream at a time hands its batches to a worker (WorkerSlots, one slot here); a file
        // written beside it writes each segment on its caller's thread as it is sealed. Both files
        // round-trip, and the slot comes back on close and after a failure alike
        int before = WorkerSlots.SHARED.held();
        assertEquals(0, before, "a slot was held before this test: a stream did not give it back");
        Sink failing = new Sink(SEG * 100L);
        EncryptingOutputStream f = new EncryptingOutputStream(failing, session, "side-fail");
        assertEquals(1, WorkerSlots.SHARED.held());
        byte[] junk = TestSupport.data(SEG * 400, 47);
        assertThrows(IOException.class, () -> {
            for (int off = 0; off < junk.length; off += 100) {
                f.write(junk, off, Math.min(100, junk.length - off));
            }
            f.close();
        });
        assertThrows(IOException.class, f::close);
        assertEquals(0, WorkerSlots.SHARED.held(), "a failed stream kept its worker slot");

        byte[] a = TestSupport.data(SEG * 300 + 7, 41);
        byte[] b = TestSupport.data(SEG * 300 + 9, 43);
        Sink sa = new Sink(Long.MAX_VALUE);
        Sink sb = new Sink(Long.MAX_VALUE);
        try (EncryptingOutputStream oa = new EncryptingOutputStream(sa, session, "side-a");
             EncryptingOutputStream ob = new EncryptingOutputStream(sb, session, "side-b")) {
            assertEquals(1, WorkerSlots.SHARED.held(), "two streams, one slot");
            for (int off = 0; off < b.length; off += 100) {
                if (off < a.length) {
                    oa.write(a, off, Math.min(100, a.length - off));
                }
                ob.write(b, off, Math.min(100, b.length - off));
            }
        }
        assertEquals(0, WorkerSlots.SHARED.held(), "a closed stream kept its worker slot");
        assertTrue(sa.watched.threads.stream().anyMatch(t -> t.startsWith("heliosdb-crypto-python-")),
                "the first file's batches were not written on a worker: " + sa.watched.threads);
        assertEquals(Set.of(Thread.currentThread().getName()), sb.watched.threads,
                "the file written beside it was not written on its caller's thread alone");
        assertArrayEquals(a, readBack(sa.bytes.toByteArray(), "side-a", a.length));
        assertArrayEquals(b, readBack(sb.bytes.toByteArray(), "side-b", b.length));
    }

    static byte[] readBack(byte[] file, String path, int n) throws IOException {
        return readBack(session, file, path, n);
    }

    /** The whole plaintext of {@code file}, read through a {@link DecryptingInputStream} of {@code s}. */
    static byte[] readBack(PythonSession s, byte[] file, String path, int n) throws IOException {
        try (DecryptingInputStream in = new DecryptingInputStream(new Source(file, Long.MAX_VALUE), file.length,
                s, path)) {
            byte[] all = new byte[n];
            for (int off = 0; off < n; ) {
                int got = in.read(all, off, n - off);
                assertTrue(got > 0, path + " ended early");
                off += got;
            }
            assertEquals(-1, in.read(), path + " is longer than written");
            return all;
        }
    }

    @Test
    void aReadFailingInTheBackgroundFailsOnlyTheWindowThatNeedsIt() throws Exception {
        byte[] data = TestSupport.data(SEG * 200, 13);
        byte[] file = encrypt(new Sink(Long.MAX_VALUE), data, "bg-read-fail");
        int failAt = file.length - SEG * 60; // somewhere in a later prefetched window
        try (DecryptingInputStream in = new DecryptingInputStream(new Source(file, failAt), file.length, session,
                "bg-read-fail")) {
            byte[] head = new byte[SEG * 5];
            int off = 0;
            while (off < head.length) {
                off += in.read(head, off, head.length - off);
            }
            assertArrayEquals(Arrays.copyOf(data, head.length), head);
            IOException e = assertThrows(IOException.class, () -> {
                byte[] rest = new byte[4096];
                while (in.read(rest) > 0) {
                    // read on until the failing window
                }
            });
            assertTrue(e.getMessage().contains("bg-read-fail") && e.getMessage().contains("connection reset"),
                    e.getMessage());
        }
    }

    @Test
    void anInterruptedWriterStillWritesTheWholeLocalFileAndKeepsItsInterrupt() throws Exception {
        // Flink interrupts its threads when it cancels; a pending interrupt must neither break the
        // hand-offs to the workers, nor the writes of a file written beside it on the caller's thread
        // (no worker slot left), nor be lost
        org.apache.flink.core.fs.FileSystem local = org.apache.flink.core.fs.FileSystem.getLocalFileSystem();
        org.apache.flink.core.fs.Path p = new org.apache.flink.core.fs.Path(dir.resolve("interrupted").toUri());
        org.apache.flink.core.fs.Path q = new org.apache.flink.core.fs.Path(dir.resolve("interrupted-beside").toUri());
        byte[] data = TestSupport.data(SEG * 100 + 3, 21);
        boolean kept;
        try (EncryptingOutputStream out = new EncryptingOutputStream(
                local.create(p, org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE), session, "interrupted");
             EncryptingOutputStream beside = new EncryptingOutputStream(
                local.create(q, org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE), session, "interrupted-beside")) {
            Thread.currentThread().interrupt();
            out.write(data, 0, data.length / 2);
            beside.write(data, 0, data.length / 2);
            out.write(data, data.length / 2, data.length - data.length / 2);
            beside.write(data, data.length / 2, data.length - data.length / 2);
        } finally {
            kept = Thread.interrupted();
        }
        assertTrue(kept, "the caller's interrupt was swallowed");
        for (org.apache.flink.core.fs.Path f : new org.apache.flink.core.fs.Path[] {p, q}) {
            long len = local.getFileStatus(f).getLen();
            try (DecryptingInputStream in = new DecryptingInputStream(local.open(f), len, session, f.getName())) {
                assertArrayEquals(data, in.readAllBytes(), f.getName());
            }
        }
    }

    @Test
    void aLocalFileWrittenBesideAnotherIsWrittenByPythonThroughItsOwnDescriptor() throws Exception {
        // without a worker slot, Python seals each segment and writes it to the local file itself,
        // through a duplicate of the file's descriptor, closed once the file is finished
        org.apache.flink.core.fs.FileSystem local = org.apache.flink.core.fs.FileSystem.getLocalFileSystem();
        java.nio.file.Path file = dir.resolve("beside-direct");
        byte[] data = TestSupport.data(SEG * 50 + 5, 53);
        try (EncryptingOutputStream holder = new EncryptingOutputStream(new Sink(Long.MAX_VALUE), session, "holder");
             EncryptingOutputStream out = new EncryptingOutputStream(local.create(
                     new org.apache.flink.core.fs.Path(file.toUri()), org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE),
                     session, "beside-direct")) {
            holder.write(data, 0, 10);
            out.write(data, 0, SEG * 3);
            assertEquals(2, descriptorsOf(file), "the JVM's descriptor and Python's duplicate");
            out.write(data, SEG * 3, data.length - SEG * 3);
        }
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (descriptorsOf(file) > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, descriptorsOf(file), "a descriptor of the finished file was left open");
        byte[] raw = java.nio.file.Files.readAllBytes(file);
        assertArrayEquals(data, readBack(raw, "beside-direct", data.length));
    }

    /** Descriptors this process has open on {@code file} (Linux: /proc/self/fd). */
    static int descriptorsOf(java.nio.file.Path file) throws IOException {
        int n = 0;
        try (java.nio.file.DirectoryStream<java.nio.file.Path> fds =
                     java.nio.file.Files.newDirectoryStream(java.nio.file.Paths.get("/proc/self/fd"))) {
            for (java.nio.file.Path fd : fds) {
                try {
                    if (java.nio.file.Files.readSymbolicLink(fd).equals(file.toAbsolutePath())) {
                        n++;
                    }
                } catch (IOException gone) {
                    // closed while listed
                }
            }
        }
        return n;
    }

    @Test
    void aSlowInnerStreamHoldsTheCallerOnlyOnceTheWholeRingIsInFlight() throws Exception {
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
        Sink inner = new Sink(Long.MAX_VALUE, gate);
        byte[] data = TestSupport.data(SEG * 600 + 5, 31);
        EncryptingOutputStream out = new EncryptingOutputStream(inner, session, "ring");
        // batches grow 1, 4, 16, 16, ... segments; with the first write held, the other buffers of the
        // ring still take 1 + 4 + 16 * (DEPTH - 3) segments without waiting
        int free = SEG * (1 + 4 + 16 * (EncryptingOutputStream.DEPTH - 3));
        java.util.concurrent.CompletableFuture<Void> first = java.util.concurrent.CompletableFuture.runAsync(() -> {
            try {
                out.write(data, 0, free);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        first.get(20, java.util.concurrent.TimeUnit.SECONDS); // returned while nothing could be written
        assertEquals(1, inner.events.size(), "only the header may be out: " + inner.events);
        java.util.concurrent.CompletableFuture<Void> rest = java.util.concurrent.CompletableFuture.runAsync(() -> {
            try {
                out.write(data, free, data.length - free);
                out.sync();
                out.close();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        Thread.sleep(200);
        assertTrue(!rest.isDone(), "the caller went on with every buffer of the ring in flight");
        gate.countDown();
        rest.get(20, java.util.concurrent.TimeUnit.SECONDS);

        java.util.List<String> ev = new java.util.ArrayList<>(inner.events);
        assertTrue(ev.subList(1, ev.size() - 2).stream().allMatch(e -> e.startsWith("write:heliosdb-crypto-python-")),
                "the inner stream was written by a thread other than the workers: " + ev);
        // sync() made durable only what Flink would keep: the complete file, its last segment included
        assertEquals(java.util.List.of("sync", "close"), ev.subList(ev.size() - 2, ev.size()));
        byte[] file = inner.bytes.toByteArray();
        try (DecryptingInputStream in = new DecryptingInputStream(new Source(file, Long.MAX_VALUE), file.length,
                session, "ring")) {
            assertArrayEquals(data, in.readAllBytes());
        }
    }

    @Test
    void flinksWrappersStillReachTheLocalFilesChannel() throws Exception {
        org.apache.flink.core.fs.FileSystem local = org.apache.flink.core.fs.FileSystem.getLocalFileSystem();
        org.apache.flink.core.fs.Path p = new org.apache.flink.core.fs.Path(dir.resolve("wrapped").toUri());
        FSDataOutputStream inner = new org.apache.flink.core.fs.FSDataOutputStreamWrapper(
                local.create(p, org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE));
        assertTrue(InnerChannels.writable(inner) != null, "no channel behind Flink's wrapper");
        assertTrue(InnerChannels.writable(new Sink(Long.MAX_VALUE)) == null, "a channel for a non-file stream");
        assertTrue(InnerChannels.fd(inner) >= 0, "no descriptor behind Flink's wrapper");
        assertEquals(-1, InnerChannels.fd(new Sink(Long.MAX_VALUE)), "a descriptor for a non-file stream");
        byte[] data = TestSupport.data(SEG * 500 + 7, 41);
        try (EncryptingOutputStream out = new EncryptingOutputStream(inner, session, "wrapped")) {
            out.write(data, 0, 1000);
            out.flush();
            out.write(data, 1000, data.length - 1000);
        }
        long len = local.getFileStatus(p).getLen();
        try (DecryptingInputStream in = new DecryptingInputStream(local.open(p), len, session, "wrapped")) {
            assertArrayEquals(data, in.readAllBytes());
        }
    }
}

package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The write pipeline alone (no CPython): a stream's batches are prepared (sealed) on the caller's
 * thread as they are submitted, then processed (written) in order, one at a time; the ring bounds the
 * memory in flight; the first failure stops the stream; buffers go back only once no worker uses them.
 */
class WritePipelineTest {

    static final int SEG = 16;

    /** The thread that writes the stream (the test's). */
    static volatile String WRITER = "";

    /** "Seals" a batch by copying it with its first segment's index and a last flag in front, and
     *  records the order, the threads and how many batches were inside at once. */
    static final class Recorder implements WritePipeline.Stage {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final List<Long> order = Collections.synchronizedList(new ArrayList<>());
        final List<String> threads = Collections.synchronizedList(new ArrayList<>());
        final AtomicInteger inside = new AtomicInteger();
        final AtomicInteger most = new AtomicInteger();
        final AtomicInteger taken = new AtomicInteger();
        final AtomicInteger given = new AtomicInteger();
        final AtomicInteger mostOwned = new AtomicInteger();
        volatile long failAt = Long.MAX_VALUE; // the batch starting at this segment fails
        volatile long failPrepareAt = Long.MAX_VALUE; // the batch starting here fails to prepare
        final List<String> prepared = new java.util.concurrent.CopyOnWriteArrayList<>(); // "first:last@thread"
        volatile CountDownLatch gate = new CountDownLatch(0);
        /** Segments a batch's plaintext buffer holds (0: the whole batch); less and a batch is
         *  prepared in parts, each part's bytes kept here as the "sealed" batch. */
        int plainSegments;
        final java.util.Map<WriteBatch, ByteArrayOutputStream> parts = new java.util.IdentityHashMap<>();
        final List<String> preparedParts = new ArrayList<>(); // "segment+bytes" per prepare, in order

        @Override
        public WriteBatch take(int segments) {
            mostOwned.accumulateAndGet(taken.incrementAndGet() - given.get(), Math::max);
            int plain = plainSegments > 0 ? Math.min(segments, plainSegments) : segments;
            return new WriteBatch(ByteBuffer.allocate(plain * SEG), segments * SEG);
        }

        @Override
        public void prepare(WriteBatch b) throws IOException {
            if (b.firstSegment >= failPrepareAt) {
                throw new IOException("sealing failed");
            }
            int held = b.length - b.base;
            byte[] copy = new byte[held];
            b.plain.duplicate().clear().get(copy);
            synchronized (parts) {
                parts.computeIfAbsent(b, x -> new ByteArrayOutputStream()).write(copy, 0, held);
                preparedParts.add((b.firstSegment + b.base / SEG) + "+" + held);
            }
            if (b.length == b.capacity() || b.last) {
                prepared.add(b.firstSegment + ":" + b.last + "@" + Thread.currentThread().getName());
            }
        }

        @Override
        public void process(WriteBatch b) throws IOException {
            String w = WRITER;
            if (prepared.stream().noneMatch(x -> x.startsWith(b.firstSegment + ":" + b.last + "@")
                    && (w == null || x.endsWith("@" + w)))) {
                throw new IOException("batch " + b.firstSegment + " processed unprepared: " + prepared);
            }
            most.accumulateAndGet(inside.incrementAndGet(), Math::max);
            try {
                gate.await();
                Thread.sleep(0, 100_000); // widen the window in which a second batch could enter
                if (b.firstSegment >= failAt) {
                    throw new IOException("inner stream: no space left on device");
                }
                order.add(b.firstSegment);
                threads.add(Thread.currentThread().getName());
                byte[] copy;
                synchronized (parts) {
                    copy = parts.remove(b).toByteArray();
                }
                assertEquals(b.length, copy.length, "a part of the batch was not prepared");
                synchronized (out) {
                    out.write(b.last ? 'L' : '-');
                    out.write(copy, 0, copy.length);
                }
            } catch (InterruptedException e) {
                throw new IOException(e);
            } finally {
                inside.decrementAndGet();
            }
        }

        @Override
        public void give(WriteBatch b) {
            given.incrementAndGet();
        }
    }

    static byte[] data(int n) {
        byte[] d = new byte[n];
        for (int i = 0; i < n; i++) {
            d[i] = (byte) (i * 31 + 7);
        }
        return d;
    }

    interface PoolTest {
        void run(ExecutorService pool, Recorder r) throws Exception;
    }

    /** Runs {@code test} with a pool of {@code threads} workers; every batch must be given back. */
    static void withPool(int threads, PoolTest test) throws Exception {
        WRITER = Thread.currentThread().getName();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            Recorder r = new Recorder();
            test.run(pool, r);
            assertEquals(r.taken.get(), r.given.get(), "a batch was not given back");
        } finally {
            pool.shutdownNow();
        }
    }

    /** Writes {@code data} in uneven calls, as EncryptingOutputStream passes Flink's on, then the last batch. */
    static void write(WritePipeline p, byte[] data) throws IOException {
        write(p, data, 0);
    }

    /** As {@link #write(WritePipeline, byte[])}, from byte {@code from} of {@code data} on. */
    static void write(WritePipeline p, byte[] data, int from) throws IOException {
        for (int off = from, chunk = 1; off < data.length; chunk = chunk * 7 % 97 + 1) {
            int n = Math.min(chunk, data.length - off);
            p.write(data, off, n);
            off += n;
        }
        p.submit(true);
        p.drain();
    }

    /** Checks that the batches {@code r} wrote (1, 4, then 16 segments each, the final one alone flagged
     *  last) hold {@code d}, in order; returns how many there were. */
    static int unbatched(Recorder r, byte[] d) {
        byte[] got = r.out.toByteArray();
        ByteArrayOutputStream plain = new ByteArrayOutputStream();
        int batches = 0;
        for (int i = 0; i < got.length; batches++) {
            int len = (int) Math.min(batches == 0 ? SEG : batches == 1 ? 4 * SEG : 16 * SEG, d.length - plain.size());
            assertEquals(i + len + 1 == got.length ? 'L' : '-', got[i], "only the final batch is flagged last");
            plain.write(got, i + 1, len);
            i += len + 1;
        }
        assertArrayEquals(d, plain.toByteArray(), "bytes lost or reordered");
        return batches;
    }

    @Test
    void batchesAreProcessedInOrderOneAtATimeAndGrowFourfold() throws Exception {
        withPool(3, (pool, r) -> {
            WritePipeline p = new WritePipeline(r, pool, SEG, 16, 4);
            byte[] d = data(SEG * 200 + 5);
            write(p, d);
            p.release();
            assertEquals(1, r.most.get(), "two batches of one stream were processed at once");
            List<Long> firsts = new ArrayList<>(r.order);
            assertEquals(List.of(0L, 1L, 5L, 21L, 37L), firsts.subList(0, 5), "batches: 1, 4, 16, 16, ... segments");
            for (int i = 1; i < firsts.size(); i++) {
                assertTrue(firsts.get(i) > firsts.get(i - 1), "out of order: " + firsts);
            }
            assertEquals(firsts.size(), unbatched(r, d));
            assertTrue(r.mostOwned.get() <= 4, "more batches than the ring holds: " + r.mostOwned.get());
        });
    }

    @Test
    void aPlaintextBufferSmallerThanTheBatchIsPreparedEachTimeItFills() throws Exception {
        for (int plainSegments : new int[] {1, 3}) {
            withPool(2, (pool, r) -> {
                r.plainSegments = plainSegments;
                WritePipeline p = new WritePipeline(r, pool, SEG, 16, 4);
                byte[] d = data(SEG * 70 + 9);
                p.write(d[0]); // one byte, then uneven calls
                write(p, d, 1);
                p.release();
                unbatched(r, d);
                long next = 0; // every part: the next segments, whole ones but the file's final part
                for (int i = 0; i < r.preparedParts.size(); i++) {
                    String[] x = r.preparedParts.get(i).split("\\+");
                    assertEquals(next, Long.parseLong(x[0]), "parts: " + r.preparedParts);
                    int bytes = Integer.parseInt(x[1]);
                    assertTrue(bytes <= plainSegments * SEG, "a part over the plaintext buffer: " + r.preparedParts);
                    if (i < r.preparedParts.size() - 1) {
                        assertEquals(0, bytes % SEG, "a part that is not whole segments: " + r.preparedParts);
                    }
                    next += bytes / SEG;
                }
                assertTrue(r.preparedParts.size() > r.order.size(), "no batch was prepared in parts");
                for (String b : r.prepared) {
                    assertTrue(b.endsWith("@" + WRITER), "prepared on another thread: " + r.prepared);
                }
            });
        }
    }

    @Test
    void eachBatchIsPreparedOnTheCallersThreadBeforeAWorkerWritesIt() throws Exception {
        withPool(2, (pool, r) -> {
            WritePipeline p = new WritePipeline(r, pool, SEG, 4, 4);
            write(p, data(SEG * 30 + 1));
            p.release();
            assertEquals(r.order.size(), r.prepared.size());
            for (String b : r.prepared) {
                assertTrue(b.endsWith("@" + WRITER), "prepared on another thread: " + r.prepared);
            }
            assertTrue(r.prepared.get(r.prepared.size() - 1).contains(":true@"), "the last batch is prepared flagged");
            assertTrue(r.threads.stream().noneMatch(t -> t.equals(WRITER)), "a worker should write: " + r.threads);
        });
    }

    @Test
    void aFailedPrepareFailsTheStreamAndItsBatchIsNeverWritten() throws Exception {
        withPool(2, (pool, r) -> {
            r.failPrepareAt = 5;
            WritePipeline p = new WritePipeline(r, pool, SEG, 4, 4);
            IOException e = assertThrows(IOException.class, () -> write(p, data(SEG * 40)));
            assertTrue(e.getMessage().contains("sealing failed"), e.getMessage());
            assertThrows(IOException.class, () -> p.submit(false));
            assertThrows(IOException.class, p::drain);
            p.release();
            List<Long> written = new ArrayList<>(r.order); // the failure stops the queue: a prefix at most
            assertEquals(List.of(0L, 1L).subList(0, written.size()), written, "the failed batch was written");
            assertEquals(0, r.inside.get());
        });
    }

    @Test
    void aStreamGivesItsWorkerBackEveryFewBatches() throws Exception {
        // other streams (and the reads and file openings queued on the same workers) get their turn
        WRITER = Thread.currentThread().getName();
        AtomicInteger tasks = new AtomicInteger();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Recorder r = new Recorder();
            r.gate = new CountDownLatch(1);
            WritePipeline p = new WritePipeline(r, c -> {
                tasks.incrementAndGet();
                pool.execute(c);
            }, SEG, 1, 64);
            for (int i = 0; i < 40; i++) { // queued while the first is held: one task takes them all
                p.write(new byte[SEG], 0, SEG);
                p.submit(false);
            }
            assertEquals(1, tasks.get());
            r.gate.countDown();
            p.write(new byte[3], 0, 3);
            p.submit(true);
            p.drain();
            p.release();
            assertTrue(tasks.get() >= 41 / WritePipeline.TURN, "never yielded: " + tasks.get() + " tasks");
            assertEquals(41, r.order.size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void theCallerWaitsOnlyWhenTheWholeRingIsInFlightAndKeepsItsInterrupt() throws Exception {
        withPool(2, (pool, r) -> {
            WRITER = null; // batches come from two threads here: prepared before written is all that is checked
            r.gate = new CountDownLatch(1);
            WritePipeline p = new WritePipeline(r, pool, SEG, 1, 3);
            for (int i = 0; i < 2; i++) { // two of three batches in flight: no wait
                p.write(new byte[SEG], 0, SEG);
                p.submit(false);
            }
            p.write(new byte[SEG], 0, SEG);
            Thread caller = new Thread(() -> {
                Thread.currentThread().interrupt(); // Flink cancelling: the wait must not give up
                try {
                    p.submit(false);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                assertTrue(Thread.interrupted(), "the interrupt was swallowed");
            });
            caller.start();
            caller.join(300);
            assertTrue(caller.isAlive(), "the caller went on with every batch of the ring in flight");
            assertTrue(r.order.isEmpty());
            r.gate.countDown();
            caller.join(10_000);
            assertFalse(caller.isAlive());
            p.submit(true);
            p.drain();
            p.release();
            assertEquals(4, r.order.size());
            assertTrue(r.mostOwned.get() <= 3);
        });
    }

    @Test
    void theFirstFailureStopsTheStreamAndBuffersGoBackOnlyOnceTheWorkersLeft() throws Exception {
        withPool(2, (pool, r) -> {
            r.failAt = 5; // the third batch (segments 5..20) fails
            WritePipeline p = new WritePipeline(r, pool, SEG, 16, 8);
            IOException e = assertThrows(IOException.class, () -> write(p, data(SEG * 400)));
            assertTrue(e.getMessage().contains("no space left"), e.getMessage());
            assertEquals(List.of(0L, 1L), new ArrayList<>(r.order), "a batch after the failed one was processed");
            assertTrue(p.failure().getMessage().contains("no space left"));
            assertThrows(IOException.class, () -> p.submit(false));
            assertThrows(IOException.class, p::drain);
            p.release();
            assertEquals(0, r.inside.get());
        });
    }

    @Test
    void withoutWorkersEachBatchIsProcessedOnTheCallersThread() throws Exception {
        WRITER = Thread.currentThread().getName();
        Recorder r = new Recorder();
        WritePipeline p = new WritePipeline(r, Runnable::run, SEG, 1, 1);
        byte[] d = data(SEG * 5 + 3);
        write(p, d);
        p.release();
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L), new ArrayList<>(r.order));
        assertTrue(r.threads.stream().allMatch(t -> t.equals(Thread.currentThread().getName())), r.threads.toString());
        assertEquals(1, r.taken.get());
        assertEquals(1, r.given.get());
    }

    @Test
    void releaseWaitsForTheBatchAWorkerIsInside() throws Exception {
        WRITER = Thread.currentThread().getName();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Recorder r = new Recorder();
            r.gate = new CountDownLatch(1);
            WritePipeline p = new WritePipeline(r, pool, SEG, 1, 2);
            p.write(new byte[SEG], 0, SEG);
            p.submit(false);
            Thread closer = new Thread(p::release); // Flink closing a failed stream from another thread
            closer.start();
            closer.join(300);
            assertTrue(closer.isAlive(), "buffers went back while a worker was using them");
            assertEquals(0, r.given.get());
            r.gate.countDown();
            closer.join(10_000);
            assertFalse(closer.isAlive());
            assertEquals(r.taken.get(), r.given.get());
            assertTrue(pool.shutdownNow().isEmpty());
            assertTrue(pool.awaitTermination(10, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }
}

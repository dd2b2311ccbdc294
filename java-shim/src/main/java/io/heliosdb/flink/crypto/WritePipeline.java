package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.Executor;

/**
 * The batches of one written stream, in order: the caller fills a batch's plaintext buffer and, when
 * it is full, prepares it ({@link Stage#prepare}: the stream seals it, on the caller's thread, while
 * its bytes are in that core's cache); prepared batches are then processed ({@link Stage#process}:
 * written to the inner stream) on workers, strictly in order and by one worker at a time. Knows
 * nothing of Python or Flink: the {@link Stage} seals and writes, the {@link Executor} provides the
 * threads (tests use plain ones).
 *
 * <p>Batches circulate in a ring of {@code depth}: the caller waits only when every other batch is
 * still in flight, and then until half the ring is free again (or nothing is left in flight), so it
 * is woken once per few batches, not once per batch. The batches of a stream run as one task that
 * processes the queued ones one after another, and a worker is woken only when the task starts (not
 * per batch); every {@link #TURN} batches the task gives its worker back (re-queued behind other
 * work, so other streams are not starved). The first failure stops the stream: no later batch is
 * processed, and every later call throws it (a failed prepare too: that batch is never queued). A
 * file starts with a batch of one segment (small files stay small); batches grow fourfold up to
 * {@code maxSegments}.
 *
 * <p>Not thread-safe for callers: one caller at a time (EncryptingOutputStream synchronizes).
 */
final class WritePipeline {

    /** Batches a task processes before it gives its worker back. */
    static final int TURN = 8;

    /** A batch: its plaintext buffer and what the pipeline records of it. */
    static class Batch {
        final ByteBuffer plain;
        /** Plaintext bytes in it, the index of its first segment, whether it ends the file. */
        int length;
        long firstSegment;
        boolean last;

        Batch(ByteBuffer plain) {
            this.plain = plain;
        }

        int capacity() {
            return plain.capacity();
        }
    }

    /** What batches are made of and done with. */
    interface Stage {
        /** A batch for up to {@code segments} segments (fewer when memory runs short). */
        Batch take(int segments) throws IOException;

        /** On the caller's thread, as the batch is submitted (its first segment and last flag set):
         *  seal it. A failure fails the stream; the batch is not queued. */
        void prepare(Batch b) throws IOException;

        /** On a worker, a stream's prepared batches in order: write the batch out. */
        void process(Batch b) throws IOException;

        /** The batch is no longer used. */
        void give(Batch b);
    }

    private final Stage stage;
    private final Executor executor;
    private final int segmentSize;
    private final int maxSegments;
    private final int depth;
    private final Object lock = new Object();
    private final ArrayDeque<Batch> queued = new ArrayDeque<>(); // submitted, not processed; guarded by lock
    private final ArrayDeque<Batch> free = new ArrayDeque<>();   // processed or never used; guarded by lock
    private int owned;              // batches taken from the stage and not given back; guarded by lock
    private boolean running;        // a task processes this stream's queue; guarded by lock
    private boolean waiting;        // the caller waits for free batches; guarded by lock
    private IOException failure;    // guarded by lock
    private Batch cur;
    private long nextSegment;
    private int nextSegments = 1;

    WritePipeline(Stage stage, Executor executor, int segmentSize, int maxSegments, int depth) throws IOException {
        this.stage = stage;
        this.executor = executor;
        this.segmentSize = segmentSize;
        this.maxSegments = Math.max(1, maxSegments);
        this.depth = Math.max(1, depth);
        cur = grown(null);
    }

    /** Bytes that still fit into the current batch. */
    int room() {
        return cur.capacity() - cur.length;
    }

    /** Copies {@code len} bytes, handing each batch that fills up to the workers ({@link #submit}: not
     *  the last one, since more follows). A failure of this or any earlier batch is thrown. */
    void write(byte[] b, int off, int len) throws IOException {
        while (len > 0) {
            if (room() == 0) {
                submit(false);
            }
            int take = Math.min(room(), len);
            put(b, off, take);
            off += take;
            len -= take;
        }
    }

    /** Copies {@code len <= room()} bytes into the current batch. */
    void put(byte[] b, int off, int len) {
        ByteBuffer dst = cur.plain;
        dst.clear().position(cur.length);
        dst.put(b, off, len);
        cur.length += len;
    }

    /** Copies one byte, as {@link #write(byte[], int, int)}. */
    void write(byte b) throws IOException {
        if (room() == 0) {
            submit(false);
        }
        cur.plain.put(cur.length++, b);
    }

    /**
     * Hands the current batch to the workers ({@code last}: it ends the file) and takes the next,
     * waiting while the whole ring is in flight. A failure of this or any earlier batch is thrown.
     */
    void submit(boolean last) throws IOException {
        Batch b = cur;
        boolean start;
        synchronized (lock) {
            throwIfFailed(); // the batch stays the current one, given back by release()
        }
        b.last = last;
        b.firstSegment = nextSegment;
        try {
            stage.prepare(b); // the batch stays the current one, given back by release()
        } catch (IOException | RuntimeException | Error e) {
            throw fail(e);
        }
        synchronized (lock) {
            queued.add(b);
            start = !running;
            running = true;
        }
        nextSegment += Math.max(1, (b.length + segmentSize - 1) / segmentSize);
        cur = null;
        if (start) {
            executor.execute(this::drainSome);
        }
        if (!last) {
            cur = grown(awaitFree());
        }
    }

    /** Waits until every submitted batch is processed; the first failure is thrown. */
    void drain() throws IOException {
        waitUntil(() -> !running || failure != null);
        synchronized (lock) {
            throwIfFailed();
        }
    }

    /** Waits for the workers to leave this stream's buffers (after a failure too), then gives every
     *  batch back. No failure is thrown: the caller reports the one it has. */
    void release() {
        waitUntil(() -> !running);
        synchronized (lock) {
            if (cur != null) {
                free.add(cur);
                cur = null;
            }
            for (Batch b : free) {
                stage.give(b);
                owned--;
            }
            free.clear();
        }
    }

    /** The first failure of a batch, or null. */
    IOException failure() {
        synchronized (lock) {
            return failure;
        }
    }

    /** On a worker: processes queued batches in order, up to {@link #TURN}, then yields. */
    private void drainSome() {
        for (int n = 0; n < TURN; n++) {
            Batch b;
            synchronized (lock) {
                b = failure == null ? queued.poll() : null;
                if (b == null) {
                    free.addAll(queued); // after a failure: never processed
                    queued.clear();
                    running = false;
                    lock.notifyAll();
                    return;
                }
            }
            try {
                stage.process(b);
            } catch (IOException | RuntimeException | Error e) {
                fail(e);
            }
            synchronized (lock) {
                free.add(b);
                if (waiting && (free.size() * 2 >= depth || queued.isEmpty() || failure != null)) {
                    lock.notifyAll();
                }
            }
        }
        executor.execute(this::drainSome); // give the worker back: queued behind other work
    }

    /** A free batch (waiting for one if all are in flight), or null to take a new one. */
    private Batch awaitFree() throws IOException {
        synchronized (lock) {
            if (free.isEmpty() && owned < depth) {
                return null;
            }
        }
        waitUntil(() -> !free.isEmpty() || failure != null);
        synchronized (lock) {
            throwIfFailed();
            return free.poll();
        }
    }

    /** {@code b} (or a new batch) with room for the next batch size; batches grow fourfold. */
    private Batch grown(Batch b) throws IOException {
        int segments = nextSegments;
        nextSegments = Math.min(maxSegments, 4 * segments);
        if (b != null && b.capacity() >= segments * segmentSize) {
            b.length = 0;
            return b;
        }
        if (b != null) {
            stage.give(b);
            synchronized (lock) {
                owned--;
            }
        }
        Batch fresh = stage.take(segments);
        synchronized (lock) {
            owned++;
        }
        fresh.length = 0;
        return fresh;
    }

    /** Records {@code e} as the stream's failure unless there is one already; returns it as an IOException. */
    private IOException fail(Throwable e) {
        IOException io = e instanceof IOException ? (IOException) e : new IOException(String.valueOf(e), e);
        synchronized (lock) {
            if (failure == null) {
                failure = io;
            }
        }
        return io;
    }

    private void throwIfFailed() throws IOException {
        if (failure != null) {
            throw new IOException(failure.getMessage(), failure);
        }
    }

    /** Waits on {@code lock} until {@code done} holds (checked under it). Never leaves early, since a
     *  worker may still use the buffers: an interrupt is kept for the caller to see afterwards. */
    private void waitUntil(java.util.function.BooleanSupplier done) {
        boolean interrupted = false;
        synchronized (lock) {
            waiting = true;
            while (!done.getAsBoolean()) {
                try {
                    lock.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            waiting = false;
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}

package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.Executor;

/**
 * The batches of one written stream, in order: the caller fills a batch's plaintext buffer and, each
 * time it is full and when the batch is submitted, prepares it ({@link Stage#prepare}: the stream
 * seals it into the batch, on the caller's thread, while its bytes are in that core's cache); full
 * batches are then processed ({@link Stage#process}: written to the inner stream) on workers, strictly in order and by one worker at a time. Knows
 * nothing of Python or Flink: the {@link Stage} seals and writes, the {@link Executor} provides the
 * threads (tests use plain ones).
 *
 * <p>WriteBatches circulate in a ring of {@code depth}: the caller waits only when every other batch is
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

    /** WriteBatches a task processes before it gives its worker back. */
    static final int TURN = 8;

    /** What batches are made of and done with. */
    interface Stage {
        /** A batch for up to {@code segments} segments (fewer when memory runs short). */
        WriteBatch take(int segments) throws IOException;

        /** On the caller's thread: seal the bytes in the batch's plaintext buffer (bytes {@code base}
         *  to {@code length} of the batch, whole segments unless it ends the file), when the buffer is
         *  full and as the batch is submitted (its last flag set then). A failure fails the stream; the
         *  batch is not queued. */
        void prepare(WriteBatch b) throws IOException;

        /** On a worker, a stream's prepared batches in order: write the batch out. */
        void process(WriteBatch b) throws IOException;

        /** The batch is no longer used. */
        void give(WriteBatch b);
    }

    private final Stage stage;
    private final Executor executor;
    private final int segmentSize;
    private final int maxSegments;
    private final int depth;
    private final Object lock = new Object();
    private final ArrayDeque<WriteBatch> queued = new ArrayDeque<>(); // submitted, not processed; guarded by lock
    private final ArrayDeque<WriteBatch> free = new ArrayDeque<>();   // processed or never used; guarded by lock
    private int owned;              // batches taken from the stage and not given back; guarded by lock
    private boolean running;        // a task processes this stream's queue; guarded by lock
    private boolean waiting;        // the caller waits for free batches; guarded by lock
    private IOException failure;    // guarded by lock
    private WriteBatch cur;
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
            int take = Math.min(makeRoom(), len);
            ByteBuffer dst = cur.plain;
            dst.clear().position(cur.length - cur.base);
            dst.put(b, off, take);
            cur.length += take;
            off += take;
            len -= take;
        }
    }

    /** Copies one byte, as {@link #write(byte[], int, int)}. */
    void write(byte b) throws IOException {
        makeRoom();
        cur.plain.put(cur.length++ - cur.base, b);
    }

    /** Room in the current plaintext buffer, at least one byte: a full batch is submitted, a full
     *  buffer of a batch with room left is prepared. */
    private int makeRoom() throws IOException {
        if (room() == 0) {
            submit(false);
        }
        int held = cur.length - cur.base;
        if (held == cur.plain.capacity()) {
            prepare(cur, false);
            cur.base = cur.length;
            held = 0;
        }
        return Math.min(room(), cur.plain.capacity() - held);
    }

    /** Seals what {@code b}'s plaintext buffer holds ({@code last}: the batch ends the file). */
    private void prepare(WriteBatch b, boolean last) throws IOException {
        synchronized (lock) {
            throwIfFailed(); // the batch stays the current one, given back by release()
        }
        b.last = last;
        try {
            stage.prepare(b); // the batch stays the current one, given back by release()
        } catch (IOException | RuntimeException | Error e) {
            throw fail(e);
        }
    }

    /**
     * Hands the current batch to the workers ({@code last}: it ends the file) and takes the next,
     * waiting while the whole ring is in flight. A failure of this or any earlier batch is thrown.
     */
    void submit(boolean last) throws IOException {
        WriteBatch b = cur;
        boolean start;
        prepare(b, last);
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
            for (WriteBatch b : free) {
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
            WriteBatch b;
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
    private WriteBatch awaitFree() throws IOException {
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
    private WriteBatch grown(WriteBatch b) throws IOException {
        int segments = nextSegments;
        nextSegments = Math.min(maxSegments, 4 * segments);
        if (b != null && b.capacity() >= segments * segmentSize) {
            return reset(b);
        }
        if (b != null) {
            stage.give(b);
            synchronized (lock) {
                owned--;
            }
        }
        WriteBatch fresh = stage.take(segments);
        synchronized (lock) {
            owned++;
        }
        return reset(fresh);
    }

    private WriteBatch reset(WriteBatch b) {
        b.length = 0;
        b.base = 0;
        b.firstSegment = nextSegment;
        return b;
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

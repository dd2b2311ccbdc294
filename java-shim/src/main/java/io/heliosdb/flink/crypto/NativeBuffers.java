package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Reusable direct ByteBuffers registered once with Python by native address, so that segment calls
 * pass only ints and Python encrypts straight into Java memory.
 *
 * <p>The address is {@code java.nio.Buffer.address}, read without {@code --add-exports} through
 * {@link PrivateFields}. If that is unavailable the streams fall back to copying byte arrays through
 * pemja (slower, same bytes).
 *
 * <p>Buffers live in a bounded pool per capacity, the one given back last taken first (its memory is
 * the likeliest in the CPU's caches). Direct memory is the TaskManager's off-heap budget, shared with
 * Flink's own users of it, so the pool gives memory back: a buffer unused for
 * {@link #IDLE_NANOS} is freed (a daemon thread looks every half of that), and when an allocation
 * finds the JVM's direct memory limit reached, every pooled buffer is freed before it is tried once
 * more. A buffer is unregistered in Python before it is dropped, so Python never holds a view of
 * freed memory.
 */
final class NativeBuffers {

    /** Buffers kept per capacity: a whole write ring (plaintext and sealed buffers are of different sizes). */
    static final int MAX_POOLED_PER_SIZE = 16;

    /**
     * Bytes per Python call once a read stream is large (JVM system property
     * {@code heliosdb.crypto.batch-bytes}, default 4 MiB): every hand-off to a worker costs a
     * thread wake-up and moves data between cores, so large streams batch many segments per call.
     */
    static final int BATCH_BYTES = Integer.getInteger("heliosdb.crypto.batch-bytes", 4 << 20);

    /**
     * Plaintext bytes per sealing call once a written stream is large (JVM system property
     * {@code heliosdb.crypto.write-batch-bytes}, default 2 MiB): what a worker writes per hand-off.
     * Smaller than reads: a written batch is sealed by Flink's thread, then written out by a worker,
     * and 2 MiB keeps it in the CPU caches on the way while halving 1 MiB's hand-offs (4 MiB batches
     * cost more CPU per GiB, docs/performance.md).
     */
    static final int WRITE_BATCH_BYTES = Integer.getInteger("heliosdb.crypto.write-batch-bytes", 2 << 20);

    /**
     * How long a pooled buffer may stay unused before it is freed (JVM system property
     * {@code heliosdb.crypto.buffer-idle-seconds}, default 60, at least 1): long enough for streams
     * opened one after another, or the checkpoints of a short interval, to reuse the memory; short
     * enough that a restore's large read buffers do not hold the off-heap budget for the life of the
     * TaskManager.
     */
    static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(
            Math.max(1, Long.getLong("heliosdb.crypto.buffer-idle-seconds", 60)));

    /** Segments per read call for a segment size: 1 to 16, BATCH_BYTES worth. */
    static int batchSegments(int segmentSize) {
        return batchSegments(segmentSize, BATCH_BYTES);
    }

    /** Segments per call for a segment size and a batch size: 1 to 16. */
    static int batchSegments(int segmentSize, int batchBytes) {
        return Math.max(1, Math.min(16, batchBytes / segmentSize));
    }

    /** A direct buffer and its id in Python ({@code 0} when addresses are unavailable). */
    static final class Registered {
        final ByteBuffer buffer;
        final long id;
        /** {@link System#nanoTime()} when it was last given back to the pool. */
        long idleSince;

        Registered(ByteBuffer buffer, long id) {
            this.buffer = buffer;
            this.id = id;
        }
    }

    private static final long ADDRESS_OFFSET = PrivateFields.offset(java.nio.Buffer.class, "address");

    private final PythonBridge bridge;
    private final boolean zeroCopy;
    private final long idleNanos;
    private final Map<Integer, ConcurrentLinkedDeque<Registered>> pools = new ConcurrentHashMap<>();
    private final Map<Integer, AtomicInteger> pooled = new ConcurrentHashMap<>();

    NativeBuffers(PythonBridge bridge, boolean zeroCopy) {
        this(bridge, zeroCopy, IDLE_NANOS);
    }

    /** With buffers freed after {@code idleNanos} unused (tests shorten it). */
    NativeBuffers(PythonBridge bridge, boolean zeroCopy, long idleNanos) {
        this.bridge = bridge;
        this.zeroCopy = zeroCopy && ADDRESS_OFFSET >= 0;
        this.idleNanos = idleNanos;
        Trimmer.watch(this, Math.max(1, idleNanos / 2));
    }

    /** Whether segments cross by address (true) or as copied byte arrays (false). */
    boolean zeroCopy() {
        return zeroCopy;
    }

    static long address(ByteBuffer b) {
        long a = b.isDirect() ? PrivateFields.getLong(b, ADDRESS_OFFSET) : 0;
        return Math.max(0, a);
    }

    Registered take(int capacity) throws IOException {
        Registered r = pool(capacity).pollFirst();
        if (r != null) {
            pooled.get(capacity).decrementAndGet();
            r.buffer.clear();
            return r;
        }
        ByteBuffer b = allocate(capacity);
        if (b == null && trim(System.nanoTime(), 0) > 0) { // the limit is reached: free the pool, try again
            b = allocate(capacity); // (the JDK collects the dropped buffers as it retries)
        }
        if (b == null) {
            throw new DirectMemoryExhausted(capacity);
        }
        long id = 0;
        if (zeroCopy) {
            long addr = address(b);
            if (addr == 0) {
                throw new IOException("heliosdb crypto: no native address for a direct buffer");
            }
            id = (Long) bridge.call("register", addr, capacity);
        }
        return new Registered(b, id);
    }

    void give(Registered r) {
        if (r == null) {
            return;
        }
        int capacity = r.buffer.capacity();
        r.idleSince = System.nanoTime();
        AtomicInteger count = pooled.computeIfAbsent(capacity, k -> new AtomicInteger());
        if (count.incrementAndGet() <= MAX_POOLED_PER_SIZE) {
            pool(capacity).addFirst(r);
            return;
        }
        count.decrementAndGet();
        if (!forget(r)) { // kept with the others given back just now: trim tries it again in its turn
            pool(capacity).addFirst(r);
            count.incrementAndGet();
        }
    }

    /** A direct buffer, or null when the JVM's direct memory limit is reached. */
    private static ByteBuffer allocate(int capacity) {
        try {
            return ByteBuffer.allocateDirect(capacity);
        } catch (OutOfMemoryError e) {
            return null;
        }
    }

    /**
     * Frees the pooled buffers unused for {@code minIdleNanos} or longer at {@code now} (every one
     * for 0); returns how many. The oldest sit at the end of each pool.
     */
    int trim(long now, long minIdleNanos) {
        int freed = 0;
        for (Map.Entry<Integer, ConcurrentLinkedDeque<Registered>> e : pools.entrySet()) {
            ConcurrentLinkedDeque<Registered> pool = e.getValue();
            AtomicInteger count = pooled.get(e.getKey());
            for (Registered r; (r = pool.pollLast()) != null; ) {
                if (now - r.idleSince < minIdleNanos) {
                    pool.addLast(r); // the oldest of this pool is recent: so are the others
                    break;
                }
                count.decrementAndGet();
                if (!forget(r)) {
                    pool.addLast(r);
                    count.incrementAndGet();
                    return freed;
                }
                freed++;
            }
        }
        return freed;
    }

    /** Bytes of the buffers in the pool. */
    long pooledBytes() {
        long n = 0;
        for (ConcurrentLinkedDeque<Registered> pool : pools.values()) {
            for (Registered r : pool) {
                n += r.buffer.capacity();
            }
        }
        return n;
    }

    /** Makes Python forget {@code r}'s memory before it is dropped; false (keep it alive rather than
     *  free it under Python) if that failed. */
    private boolean forget(Registered r) {
        if (r.id == 0) {
            return true;
        }
        try {
            bridge.call("unregister", r.id);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** The daemon thread that frees idle buffers, for every NativeBuffers still in use (weakly held). */
    private static final class Trimmer {
        private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "heliosdb-crypto-buffer-trim");
            t.setDaemon(true);
            return t;
        });

        static void watch(NativeBuffers buffers, long periodNanos) {
            WeakReference<NativeBuffers> ref = new WeakReference<>(buffers);
            AtomicReference<ScheduledFuture<?>> task = new AtomicReference<>();
            task.set(TIMER.scheduleWithFixedDelay(() -> {
                NativeBuffers b = ref.get();
                if (b == null) {
                    ScheduledFuture<?> f = task.get();
                    if (f != null) {
                        f.cancel(false);
                    }
                    return;
                }
                try {
                    b.trim(System.nanoTime(), b.idleNanos);
                } catch (RuntimeException e) {
                    // a failed unregister keeps its buffer; the next round tries again
                }
            }, periodNanos, periodNanos, TimeUnit.NANOSECONDS));
        }
    }

    /** The JVM's direct memory limit is reached (raise taskmanager.memory.framework.off-heap.size). */
    static final class DirectMemoryExhausted extends IOException {
        private static final long serialVersionUID = 1L;

        DirectMemoryExhausted(int capacity) {
            super("heliosdb crypto: no direct memory for a buffer of " + capacity + " bytes; raise "
                    + "taskmanager.memory.framework.off-heap.size (jobmanager.memory.off-heap.size)");
        }
    }

    private ConcurrentLinkedDeque<Registered> pool(int capacity) {
        pooled.computeIfAbsent(capacity, k -> new AtomicInteger());
        return pools.computeIfAbsent(capacity, k -> new ConcurrentLinkedDeque<>());
    }
}

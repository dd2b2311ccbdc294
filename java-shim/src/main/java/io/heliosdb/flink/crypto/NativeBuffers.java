package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Reusable direct ByteBuffers registered once with Python by native address, so that segment calls
 * pass only ints and Python encrypts straight into Java memory.
 *
 * <p>The address is read without {@code --add-exports java.base/sun.nio.ch}: through
 * {@code sun.misc.Unsafe} (module jdk.unsupported, open to everyone) at the offset of
 * {@code java.nio.Buffer.address}, as Netty does. If that is unavailable the streams fall back to
 * copying byte arrays through pemja (slower, same bytes).
 *
 * <p>Buffers live in a bounded pool per capacity; one that does not fit back in the pool is
 * unregistered in Python before it is dropped, so Python never holds a view of freed memory.
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
     * {@code heliosdb.crypto.write-batch-bytes}, default 1 MiB). Smaller than reads: a written
     * batch is copied in by Flink's thread, then sealed and written out by a worker, and 1 MiB keeps
     * it in the CPU caches on the way (4 MiB batches cost more CPU per GiB, docs/performance.md).
     */
    static final int WRITE_BATCH_BYTES = Integer.getInteger("heliosdb.crypto.write-batch-bytes", 1 << 20);

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

        Registered(ByteBuffer buffer, long id) {
            this.buffer = buffer;
            this.id = id;
        }
    }

    private static final Object UNSAFE;
    private static final long ADDRESS_OFFSET;
    private static final java.lang.reflect.Method GET_LONG;

    static {
        Object unsafe = null;
        long offset = -1;
        java.lang.reflect.Method getLong = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            Field address = Buffer.class.getDeclaredField("address");
            offset = (long) c.getMethod("objectFieldOffset", Field.class).invoke(unsafe, address);
            getLong = c.getMethod("getLong", Object.class, long.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            unsafe = null;
        }
        UNSAFE = unsafe;
        ADDRESS_OFFSET = offset;
        GET_LONG = getLong;
    }

    private final PythonBridge bridge;
    private final boolean zeroCopy;
    private final Map<Integer, ConcurrentLinkedQueue<Registered>> pools = new ConcurrentHashMap<>();
    private final Map<Integer, AtomicInteger> pooled = new ConcurrentHashMap<>();

    NativeBuffers(PythonBridge bridge, boolean zeroCopy) {
        this.bridge = bridge;
        this.zeroCopy = zeroCopy && UNSAFE != null;
    }

    /** Whether segments cross by address (true) or as copied byte arrays (false). */
    boolean zeroCopy() {
        return zeroCopy;
    }

    static long address(ByteBuffer b) {
        if (UNSAFE == null || !b.isDirect()) {
            return 0;
        }
        try {
            return (long) GET_LONG.invoke(UNSAFE, b, ADDRESS_OFFSET);
        } catch (ReflectiveOperationException e) {
            return 0;
        }
    }

    Registered take(int capacity) throws IOException {
        Registered r = pool(capacity).poll();
        if (r != null) {
            pooled.get(capacity).decrementAndGet();
            r.buffer.clear();
            return r;
        }
        ByteBuffer b;
        try {
            b = ByteBuffer.allocateDirect(capacity);
        } catch (OutOfMemoryError e) {
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
        AtomicInteger count = pooled.computeIfAbsent(capacity, k -> new AtomicInteger());
        if (count.incrementAndGet() <= MAX_POOLED_PER_SIZE) {
            pool(capacity).add(r);
            return;
        }
        count.decrementAndGet();
        if (r.id != 0) {
            try {
                bridge.call("unregister", r.id);
            } catch (IOException e) {
                // Python could not forget the view: keep the memory alive rather than free it under it.
                pool(capacity).add(r);
                count.incrementAndGet();
            }
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

    private ConcurrentLinkedQueue<Registered> pool(int capacity) {
        pooled.computeIfAbsent(capacity, k -> new AtomicInteger());
        return pools.computeIfAbsent(capacity, k -> new ConcurrentLinkedQueue<>());
    }
}

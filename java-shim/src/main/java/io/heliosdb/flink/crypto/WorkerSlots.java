package io.heliosdb.flink.crypto;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Which written streams hand their sealed batches to a worker thread; by default none. A worker lets a
 * stream written alone take less time (Flink's thread seals the next batch while a worker writes the
 * last: less time than {@code file://} on tmpfs), but every sealed byte then moves to the other core,
 * which costs more CPU than the sealing itself saves (docs/performance.md); streams written side by
 * side (RocksDB uploads four files at once) already keep the cores busy, and a worker only queues them
 * behind each other while a running job's own threads wait for a core. So at most {@link #limit}
 * streams at a time hold a slot (JVM property, 0 by default); the others write their own sealed
 * segments on the calling thread, as {@code file://} writes its bytes. Knows nothing of Python or Flink.
 */
final class WorkerSlots {

    /** The process's slots (JVM property {@code heliosdb.crypto.worker-streams}, 0-64, default 0). */
    static final WorkerSlots SHARED = new WorkerSlots(
            Math.max(0, Math.min(64, Integer.getInteger("heliosdb.crypto.worker-streams", 0))));

    private volatile int limit;
    private final AtomicInteger held = new AtomicInteger();

    WorkerSlots(int limit) {
        this.limit = limit;
    }

    /** A slot, if one is free: the caller gives it back ({@link #give}) when its stream ends. */
    boolean take() {
        for (int n = held.get(); n < limit; n = held.get()) {
            if (held.compareAndSet(n, n + 1)) {
                return true;
            }
        }
        return false;
    }

    void give() {
        held.decrementAndGet();
    }

    /** Sets the number of slots (tests: the worker path; streams holding one keep it). */
    void limit(int n) {
        limit = n;
    }

    /** The number of slots. */
    int limit() {
        return limit;
    }

    /** Slots held now. */
    int held() {
        return held.get();
    }
}

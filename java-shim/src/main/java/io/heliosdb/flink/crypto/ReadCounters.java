package io.heliosdb.flink.crypto;

import java.util.concurrent.atomic.LongAdder;

/**
 * What the JVM's encrypted input streams decrypted against what their callers read: plaintext bytes
 * authenticated and decrypted (whole segments) and plaintext bytes handed out. Their quotient is the
 * read amplification of random access (a 4 KiB block read out of a 1 MiB segment decrypts 256 times
 * what it returns); bench/forst_bench.py reports it. Counting only: never read by the streams.
 */
final class ReadCounters {

    private static final LongAdder DECRYPTED = new LongAdder();
    private static final LongAdder DELIVERED = new LongAdder();
    private static final LongAdder OPENED = new LongAdder();
    private static final LongAdder CALLS = new LongAdder();

    private ReadCounters() {
    }

    static void decrypted(long bytes) {
        DECRYPTED.add(bytes);
    }

    static void delivered(long bytes) {
        DELIVERED.add(bytes);
    }

    /** A stream opened a file (its header authenticated: one Python call). */
    static void opened() {
        OPENED.increment();
    }

    /** One Python call decrypted segments. */
    static void call() {
        CALLS.increment();
    }

    /** {decrypted, delivered, files opened, decrypting calls} since the JVM started. */
    static long[] snapshot() {
        return new long[] {DECRYPTED.sum(), DELIVERED.sum(), OPENED.sum(), CALLS.sum()};
    }
}

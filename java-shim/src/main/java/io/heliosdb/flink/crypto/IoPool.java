package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Background threads for the streams' inner I/O: a sealed batch is written to the inner stream, or
 * the next window is fetched from it, while the caller (Flink serializing or deserializing state)
 * goes on. Each stream has at most one task in flight, and its own calls wait for that task before
 * touching the inner stream, so an inner stream is never used by two threads at once.
 * Daemon threads, made on demand and ended after a minute idle.
 */
final class IoPool {

    interface Task<T> {
        T run() throws IOException;
    }

    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "heliosdb-crypto-io-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    private IoPool() {
    }

    /** An inner stream's failure, saying which encrypted file it hit (the inner message kept). */
    static IOException naming(String path, String what, IOException e) {
        String m = String.valueOf(e.getMessage());
        return m.contains(path) ? e : new IOException(path + ": " + what + " the inner file failed: " + m, e);
    }

    static <T> Future<T> submit(Task<T> task) {
        return POOL.submit(task::run);
    }

    /**
     * The task's result; its failure as an IOException. Never abandons the task (it may still be
     * writing the caller's buffers or using the inner stream): an interrupt is kept for later.
     */
    static <T> T await(Future<T> f) throws IOException {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return f.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof IOException) {
                        throw (IOException) c;
                    }
                    if (c instanceof RuntimeException) {
                        throw (RuntimeException) c;
                    }
                    if (c instanceof Error) {
                        throw (Error) c;
                    }
                    throw new IOException(String.valueOf(c), c);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}

package io.heliosdb.flink.crypto.lib;

import pemja.core.PythonInterpreter;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The lib jar's only pemja caller: ONE worker thread owning ONE {@link PythonInterpreter} (made on
 * that thread, used only there: an interpreter caches its thread's JNIEnv), calling ONE function,
 * {@code heliosdb_flink_crypto.flink.hooks.dispatch(op, *args)} (pemja's {@code invoke} can crash
 * the JVM when an interpreter alternates between function names).
 *
 * <p>pemja runs one CPython per JVM and is loaded once, from {@code lib/} (parent-first), so this
 * interpreter shares {@code sys.modules} with the FileSystem plugin's: the hooks' sessions, metrics
 * registry and tenant router are the same objects. Calls are rare (a metrics refresh per second, a
 * tenant check per restore): one thread is plenty.
 */
final class LibPython {

    static final String ENTRY = io.heliosdb.flink.crypto.PythonLaunch.ENTRY;
    static String toJson(Map<String, String> conf) {
        return io.heliosdb.flink.crypto.PythonLaunch.toJson(conf);
    }

    static final String PYTHON_KEY = io.heliosdb.flink.crypto.CryptoOptions.PYTHON_EXECUTABLE.key();

    private static final Object LOCK = new Object();
    private static volatile LibPython instance;

    private final String pythonExec;
    private final ExecutorService worker;
    /** Worker thread only. */
    private PythonInterpreter interpreter;
    /** Worker thread only: why Python could not start, and when (retried at most once per {@link #RETRY_NANOS}). */
    private Exception startFailure;
    private long startFailedAt;
    static final long RETRY_NANOS = TimeUnit.SECONDS.toNanos(60);

    LibPython(String pythonExec) {
        this.pythonExec = pythonExec;
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "heliosdb-crypto-lib-python");
            t.setDaemon(true);
            return t;
        });
    }

    /** The JVM's (classloader's) instance; the first caller's Python executable wins (one CPython per JVM). */
    static LibPython get(Map<String, String> conf) {
        LibPython p = instance;
        if (p != null) {
            return p;
        }
        synchronized (LOCK) {
            if (instance == null) {
                instance = new LibPython(conf.getOrDefault(PYTHON_KEY, "python3"));
            }
            return instance;
        }
    }

    /** Starts {@code dispatch(op, *args)} on the worker (Python starts at the first call). */
    Future<Object> submit(String op, Object... args) {
        Object[] all = new Object[args.length + 1];
        all[0] = op;
        System.arraycopy(args, 0, all, 1, args.length);
        return worker.submit(() -> {
            if (interpreter == null) {
                if (startFailure != null && System.nanoTime() - startFailedAt < RETRY_NANOS) {
                    throw startFailure; // no new Python process every second when it cannot start
                }
                try {
                    interpreter = io.heliosdb.flink.crypto.PythonLaunch.open(
                            io.heliosdb.flink.crypto.PythonLaunch.config(pythonExec));
                    startFailure = null;
                } catch (Exception e) {
                    startFailure = e;
                    startFailedAt = System.nanoTime();
                    throw e;
                }
            }
            return interpreter.invoke(ENTRY, all);
        });
    }

    /** {@code dispatch(op, *args)}, waiting at most {@code timeoutMillis}; Python errors become IOExceptions. */
    Object call(long timeoutMillis, String op, Object... args) throws IOException {
        Future<Object> f = submit(op, args);
        try {
            return f.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw translate(e.getCause());
        } catch (TimeoutException e) {
            throw new IOException("heliosdb crypto: Python (" + pythonExec + ") did not answer " + op
                    + " within " + timeoutMillis + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for Python (" + op + ")");
        }
    }

    /** A pemja call's failure as callers see it ({@link io.heliosdb.flink.crypto.PythonErrors}). */
    static IOException translate(Throwable t) {
        return io.heliosdb.flink.crypto.PythonErrors.translate(t);
    }

    /** The {@code heliosdb.crypto.*} entries of a Flink configuration (what Python validates). */
    static Map<String, String> cryptoConf(Map<String, String> flinkConf) {
        Map<String, String> out = new TreeMap<>();
        for (Map.Entry<String, String> e : flinkConf.entrySet()) {
            if (e.getKey().startsWith("heliosdb.crypto.")) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }
}

package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Python on the calling thread, for the short synchronous calls of positional reads (ForSt's block
 * reads: one segment or a few): a hand-off to a {@link PythonBridge} worker and back costs two thread
 * wake-ups (8-11 us per call measured on an idle 2-core VM, tens of us when it is busy) against 0.6 us
 * for the pemja call itself, and a block read through the bridge took 20-45 us where Flink's local file
 * system takes 1.2 us.
 *
 * <p>Each thread gets its own {@link PythonInterpreter}, made on that thread and used only there (an
 * interpreter keeps its creating thread's JNIEnv), calling the one entry function like the bridge's
 * workers (pemja misbehaves when an interpreter alternates between function names). Interpreters are
 * never closed (a thread's interpreter lives as long as the JVM; ForSt and Flink read from pools of
 * long-lived threads); past {@link #MAX_THREADS} threads, calls go through the bridge. JVM system
 * property {@code heliosdb.crypto.caller-python=false} sends every call through the bridge.
 */
final class CallerPython {

    static final boolean ENABLED = !"false".equals(System.getProperty("heliosdb.crypto.caller-python"));
    static final int MAX_THREADS = 64;

    private static final ThreadLocal<PythonInterpreter> HERE = new ThreadLocal<>();
    private static final AtomicInteger THREADS = new AtomicInteger();
    private static volatile PythonInterpreterConfig config;

    private CallerPython() {
    }

    /** {@code dispatch(op, *args)} on this thread's interpreter (made on the first call), or through
     *  {@code bridge} once {@link #MAX_THREADS} threads have one or when this path is off. */
    static Object call(PythonBridge bridge, String pythonExec, String op, Object... args) throws IOException {
        PythonInterpreter p = ENABLED ? here(pythonExec) : null;
        if (p == null) {
            return bridge.call(op, args);
        }
        Object[] all = new Object[args.length + 1];
        all[0] = op;
        System.arraycopy(args, 0, all, 1, args.length);
        try {
            return p.invoke(PythonBridge.ENTRY, all);
        } catch (Throwable e) { // pemja's PythonException is checked, yet not declared
            throw PythonBridge.translate(e);
        }
    }

    /** Threads that have an interpreter of their own. */
    static int threads() {
        return Math.min(THREADS.get(), MAX_THREADS);
    }

    private static PythonInterpreter here(String pythonExec) throws IOException {
        PythonInterpreter p = HERE.get();
        if (p != null) {
            return p;
        }
        if (THREADS.incrementAndGet() > MAX_THREADS) {
            THREADS.decrementAndGet();
            return null;
        }
        if (config == null) {
            config = PythonLaunch.config(pythonExec);
        }
        p = PythonLaunch.open(config);
        HERE.set(p);
        return p;
    }
}

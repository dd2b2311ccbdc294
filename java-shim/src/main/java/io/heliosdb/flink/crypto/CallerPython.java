package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;

/**
 * Python on the calling thread, for the synchronous calls of the streams: sealing a written batch,
 * opening a local file's segments, positional reads (ForSt's block reads: one segment or a few). A
 * hand-off to a {@link PythonBridge} worker and back costs two thread wake-ups (8-11 us per call
 * measured on an idle 2-core VM, tens of us when it is busy) against 0.6 us for the pemja call itself
 * (a block read through the bridge took 20-45 us where Flink's local file system takes 1.2 us), and
 * moves the bytes the caller just touched to another core (docs/performance.md).
 *
 * <p>Each thread gets its own {@link PythonInterpreter}, made on that thread and used only there (an
 * interpreter keeps its creating thread's JNIEnv), calling the one entry function like the bridge's
 * workers (pemja misbehaves when an interpreter alternates between function names). An interpreter
 * cannot be closed from another thread, so one whose thread ended stays (a Python thread state: about
 * 20 KiB of resident memory, bench/caller_python_bench.py): at most {@link #MAX_LIVE} threads hold one
 * at a time and {@link #MAX_TOTAL} are ever made per JVM (a job restart brings new task threads); past
 * either, calls go through the bridge. JVM system property {@code heliosdb.crypto.caller-python=false}
 * sends every call through the bridge.
 */
final class CallerPython {

    static final boolean ENABLED = !"false".equals(System.getProperty("heliosdb.crypto.caller-python"));
    static final int MAX_LIVE = 64;
    static final int MAX_TOTAL = 1024;

    /** This thread's interpreter, or {@link #REFUSED} (it asked past a limit: the bridge, for good). */
    private static final ThreadLocal<Object> HERE = new ThreadLocal<>();
    private static final Object REFUSED = new Object();
    private static final List<WeakReference<Thread>> OWNERS = new ArrayList<>(); // guarded by the class
    private static int made; // guarded by the class

    private CallerPython() {
    }

    /** {@code dispatch(op, *args)} on this thread's interpreter (made on the first call), or through
     *  {@code bridge} past the limits or when this path is off. */
    static Object call(PythonBridge bridge, String op, Object... args) throws IOException {
        PythonInterpreter p = ENABLED ? here(bridge) : null;
        if (p == null) {
            return bridge.call(op, args);
        }
        Object[] all = new Object[args.length + 1];
        all[0] = op;
        System.arraycopy(args, 0, all, 1, args.length);
        try {
            return p.invoke(PythonBridge.ENTRY, all);
        } catch (Throwable e) { // pemja's PythonException is checked, yet not declared
            throw PythonErrors.translate(e);
        }
    }

    /** Whether this thread calls Python itself (its interpreter made now if it may have one); if not,
     *  its calls go through the bridge's workers, a hand-off each. */
    static boolean onThisThread(PythonBridge bridge) {
        return ENABLED && here(bridge) != null;
    }

    /** Interpreters made so far (threads that called Python themselves). */
    static synchronized int made() {
        return made;
    }

    /** Threads alive that hold an interpreter. */
    static synchronized int live() {
        prune();
        return OWNERS.size();
    }

    private static PythonInterpreter here(PythonBridge bridge) {
        Object p = HERE.get();
        if (p == null) {
            p = REFUSED;
            if (admit()) {
                try {
                    p = bridge.launch.open(); // the bridge's Python, started as it starts it (or its failure remembered)
                } catch (IOException | RuntimeException e) {
                    // no interpreter here: the bridge's workers make the calls (and report any error)
                }
            }
            HERE.set(p);
        }
        return p == REFUSED ? null : (PythonInterpreter) p;
    }

    /** Whether this thread may make an interpreter (below both limits); counts it if so. */
    private static synchronized boolean admit() {
        prune();
        if (OWNERS.size() >= MAX_LIVE || made >= MAX_TOTAL) {
            return false;
        }
        OWNERS.add(new WeakReference<>(Thread.currentThread()));
        made++;
        return true;
    }

    private static void prune() {
        OWNERS.removeIf(r -> {
            Thread t = r.get();
            return t == null || !t.isAlive();
        });
    }
}

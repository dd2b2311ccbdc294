package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The only class that calls pemja. One CPython per JVM (pemja's rule), reached through a pool of
 * worker threads that each own one {@link PythonInterpreter} for their whole life (an interpreter
 * caches its creating thread's JNIEnv). Every call goes through ONE Python function,
 * {@code heliosdb_flink_crypto.flink.hooks.dispatch(op, *args)}: pemja's {@code invoke} misbehaves
 * when an interpreter alternates between function names.
 *
 * <p>Arguments are ints, strings and byte arrays; segment data never crosses as an argument on the
 * fast path: buffers are registered once by native address and named by id.
 *
 * <p>Hand-off: the caller parks until its call is answered. {@link #SPIN_NANOS} (system property
 * {@code heliosdb.crypto.spin-nanos}, default 0) lets it spin first: that saves a wake-up on idle
 * machines and costs throughput on busy ones (measured on 2 shared cores). Idle workers park.
 */
final class PythonBridge {

    static final String ENTRY = PythonLaunch.ENTRY;

    /** Worker threads (JVM property {@code heliosdb.crypto.python-workers}, 1-16; default one per
     *  core, at most 8). */
    static final int WORKERS = Math.max(1, Math.min(16, Integer.getInteger("heliosdb.crypto.python-workers",
            Math.min(8, Runtime.getRuntime().availableProcessors()))));
    static final long SPIN_NANOS = Long.getLong("heliosdb.crypto.spin-nanos", 0L);

    private static final Object LOCK = new Object();
    private static volatile PythonBridge instance;

    /** Java work done on the worker just before a call: reads its input, returns its arguments. */
    interface Before {
        Object[] args() throws IOException;
    }

    /** Java work done on the worker with a call's result (e.g. writing what Python sealed). */
    interface After {
        Object apply(Object result) throws IOException;

        /** On the worker, when the call failed before {@link #apply} (its error is the call's too). */
        default void failed(Throwable error) {
        }
    }

    /** One call in flight: arguments in, result or error out; or a Java task run on a worker. */
    static final class Call {
        Object[] args;
        final Before before;
        final After after;
        final Runnable task;
        private volatile boolean done;
        private volatile Thread waiter;
        private Object result;
        private Throwable error;

        Call(Object[] args, Before before, After after) {
            this(args, before, after, null);
        }

        private Call(Object[] args, Before before, After after, Runnable task) {
            this.args = args;
            this.before = before;
            this.after = after;
            this.task = task;
        }

        void complete(Object r, Throwable e) {
            result = r;
            error = e;
            done = true;
            Thread w = waiter;
            if (w != null) {
                LockSupport.unpark(w);
            }
        }

        /** Waits (spinning first) until Python has answered; never abandons the call, since Python
         *  may be writing into the caller's buffers. */
        Object await(String op) throws IOException {
            boolean interrupted = false;
            long deadline = System.nanoTime() + SPIN_NANOS;
            while (!done) {
                if (System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                    continue;
                }
                waiter = Thread.currentThread();
                if (!done) {
                    LockSupport.park(this);
                    interrupted |= Thread.interrupted();
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            if (error != null) {
                throw PythonErrors.translate(error);
            }
            return result;
        }
    }

    private final PythonInterpreterConfig config;
    private final LinkedBlockingQueue<Call> queue = new LinkedBlockingQueue<>();
    /** Calls submitted and not yet answered (some, such as "finish", are not waited for). */
    private final java.util.concurrent.atomic.AtomicInteger unanswered = new java.util.concurrent.atomic.AtomicInteger();

    private PythonBridge(String pythonExec, int threads) throws IOException {
        this.config = PythonLaunch.config(pythonExec);
        List<Thread> started = new ArrayList<>();
        for (int i = 1; i <= threads; i++) {
            Thread t = new Worker(this, "heliosdb-crypto-python-" + i);
            t.setDaemon(true);
            t.start();
            started.add(t);
        }
        Thread drain = new Thread(() -> {
            // calls nobody waits for (a finished file's audit event) still run before the JVM exits
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (unanswered.get() > 0 && System.nanoTime() < deadline) {
                LockSupport.parkNanos(1_000_000);
            }
        }, "heliosdb-crypto-drain");
        try {
            Object version = call("ping"); // fail now, not at the first checkpoint
            if (!(version instanceof String)) {
                throw new IOException("heliosdb_flink_crypto did not answer through " + pythonExec);
            }
        } catch (IOException | RuntimeException e) {
            started.forEach(Thread::interrupt); // a later attempt starts afresh; no threads left behind
            throw e;
        }
        Runtime.getRuntime().addShutdownHook(drain);
    }

    /** The JVM's bridge; the first caller's Python executable wins (one CPython per JVM). */
    static PythonBridge get(String pythonExec) throws IOException {
        PythonBridge b = instance;
        if (b != null) {
            return b;
        }
        synchronized (LOCK) {
            if (instance == null) {
                instance = new PythonBridge(pythonExec, WORKERS);
            }
            return instance;
        }
    }

    /** A worker thread: owns one interpreter, made on this thread and used only here. */
    private static final class Worker extends Thread {
        final PythonBridge bridge;
        PythonInterpreter py;

        Worker(PythonBridge bridge, String name) {
            super(name);
            this.bridge = bridge;
        }

        @Override
        public void run() {
            try {
                bridge.work(this);
            } finally {
                if (py != null) {
                    py.close();
                }
            }
        }

        Object invoke(Object[] args) {
            if (py == null) {
                py = PythonLaunch.open(bridge.config);
            }
            return py.invoke(ENTRY, args);
        }
    }

    private void work(Worker w) {
        try {
            while (true) {
                Call c = queue.take();
                Object r = null;
                Throwable err = null;
                try {
                    if (c.task != null) {
                        c.task.run();
                    } else {
                        if (c.before != null) {
                            c.args = withOp((String) c.args[0], c.before.args());
                        }
                        r = w.invoke(c.args);
                    }
                } catch (Throwable t) {
                    err = t;
                    if (c.after != null) {
                        c.after.failed(t);
                    }
                }
                if (err == null && c.after != null) {
                    try {
                        r = c.after.apply(r);
                    } catch (Throwable t) {
                        err = t;
                    }
                }
                c.complete(r, err);
                unanswered.decrementAndGet();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Runs {@code dispatch(op, *args)} on a worker; Python errors become IOExceptions. On a worker
     *  (in a task, see {@link #execute}) it runs right there, without a hand-off. */
    Object call(String op, Object... args) throws IOException {
        Thread t = Thread.currentThread();
        if (t instanceof Worker && ((Worker) t).bridge == this) {
            try {
                return ((Worker) t).invoke(withOp(op, args));
            } catch (RuntimeException | Error e) {
                throw PythonErrors.translate(e);
            }
        }
        return submit(op, args).await(op);
    }

    /** Runs {@code task} on a worker (after the calls queued before it); its {@link #call}s run on
     *  that worker's interpreter directly. Not waited for: the task reports its own outcome. */
    void execute(Runnable task) {
        enqueue(new Call(null, null, null, task));
    }

    /** Starts {@code dispatch(op, *args)} on a worker; {@link Call#await} gives its result. */
    Call submit(String op, Object... args) {
        return enqueue(new Call(withOp(op, args), null, null));
    }

    /**
     * Starts, on a worker: {@code before} (Java work that yields the arguments, e.g. reading the
     * input from the inner stream), {@code dispatch(op, *args)}, then {@code after} on its result
     * (e.g. writing the output to the inner stream). The worker threads are the bridge's own (never
     * interrupted), and the steps need no further hand-off; their IOExceptions are the call's.
     */
    Call submit(Before before, String op, After after) {
        return enqueue(new Call(new Object[] {op}, before, after));
    }

    private Call enqueue(Call c) {
        unanswered.incrementAndGet();
        queue.add(c);
        return c;
    }

    private static Object[] withOp(String op, Object[] args) {
        Object[] all = new Object[args.length + 1];
        all[0] = op;
        System.arraycopy(args, 0, all, 1, args.length);
        return all;
    }
}

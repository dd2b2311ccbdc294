package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The one pemja bridge of both jars (the plugin's streams, the lib jar's gauges and tenant guard; each
 * jar loads its own copy of this class, so a JVM with both has one bridge per jar). One CPython per
 * JVM (pemja's rule), reached through a pool of worker threads that each own one
 * {@link PythonInterpreter} for their whole life (an interpreter caches its creating thread's JNIEnv).
 * Every call goes through ONE Python function, {@code heliosdb_flink_crypto.flink.hooks.dispatch(op,
 * *args)}: pemja's {@code invoke} misbehaves when an interpreter alternates between function names.
 * Python's errors come back as {@link PythonErrors#translate} types them.
 *
 * <p>Python starts at the first call, on a worker ({@link #get} waits for it: the plugin fails at
 * once, not at the first checkpoint; {@link #shared} does not: the lib's metrics never block on it).
 * A Python that cannot start fails every call with the same error for {@link PythonLaunch#RETRY_NANOS}, then is
 * tried again; one whose package cannot be used (another bridge protocol, hooks that fail to import)
 * fails every call with the same error until the process restarts ({@link PythonLaunch#open()}).
 *
 * <p>Arguments are ints, strings and byte arrays; segment data never crosses as an argument on the
 * fast path: buffers are registered once by native address and named by id.
 *
 * <p>Hand-off: the caller parks until its call is answered. {@link #SPIN_NANOS} (system property
 * {@code heliosdb.crypto.spin-nanos}, default 0) lets it spin first: that saves a wake-up on idle
 * machines and costs throughput on busy ones (measured on 2 shared cores). Idle workers park.
 */
public final class PythonBridge {

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

    private final LinkedBlockingQueue<PythonCall> queue = new LinkedBlockingQueue<>();
    /** Calls submitted and not yet answered (some, such as "finish", are not waited for). */
    private final AtomicInteger unanswered = new AtomicInteger();
    private final List<Thread> workers = new ArrayList<>(); // guarded by this
    private volatile boolean answered;
    final PythonLaunch launch; // its workers and the callers' own interpreters start here

    PythonBridge(String pythonExec) {
        this.launch = new PythonLaunch(pythonExec);
    }

    /** The lib jar's bridge (one worker is plenty for a metrics refresh a second and a tenant check
     *  per restore): the Python of {@code conf}'s {@code heliosdb.crypto.python.executable}. */
    public static PythonBridge shared(Map<String, String> conf) {
        return shared(executable(conf), 1);
    }

    /** The Python executable {@code conf} names (its default if none). */
    public static String executable(Map<String, String> conf) {
        return conf.getOrDefault(CryptoOptions.PYTHON_EXECUTABLE.key(), CryptoOptions.PYTHON_EXECUTABLE.defaultValue());
    }

    /** The plugin's bridge: {@link #shared} with {@link #WORKERS} workers, its Python started and
     *  answering (or the reason it does not, e.g. the executable cannot import the package). */
    static PythonBridge get(String pythonExec) throws IOException {
        PythonBridge b = shared(pythonExec, WORKERS);
        b.ping();
        return b;
    }

    /**
     * The JVM's (this class loader's) bridge, with at least {@code workers} worker threads; Python
     * starts at its first call. The first caller's Python executable wins (one CPython per JVM),
     * unless that one could not start.
     */
    public static PythonBridge shared(String pythonExec, int workers) {
        synchronized (LOCK) {
            if (instance == null) {
                instance = new PythonBridge(pythonExec);
                Runtime.getRuntime().addShutdownHook(new Thread(instance::drain, "heliosdb-crypto-drain"));
            }
            instance.use(pythonExec);
            instance.ensureWorkers(workers);
            return instance;
        }
    }

    /** Starts {@code exec} instead, if the Python asked for first could not start. */
    void use(String exec) {
        launch.use(exec);
    }

    /** Starts worker threads until there are {@code n} (at most 16). */
    synchronized PythonBridge ensureWorkers(int n) {
        while (workers.size() < Math.min(n, 16)) {
            Thread t = new Worker(this, "heliosdb-crypto-python-" + (workers.size() + 1));
            t.setDaemon(true);
            t.start();
            workers.add(t);
        }
        return this;
    }

    /** Calls nobody waits for (a finished file's audit event) still run before the JVM exits. */
    private void drain() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (unanswered.get() > 0 && System.nanoTime() < deadline) {
            LockSupport.parkNanos(1_000_000);
        }
    }

    /** Fails unless Python answers (once it did, at once). */
    void ping() throws IOException {
        if (!answered) {
            if (!(call("ping") instanceof String)) {
                throw new IOException("heliosdb_flink_crypto did not answer through " + pythonExec());
            }
            answered = true;
        }
    }

    String pythonExec() {
        return launch.exec();
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

        Object invoke(Object[] args) throws IOException {
            if (py == null) {
                py = bridge.launch.open();
            }
            return py.invoke(ENTRY, args);
        }
    }

    private void work(Worker w) {
        try {
            while (true) {
                PythonCall c = queue.take();
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
            } catch (IOException e) {
                throw e;
            } catch (RuntimeException | Error e) {
                throw PythonErrors.translate(e);
            }
        }
        return submit(op, args).await(op);
    }

    /** Runs {@code task} on a worker (after the calls queued before it); its {@link #call}s run on
     *  that worker's interpreter directly. Not waited for: the task reports its own outcome. */
    void execute(Runnable task) {
        enqueue(new PythonCall(task));
    }

    /** {@code dispatch(op, *args)}, waiting at most {@code timeoutMillis} (the call itself still runs:
     *  for calls that write into no caller's buffer). */
    public Object call(long timeoutMillis, String op, Object... args) throws IOException {
        try {
            return submit(op, args).get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw (IOException) e.getCause();
        } catch (TimeoutException e) {
            throw new IOException("heliosdb crypto: Python (" + pythonExec() + ") did not answer " + op
                    + " within " + timeoutMillis + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for Python (" + op + ")");
        }
    }

    /** Starts {@code dispatch(op, *args)} on a worker; {@link PythonCall#await} or {@link PythonCall#get} gives its result. */
    public PythonCall submit(String op, Object... args) {
        return enqueue(new PythonCall(withOp(op, args), null, null));
    }

    /**
     * Starts, on a worker: {@code before} (Java work that yields the arguments, e.g. reading the
     * input from the inner stream), {@code dispatch(op, *args)}, then {@code after} on its result
     * (e.g. writing the output to the inner stream). The worker threads are the bridge's own (never
     * interrupted), and the steps need no further hand-off; their IOExceptions are the call's.
     */
    PythonCall submit(Before before, String op, After after) {
        return enqueue(new PythonCall(new Object[] {op}, before, after));
    }

    private PythonCall enqueue(PythonCall c) {
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

package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Starting the package's Python through pemja: which executable, the interpreter's import paths (asked
 * of it once), whether it could start, and the {@code configure} argument. One per {@link PythonBridge};
 * compiled into the plugin jar and the lib jar (each loads its own copy).
 */
public final class PythonLaunch {

    /** The one Python function both jars call: {@code heliosdb_flink_crypto.flink.hooks.dispatch}. */
    public static final String ENTRY = "heliosdb_dispatch";
    /** How long a Python that could not start is not tried again (its failure is every call's). */
    static final long RETRY_NANOS = TimeUnit.SECONDS.toNanos(60);

    // guarded by this: the Python to start, its pemja configuration once made, or why it could not be,
    // and why its package cannot be used (for good: see open())
    private String exec;
    private PythonInterpreterConfig config;
    private IOException failure;
    private long failedAt;
    private IOException refused;

    PythonLaunch(String exec) {
        this.exec = exec;
    }

    synchronized String exec() {
        return exec;
    }

    /** Starts {@code other} instead, if this one could not start. */
    synchronized void use(String other) {
        if (failure != null && !other.equals(exec)) {
            exec = other;
            failure = null;
        }
    }

    /** pemja's configuration of the Python to start (asked of it once); a start that failed is
     *  remembered for {@link #RETRY_NANOS}: no new Python process per call while it cannot start. */
    synchronized PythonInterpreterConfig config() throws IOException {
        if (config == null) {
            if (failure != null && System.nanoTime() - failedAt < RETRY_NANOS) {
                throw failure;
            }
            try {
                config = config(exec);
                failure = null;
            } catch (IOException e) {
                failure = e;
                failedAt = System.nanoTime();
                throw e;
            }
        }
        return config;
    }

    /** An interpreter on the calling thread ({@link #open(PythonInterpreterConfig)}) of this Python. A
     *  package that refused (another bridge protocol, hooks that fail to import) is refused for the
     *  process's life: every later call, on any thread, fails with the same error and makes no
     *  interpreter. The running CPython keeps the modules it imported, so only a restart (with the
     *  jars of the installed package) can mend it, and pemja may crash the JVM when an interpreter is
     *  made after one was closed on such a failure. */
    PythonInterpreter open() throws IOException {
        PythonInterpreterConfig c;
        synchronized (this) {
            if (refused != null) {
                throw refused;
            }
            c = config();
        }
        try {
            return open(c);
        } catch (IOException e) {
            synchronized (this) {
                refused = e;
            }
            throw e;
        }
    }

    /** pemja's configuration for {@code pythonExec}: its import paths, one CPython shared by threads. */
    public static PythonInterpreterConfig config(String pythonExec) throws IOException {
        return PythonInterpreterConfig.newBuilder()
                .setPythonExec(pythonExec)
                .addPythonPaths(pythonPaths(pythonExec).toArray(new String[0]))
                .setExcType(PythonInterpreterConfig.ExecType.MULTI_THREAD)
                .build();
    }

    /** An interpreter on the calling thread (keep it there) with {@link #ENTRY} imported, its package
     *  speaking this jar's bridge protocol ({@link #checkProtocol}): every thread that calls Python,
     *  the bridge's workers and callers alike, of both jars, starts here. */
    public static PythonInterpreter open(PythonInterpreterConfig config) throws IOException {
        PythonInterpreter p = new PythonInterpreter(config);
        try {
            p.exec("from heliosdb_flink_crypto.flink.hooks import dispatch as " + ENTRY);
            checkProtocol(ask(p, "protocol"), () -> String.valueOf(ask(p, "ping")), config.getPythonExec());
        } catch (Throwable e) { // pemja's PythonException is checked, yet not declared: close on it too
            p.close();
            if (e instanceof IOException) {
                throw (IOException) e;
            }
            if (e instanceof Error) {
                throw (Error) e;
            }
            throw new IOException("heliosdb crypto: " + config.getPythonExec()
                    + " cannot load heliosdb_flink_crypto.flink.hooks: " + PythonErrors.pythonMessage(String.valueOf(e.getMessage())), e);
        }
        return p;
    }

    /** {@code op}'s answer, or what it raised (a package from before the protocol had a version has
     *  no "protocol" operation). */
    private static Object ask(PythonInterpreter p, String op) {
        try {
            return p.invoke(ENTRY, op);
        } catch (Throwable e) { // pemja's PythonException is checked, yet not declared
            return e;
        }
    }

    /** {@code conf} as a JSON object of strings (the {@code configure} hook's argument). */
    public static String toJson(Map<String, String> conf) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, String> e : new TreeMap<>(conf).entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            quote(sb, e.getKey());
            sb.append(':');
            quote(sb, e.getValue());
        }
        return sb.append('}').toString();
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('"');
    }

    /** sys.path of the configured interpreter (its venv's site-packages), asked once. */
    public static List<String> pythonPaths(String exec) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(exec, "-c",
                "import os, sys, heliosdb_flink_crypto as m\n"
                        // an editable install is found through a .pth hook pemja does not run: name its root
                        + "print(os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))))\n"
                        + "for p in sys.path:\n    print(p)\n");
        pb.redirectErrorStream(true);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new IOException(CryptoOptions.PYTHON_EXECUTABLE.key() + ": cannot run " + exec + ": " + e.getMessage(), e);
        }
        List<String> out = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                all.append(line).append('\n');
                if (!line.isEmpty()) {
                    out.add(line);
                }
            }
        }
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IOException(CryptoOptions.PYTHON_EXECUTABLE.key() + ": " + exec
                        + " cannot import heliosdb_flink_crypto:\n" + all);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while starting " + exec);
        }
        return out;
    }

    /** Refuses a package whose bridge protocol ({@code answer} to "protocol", or the failure of that
     *  call) is not this jar's: a jar left from another install would otherwise misread buffers. */
    static void checkProtocol(Object answer, java.util.function.Supplier<String> version, String exec) throws IOException {
        if (answer instanceof Long && (Long) answer == FormatConstants.BRIDGE_PROTOCOL) {
            return; // the package's version is asked for the message only
        }
        String theirs = answer instanceof Long ? "protocol " + answer : "an older protocol";
        throw new IOException("heliosdb crypto: this jar speaks bridge protocol " + FormatConstants.BRIDGE_PROTOCOL
                + ", but heliosdb_flink_crypto " + version.get() + " (" + exec + ") speaks " + theirs
                + ": install the jars of the installed package (heliosdb-flink-crypto flink install)",
                answer instanceof Throwable ? (Throwable) answer : null);
    }
}

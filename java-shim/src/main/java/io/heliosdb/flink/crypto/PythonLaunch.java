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
 * What both jars need to start the package's Python through pemja: the interpreter's import paths and
 * the {@code configure} argument. Compiled into the plugin jar and the lib jar (each loads its own copy).
 */
public final class PythonLaunch {

    /** The one Python function both jars call: {@code heliosdb_flink_crypto.flink.hooks.dispatch}. */
    public static final String ENTRY = "heliosdb_dispatch";

    private PythonLaunch() {
    }

    /** pemja's configuration for {@code pythonExec}: its import paths, one CPython shared by threads. */
    public static PythonInterpreterConfig config(String pythonExec) throws IOException {
        return PythonInterpreterConfig.newBuilder()
                .setPythonExec(pythonExec)
                .addPythonPaths(pythonPaths(pythonExec).toArray(new String[0]))
                .setExcType(PythonInterpreterConfig.ExecType.MULTI_THREAD)
                .build();
    }

    /** An interpreter on the calling thread (keep it there) with {@link #ENTRY} imported. */
    public static PythonInterpreter open(PythonInterpreterConfig config) {
        PythonInterpreter p = new PythonInterpreter(config);
        try {
            p.exec("from heliosdb_flink_crypto.flink.hooks import dispatch as " + ENTRY);
        } catch (RuntimeException e) {
            p.close();
            throw e;
        }
        return p;
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
}

package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Shared by the JUnit tests: the venv's Python, a throw-away local keyring, Python one-offs. */
final class TestSupport {
    private TestSupport() {
    }

    static String python() {
        return System.getProperty("heliosdb.python", "python3");
    }

    /** Creates a keyring file (0600, made now, never committed) and returns its local:// URI. */
    static String keyring(Path dir) throws Exception {
        String uri = "local://" + dir.resolve("keyring.json").toAbsolutePath();
        runPython("from heliosdb_flink_crypto.kms.local import LocalKeyring\nLocalKeyring.create('" + uri + "')\n");
        return uri;
    }

    static Map<String, String> conf(String kmsUri, String segmentSize) {
        Map<String, String> c = new HashMap<>();
        c.put("heliosdb.crypto.kms.uri", kmsUri);
        c.put("heliosdb.crypto.segment-size", segmentSize);
        c.put("heliosdb.crypto.python.executable", python());
        return c;
    }

    /** Runs Python source in a separate process; returns stdout; fails on a non-zero exit. */
    static String runPython(String code, String... args) throws Exception {
        String[] cmd = new String[args.length + 3];
        cmd[0] = python();
        cmd[1] = "-c";
        cmd[2] = code;
        System.arraycopy(args, 0, cmd, 3, args.length);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("python failed: " + new String(out, StandardCharsets.UTF_8));
        }
        return new String(out, StandardCharsets.UTF_8);
    }

    static byte[] data(int n, int seed) {
        byte[] b = new byte[n];
        java.util.Random r = new java.util.Random(seed);
        r.nextBytes(b);
        return b;
    }

    static byte[] readAll(Path p) throws IOException {
        return Files.readAllBytes(p);
    }
}

package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Python whose package cannot be used (a jar left beside another release: another bridge protocol;
 * or its hooks fail to import) fails every call with one remembered error, naming the package and the
 * fix, and makes one interpreter, not one per call (made per call, the second one crashed the JVM: a
 * SIGSEGV in pemja's call, with this small package). Each case runs in a JVM of its own (one CPython
 * per JVM, which caches imported modules), with a real CPython importing a real package from a folder.
 */
class UnusablePackageITCase {

    @Test
    void aPackageOfAnotherProtocolFailsEveryCallWithOneErrorAndOneInterpreter(@TempDir Path dir) throws Exception {
        List<String> lines = run(dir, "");
        String expect = "this jar speaks bridge protocol " + FormatConstants.BRIDGE_PROTOCOL
                + ", but heliosdb_flink_crypto 9.9.9 (" + dir.resolve("python") + ") speaks protocol 1: "
                + "install the jars of the installed package (heliosdb-flink-crypto flink install)";
        assertEquals("first heliosdb crypto: " + expect, lines.get(0));
        assertEquals(List.of("same", "same"), lines.subList(1, 3), "the remembered error, not a new attempt");
        assertEquals(1, imports(dir), "one interpreter made for three calls");
    }

    @Test
    void hooksThatFailToImportFailEveryCallWithOneErrorNamingThePythonAndItsError(@TempDir Path dir) throws Exception {
        List<String> lines = run(dir, "raise ImportError('this package is broken')\n");
        assertTrue(lines.get(0).startsWith("first heliosdb crypto: " + dir.resolve("python")
                + " cannot load heliosdb_flink_crypto.flink.hooks: "), lines.get(0));
        assertTrue(lines.get(0).contains("this package is broken"), lines.get(0));
        assertEquals(List.of("same", "same"), lines.subList(1, 3));
        assertEquals(1, imports(dir), "the hooks imported once for three calls (a failed import is not cached)");
    }

    /** The child JVM: three calls through one bridge on {@code args[0]}; each failure printed, "same" when
     *  it is the very error the first call got. */
    public static void main(String[] args) throws Exception {
        PythonBridge b = new PythonBridge(args[0]).ensureWorkers(1);
        IOException first = null;
        for (int i = 0; i < 3; i++) {
            try {
                b.call(60_000, "ping");
                System.out.println("answered");
            } catch (IOException e) {
                System.out.println(first == null ? "first " + e.getMessage().replace('\n', ' ') : e == first ? "same" : "other");
                first = first == null ? e : first;
            }
        }
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    /** Writes a package that answers protocol 1 (after {@code hooksPrologue}, run at import) and a
     *  wrapper interpreter finding it first, runs the child JVM on it, returns what it printed. */
    private static List<String> run(Path dir, String hooksPrologue) throws Exception {
        Path pkg = Files.createDirectories(dir.resolve("root/heliosdb_flink_crypto/flink"));
        Files.writeString(pkg.getParent().resolve("__init__.py"), "__version__ = '9.9.9'\n");
        Files.writeString(pkg.resolve("__init__.py"), "");
        Files.writeString(pkg.resolve("hooks.py"), "with open(" + pyString(dir.resolve("imports")) + ", 'a') as f:\n"
                + "    f.write('import\\n')\n" + hooksPrologue
                + "def dispatch(op, *args):\n"
                + "    return {'protocol': 1, 'ping': '9.9.9'}[op]\n");
        Path python = dir.resolve("python");
        Files.writeString(python, "#!/bin/sh\nPYTHONPATH=" + dir.resolve("root") + " exec " + TestSupport.python() + " \"$@\"\n");
        Files.setPosixFilePermissions(python, PosixFilePermissions.fromString("rwx------"));
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"), "-cp", cp, // a crash leaves its report here
                UnusablePackageITCase.class.getName(), python.toString()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM ended");
        String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), text);
        List<String> lines = text.lines().filter(l -> l.startsWith("first ") || l.equals("same") || l.equals("other")
                || l.equals("answered")).toList();
        assertEquals(3, lines.size(), text);
        return lines;
    }

    private static long imports(Path dir) throws IOException {
        return Files.readAllLines(dir.resolve("imports")).size();
    }

    private static String pyString(Path p) {
        return "'" + p.toString().replace("\\", "\\\\").replace("'", "\\'") + "'";
    }
}

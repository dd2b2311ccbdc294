package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pool of direct buffers gives the TaskManager's off-heap memory back: buffers unused for the
 * idle time are freed (and forgotten by Python first), by a daemon thread of their own, and a full
 * direct memory limit frees the pool before an allocation fails.
 */
class NativeBuffersITCase {

    private static final long HOUR = TimeUnit.HOURS.toNanos(1);
    private static final int CAP = 64 << 10;

    @TempDir
    static Path dir;
    static PythonSession session;

    @BeforeAll
    static void setUp() throws Exception {
        session = PythonSession.open(TestSupport.conf(TestSupport.keyring(dir), "65536"));
    }

    /** Seals 100 bytes of {@code src} into {@code dst} through Python, by their registered ids. */
    private static long seal(NativeBuffers.Registered src, NativeBuffers.Registered dst) throws IOException {
        PythonSession.NewFile f = session.newFile("/t/" + System.nanoTime());
        return (Long) session.bridge.call("seal", f.handle, 0L, true, src.id, 100L, dst.id);
    }

    @Test
    void buffersIdleForTheIdleTimeAreFreedAndPythonForgetsThemFirst() throws Exception {
        NativeBuffers nb = new NativeBuffers(session.bridge, true, HOUR);
        NativeBuffers.Registered src = nb.take(CAP);
        NativeBuffers.Registered dst = nb.take(CAP + 64);
        assertEquals(116, seal(src, dst), "registered with Python: sealed by id");
        nb.give(src);
        nb.give(dst);
        assertEquals(2L * CAP + 64, nb.pooledBytes());

        long now = System.nanoTime();
        assertEquals(0, nb.trim(now, HOUR), "given back just now: kept");
        assertEquals(2L * CAP + 64, nb.pooledBytes());

        assertEquals(2, nb.trim(now + HOUR, HOUR), "an hour later: both freed");
        assertEquals(0, nb.pooledBytes());
        IOException e = assertThrows(IOException.class, () -> seal(src, dst));
        assertTrue(e.getMessage().contains("unknown buffer " + src.id), e.getMessage());
    }

    @Test
    void theLastBufferGivenBackIsTakenFirstAndTheOldestAreFreedFirst() throws Exception {
        NativeBuffers nb = new NativeBuffers(session.bridge, true, HOUR);
        NativeBuffers.Registered a = nb.take(CAP);
        NativeBuffers.Registered b = nb.take(CAP);
        nb.give(a);
        long between = System.nanoTime();
        nb.give(b);
        assertSame(b, nb.take(CAP), "the warmest first");
        nb.give(b);
        assertEquals(1, nb.trim(between + HOUR, HOUR), "only the one idle for the idle time");
        assertSame(b, nb.take(CAP));
        nb.give(b);
        nb.trim(System.nanoTime(), 0);
    }

    @Test
    void aDaemonThreadFreesIdleBuffersWithoutAnyFurtherCall() throws Exception {
        NativeBuffers nb = new NativeBuffers(session.bridge, true, TimeUnit.MILLISECONDS.toNanos(200));
        NativeBuffers.Registered[] rs = {nb.take(CAP), nb.take(CAP), nb.take(2 * CAP)};
        for (NativeBuffers.Registered r : rs) {
            nb.give(r);
        }
        assertEquals(4L * CAP, nb.pooledBytes());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (nb.pooledBytes() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(0, nb.pooledBytes(), "freed by the trimmer");
        IOException e = assertThrows(IOException.class, () -> seal(rs[0], rs[1]));
        assertTrue(e.getMessage().contains("unknown buffer"), e.getMessage());
    }

    @Test
    void aFullDirectMemoryLimitFreesThePoolBeforeAnAllocationFails(@TempDir Path tmp) throws Exception {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:MaxDirectMemorySize=16m", "-XX:ErrorFile=" + tmp.resolve("hs_err_%p.log"), "-cp", cp,
                NativeBuffersITCase.class.getName()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM ended");
        assertEquals(0, p.exitValue(), out);
        assertEquals("pooled 12582912\ntook 10485760, pooled 0", out.strip());
    }

    /** The child JVM (16 MiB of direct memory): 12 MiB pooled, then a 10 MiB buffer (copying buffers:
     *  no Python needed). */
    public static void main(String[] args) throws Exception {
        NativeBuffers nb = new NativeBuffers(null, false, HOUR);
        NativeBuffers.Registered[] rs = {nb.take(4 << 20), nb.take(4 << 20), nb.take(4 << 20)};
        for (NativeBuffers.Registered r : rs) {
            nb.give(r);
        }
        rs[0] = rs[1] = rs[2] = null;
        System.out.println("pooled " + nb.pooledBytes());
        NativeBuffers.Registered big = nb.take(10 << 20);
        System.out.println("took " + big.buffer.capacity() + ", pooled " + nb.pooledBytes());
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }
}

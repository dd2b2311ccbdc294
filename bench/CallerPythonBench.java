package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * What the threads that call Python themselves ({@link CallerPython}) cost, for
 * bench/caller_python_bench.py (args: python, kms uri, directory, threads, scheme {@code enc|plain}).
 * Each thread writes one 2 MiB file through {@code <scheme>+file://} (for {@code enc}: its first
 * sealed batch makes its own interpreter), writes a second one, and stays alive; then all end. A
 * first such phase fills the shim's buffer pool (up to 16 idle buffers per size); the second is
 * measured. Prints
 * {@code key value} lines: the process's resident memory before, with every thread alive and after
 * they ended (KiB, {@code /proc/self/status}), the JVM's direct buffer memory before and with them alive,
 * the median first and second write of a thread (ms), and
 * CallerPython's interpreters made and threads holding one.
 */
public final class CallerPythonBench {

    public static void main(String[] a) throws Exception {
        Configuration conf = new Configuration();
        conf.setString("heliosdb.crypto.python.executable", a[0]);
        conf.setString("heliosdb.crypto.kms.uri", a[1]);
        String dir = a[2];
        int threads = Integer.parseInt(a[3]);
        String scheme = a[4].equals("enc") ? "enc+file" : "file";
        FileSystem.initialize(conf, null);
        byte[] data = new byte[2 << 20];
        new java.util.Random(1).nextBytes(data);
        write(new Path(scheme + "://" + dir + "/warm"), data); // the bridge, the DEK, this thread's interpreter
        Phase warm = new Phase(scheme, dir, data, threads); // fills the buffer pool to its cap
        warm.end();
        Thread.sleep(500);
        long before = rssKiB();
        long directBefore = direct();
        Phase measured = new Phase(scheme, dir, data, threads);
        Thread.sleep(500);
        long alive = rssKiB();
        long directAlive = direct();
        int live = CallerPython.live();
        measured.end();
        Thread.sleep(500);
        long after = rssKiB();
        long[] first = measured.first;
        long[] second = measured.second;
        java.util.Arrays.sort(first);
        java.util.Arrays.sort(second);
        System.out.println("rss_before_kib " + before);
        System.out.println("direct_before_kib " + directBefore / 1024);
        System.out.println("direct_alive_kib " + directAlive / 1024);
        System.out.println("rss_alive_kib " + alive);
        System.out.println("rss_after_kib " + after);
        System.out.println("first_write_ms " + first[threads / 2] / 1e6);
        System.out.println("second_write_ms " + second[threads / 2] / 1e6);
        System.out.println("interpreters_made " + CallerPython.made());
        System.out.println("threads_holding_one_alive " + live);
        System.out.println("threads_holding_one_after " + CallerPython.live());
        System.exit(0);
    }

    /** {@code threads} threads started one after the other, each writing two files and then waiting
     *  until {@link #end}. */
    static final class Phase {
        final long[] first;
        final long[] second;
        private final CountDownLatch done = new CountDownLatch(1);
        private final List<Thread> all = new ArrayList<>();

        Phase(String scheme, String dir, byte[] data, int threads) throws InterruptedException {
            first = new long[threads];
            second = new long[threads];
            for (int i = 0; i < threads; i++) {
                int n = i;
                Thread t = new Thread(() -> {
                    try {
                        Path p = new Path(scheme + "://" + dir + "/t" + n);
                        long t0 = System.nanoTime();
                        write(p, data);
                        long t1 = System.nanoTime();
                        write(p, data);
                        first[n] = t1 - t0;
                        second[n] = System.nanoTime() - t1;
                        done.await();
                    } catch (Exception e) {
                        e.printStackTrace();
                        System.exit(1);
                    }
                }, "writer-" + i);
                t.start();
                all.add(t);
                while (t.getState() != Thread.State.WAITING && t.isAlive()) { // one at a time: no contention
                    Thread.sleep(1);
                }
            }
        }

        void end() throws InterruptedException {
            done.countDown();
            for (Thread t : all) {
                t.join();
            }
        }
    }

    static void write(Path p, byte[] data) throws IOException {
        try (FSDataOutputStream out = p.getFileSystem().create(p, FileSystem.WriteMode.OVERWRITE)) {
            for (int off = 0; off < data.length; off += 65536) {
                out.write(data, off, 65536);
            }
        }
    }

    static long direct() {
        for (java.lang.management.BufferPoolMXBean b
                : java.lang.management.ManagementFactory.getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class)) {
            if (b.getName().equals("direct")) {
                return b.getMemoryUsed();
            }
        }
        return -1;
    }

    static long rssKiB() throws IOException {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }
}

package io.heliosdb.flink.crypto;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * What a thread calling Python itself costs ({@link CallerPython}: an interpreter per thread), for
 * bench/caller_python_bench.py (args: python, threads, side {@code interpreter|thread}). Threads are
 * started one after the other; on the {@code interpreter} side each makes its interpreter as
 * CallerPython does ({@link PythonLaunch#open}, which already asks the package its bridge protocol
 * and version) and calls the package twice more ({@code ping}), then stays
 * alive; on the {@code thread} side each only waits. Then all end. Prints {@code key value} lines: the
 * process's resident memory before, with every thread alive and after they ended (KiB,
 * {@code /proc/self/status}), and the median time a thread took to make its interpreter and to make
 * its first and second call (us).
 */
public final class CallerPythonBench {

    public static void main(String[] a) throws Exception {
        PythonInterpreterConfig config = PythonLaunch.config(a[0]);
        int threads = Integer.parseInt(a[1]);
        boolean interpreters = a[2].equals("interpreter");
        PythonInterpreter main = PythonLaunch.open(config); // CPython itself and the package, imported once
        main.invoke(PythonLaunch.ENTRY, "ping");
        Thread.sleep(300);
        long before = rssKiB();
        CountDownLatch done = new CountDownLatch(1);
        long[][] nanos = new long[3][threads];
        List<Thread> all = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            int n = i;
            Thread t = new Thread(() -> {
                try {
                    if (interpreters) {
                        long t0 = System.nanoTime();
                        PythonInterpreter p = PythonLaunch.open(config);
                        long t1 = System.nanoTime();
                        p.invoke(PythonLaunch.ENTRY, "ping");
                        long t2 = System.nanoTime();
                        p.invoke(PythonLaunch.ENTRY, "ping");
                        long t3 = System.nanoTime();
                        nanos[0][n] = t1 - t0;
                        nanos[1][n] = t2 - t1;
                        nanos[2][n] = t3 - t2;
                    }
                    done.await(); // the interpreter stays, as CallerPython's does (it cannot be closed elsewhere)
                } catch (Exception e) {
                    e.printStackTrace();
                    System.exit(1);
                }
            }, "caller-" + i);
            t.start();
            all.add(t);
            while (t.getState() != Thread.State.WAITING && t.isAlive()) { // one at a time: no contention
                Thread.sleep(1);
            }
        }
        Thread.sleep(300);
        long alive = rssKiB();
        done.countDown();
        for (Thread t : all) {
            t.join();
        }
        Thread.sleep(300);
        long after = rssKiB();
        System.out.println("rss_before_kib " + before);
        System.out.println("rss_alive_kib " + alive);
        System.out.println("rss_after_kib " + after);
        String[] names = {"make_us", "first_call_us", "second_call_us"};
        for (int k = 0; k < 3; k++) {
            java.util.Arrays.sort(nanos[k]);
            System.out.println(names[k] + " " + nanos[k][threads / 2] / 1e3);
        }
        System.exit(0);
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

package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes and reads through Flink's own FileSystem API, {@code file://} and {@code enc+file://}
 * (the shim registered by {@link FileSystem#initialize}, as a Flink process does), with the call
 * sizes Flink uses. Driven by bench/overhead_bench.py (args: python, kms uri, segment size, MiB per
 * round, directory): each stdin line {@code write|read plain|enc CALL_BYTES} runs one round and
 * prints {@code wall_s cpu_s caller_s workers_s jvm_s switches}: CPU seconds of the whole process
 * and of its threads by role (the caller, the shim's Python workers, the JVM's own threads: JIT
 * compilers, GC), from the kernel's per-thread run time ({@code /proc/self/task/N/schedstat},
 * nanoseconds, user and kernel), and how many times its threads were switched in (thread hand-offs). A write round first deletes the file it writes, outside the timed part.
 * Scheme {@code piped} writes {@code file://} through the shim's write pipeline without sealing: the
 * caller copies into direct batches (2 MiB), a worker writes them to the file's channel (a ring of
 * {@link EncryptingOutputStream#DEPTH}): what the shim's two threads cost without AES-GCM or Python.
 */
public final class FsBench {

    public static void main(String[] a) throws Exception {
        Configuration conf = new Configuration();
        conf.setString("heliosdb.crypto.python.executable", a[0]);
        conf.setString("heliosdb.crypto.kms.uri", a[1]);
        conf.setString("heliosdb.crypto.segment-size", a[2]);
        long total = Long.parseLong(a[3]) << 20;
        String dir = a[4];
        int seg = Integer.parseInt(a[2]);
        FileSystem.initialize(conf, null);
        byte[] data = new byte[8 << 20];
        new java.util.Random(1).nextBytes(data);
        Path plain = new Path("file://" + dir + "/fsbench.plain");
        Path enc = new Path("enc+file://" + dir + "/fsbench.enc");
        System.out.println("ready pid=" + ProcessHandle.current().pid());
        BufferedReader cmd = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = cmd.readLine()) != null) {
            String[] w = line.trim().split(" ");
            if (w.length != 3) {
                break;
            }
            Path p = w[1].equals("enc") ? enc : plain;
            FileSystem fs = p.getFileSystem();
            int call = Integer.parseInt(w[2]);
            if (w[0].equals("write")) {
                Files.deleteIfExists(new File(dir, p.getName() + (w[1].equals("piped") ? ".piped" : "")).toPath());
            }
            long t = System.nanoTime();
            Map<String, Long> c0 = cpu();
            if (w[0].equals("write") && w[1].equals("piped")) {
                piped(fs.create(new Path(plain + ".piped"), FileSystem.WriteMode.OVERWRITE), data, call, total,
                        seg);
            } else if (w[0].equals("write")) {
                try (FSDataOutputStream out = fs.create(p, FileSystem.WriteMode.OVERWRITE)) {
                    int off = 0;
                    for (long done = 0; done < total; done += call) {
                        if (off + call > data.length) {
                            off = 0;
                        }
                        out.write(data, off, call);
                        off += call;
                    }
                }
            } else {
                byte[] buf = new byte[call];
                try (FSDataInputStream in = fs.open(p)) {
                    while (in.read(buf, 0, call) > 0) {
                        // consume
                    }
                }
            }
            long wall = System.nanoTime() - t;
            Map<String, Long> c1 = cpu();
            StringBuilder b = new StringBuilder().append(wall / 1e9);
            for (String k : new String[] {"all", "caller", "workers", "jvm"}) {
                b.append(' ').append((c1.getOrDefault(k, 0L) - c0.getOrDefault(k, 0L)) / 1e9);
            }
            b.append(' ').append(c1.getOrDefault("switches", 0L) - c0.getOrDefault("switches", 0L));
            System.out.println(b);
        }
        System.exit(0);
    }

    /** The worker of {@code piped} writes, named as the shim's are (counted as "workers"). */
    static final java.util.concurrent.ExecutorService PIPED = java.util.concurrent.Executors.newSingleThreadExecutor(
            r -> {
                Thread t = new Thread(r, "heliosdb-crypto-piped");
                t.setDaemon(true);
                return t;
            });

    /** {@code total} bytes in {@code call}-byte writes through a WritePipeline that does not seal. */
    static void piped(FSDataOutputStream out, byte[] data, int call, long total, int seg) throws java.io.IOException {
        java.nio.channels.WritableByteChannel ch = InnerChannels.writable(out);
        WritePipeline.Stage stage = new WritePipeline.Stage() {
            @Override
            public WriteBatch take(int segments) {
                return new WriteBatch(java.nio.ByteBuffer.allocateDirect(segments * seg));
            }

            @Override
            public void prepare(WriteBatch b) {
            }

            @Override
            public void process(WriteBatch b) throws java.io.IOException {
                java.nio.ByteBuffer x = b.plain.duplicate();
                x.clear().limit(b.length);
                while (x.hasRemaining()) {
                    ch.write(x);
                }
            }

            @Override
            public void give(WriteBatch b) {
            }
        };
        WritePipeline pipe = new WritePipeline(stage, PIPED, seg, NativeBuffers.batchSegments(seg,
                NativeBuffers.WRITE_BATCH_BYTES), EncryptingOutputStream.DEPTH);
        try (out) {
            int off = 0;
            for (long done = 0; done < total; ) {
                if (off + call > data.length) {
                    off = 0;
                }
                pipe.write(data, off, call);
                off += call;
                done += call;
            }
            pipe.submit(true);
            pipe.drain();
        } finally {
            pipe.release();
        }
    }

    /** CPU nanoseconds so far of every live thread of this process, by role. */
    static Map<String, Long> cpu() throws java.io.IOException {
        Map<String, Long> m = new TreeMap<>();
        File[] tasks = new File("/proc/self/task").listFiles();
        if (tasks == null) {
            return m;
        }
        for (File t : tasks) {
            String comm;
            long ns;
            long switches;
            try {
                comm = Files.readString(new File(t, "comm").toPath()).trim();
                String[] sched = Files.readString(new File(t, "schedstat").toPath()).trim().split(" ");
                ns = Long.parseLong(sched[0]);
                switches = Long.parseLong(sched[2]); // times this thread was switched in
            } catch (java.io.IOException | RuntimeException e) {
                continue; // the thread ended meanwhile
            }
            String role = comm.equals("java") ? "caller" // the main thread's native name
                    : comm.startsWith("heliosdb-crypto") ? "workers"
                    : comm.startsWith("C1 ") || comm.startsWith("C2 ") || comm.startsWith("G1")
                    || comm.startsWith("GC ") || comm.startsWith("VM ") ? "jvm" : "other";
            m.merge(role, ns, Long::sum);
            m.merge("all", ns, Long::sum);
            m.merge("switches", switches, Long::sum);
        }
        return m;
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.util.HashMap;
import java.util.Map;

/**
 * Java -> Python bridge throughput: the shim's streams over in-memory inner streams, so only the
 * bridge and the cipher are measured. Driven by bench/bridge_bench.py (args: python, kms uri,
 * segment size, MiB, write chunk): each line "encrypt" or "decrypt" on stdin runs one round and
 * prints its seconds, so rounds interleave with the Python engine's under the same machine load.
 */
public final class BridgeBench {
    public static void main(String[] a) throws Exception {
        Map<String, String> conf = new HashMap<>();
        conf.put("heliosdb.crypto.python.executable", a[0]);
        conf.put("heliosdb.crypto.kms.uri", a[1]);
        conf.put("heliosdb.crypto.segment-size", a[2]);
        long total = Long.parseLong(a[3]) << 20;
        int chunk = Integer.parseInt(a[4]);
        String dir = a.length > 5 ? a[5] : null; // real files there instead of memory
        PythonSession session = PythonSession.open(conf);
        byte[] data = new byte[chunk];
        new java.util.Random(1).nextBytes(data);
        Memory sink = new Memory();
        try (EncryptingOutputStream out = new EncryptingOutputStream(sink, session, "bench")) {
            for (long done = 0; done < total; done += chunk) {
                out.write(data, 0, chunk);
            }
        }
        byte[] file = sink.toByteArray();
        byte[] buf = new byte[chunk];
        System.out.println("ready zero_copy=" + session.buffers.zeroCopy());
        BufferedReader cmd = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = cmd.readLine()) != null) {
            long t = System.nanoTime();
            double c0 = cpu();
            org.apache.flink.core.fs.FileSystem local = org.apache.flink.core.fs.FileSystem.getLocalFileSystem();
            org.apache.flink.core.fs.Path target = dir == null ? null : new org.apache.flink.core.fs.Path(dir, "java.enc");
            if (line.equals("plain")) { // the same writes straight to Flink's local file system
                try (FSDataOutputStream out = local.create(new org.apache.flink.core.fs.Path(dir, "java.plain"),
                        org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE)) {
                    for (long done = 0; done < total; done += chunk) {
                        out.write(data, 0, chunk);
                    }
                }
            } else if (line.equals("plain-read")) {
                try (FSDataInputStream in = local.open(new org.apache.flink.core.fs.Path(dir, "java.plain"))) {
                    while (in.read(buf, 0, buf.length) > 0) {
                        // consume
                    }
                }
            } else if (line.equals("encrypt")) {
                FSDataOutputStream target0 = dir == null ? new Null()
                        : local.create(target, org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE);
                try (EncryptingOutputStream out = new EncryptingOutputStream(target0, session, "bench")) {
                    for (long done = 0; done < total; done += chunk) {
                        out.write(data, 0, chunk);
                    }
                }
            } else if (line.equals("decrypt")) {
                FSDataInputStream source = dir == null ? new MemoryIn(file) : local.open(target);
                long len = dir == null ? file.length : local.getFileStatus(target).getLen();
                try (DecryptingInputStream in = new DecryptingInputStream(source, len, session, "bench")) {
                    while (in.read(buf, 0, buf.length) > 0) {
                        // consume
                    }
                }
            } else {
                break;
            }
            System.out.println((System.nanoTime() - t) / 1e9 + " " + (cpu() - c0));
        }
        System.exit(0);
    }

    /** CPU seconds of this process: the caller, the Python workers (in-process), JIT and GC. */
    static double cpu() {
        return ((com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
    }

    /** Discards what is written (as the Python side's null sink). */
    static final class Null extends FSDataOutputStream {
        private long pos;

        @Override
        public long getPos() {
            return pos;
        }

        @Override
        public void write(int x) {
            pos++;
        }

        @Override
        public void write(byte[] x, int off, int len) {
            pos += len;
        }

        @Override
        public void flush() {
        }

        @Override
        public void sync() {
        }

        @Override
        public void close() {
        }
    }

    static final class Memory extends FSDataOutputStream {
        private final ByteArrayOutputStream b = new ByteArrayOutputStream(1 << 20);

        byte[] toByteArray() {
            return b.toByteArray();
        }

        @Override
        public long getPos() {
            return b.size();
        }

        @Override
        public void write(int x) {
            b.write(x);
        }

        @Override
        public void write(byte[] x, int off, int len) {
            b.write(x, off, len);
        }

        @Override
        public void flush() {
        }

        @Override
        public void sync() {
        }

        @Override
        public void close() {
        }
    }

    /** In-memory ciphertext; positional ByteBuffer reads, as Flink's local file system offers. */
    static final class MemoryIn extends FSDataInputStream implements InnerChannels.LocalReads {
        private final byte[] d;
        private int pos;

        MemoryIn(byte[] d) {
            this.d = d;
        }

        @Override
        public void seek(long p) {
            pos = (int) p;
        }

        @Override
        public long getPos() {
            return pos;
        }

        @Override
        public int read() {
            return pos < d.length ? d[pos++] & 0xff : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (pos >= d.length) {
                return -1;
            }
            int n = Math.min(len, d.length - pos);
            System.arraycopy(d, pos, b, off, n);
            pos += n;
            return n;
        }

        @Override
        public int read(java.nio.ByteBuffer b) {
            int n = read(pos, b);
            if (n > 0) {
                pos += n;
            }
            return n;
        }

        @Override
        public int read(long at, java.nio.ByteBuffer b) {
            if (at >= d.length) {
                return -1;
            }
            int n = (int) Math.min(b.remaining(), d.length - at);
            b.put(d, (int) at, n);
            return n;
        }
    }
}

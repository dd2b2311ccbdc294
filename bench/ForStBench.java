package io.heliosdb.flink.crypto;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * One run of a keyed job on ForSt for bench/forst_bench.py, in a local MiniCluster in this JVM.
 * Args: result file, keys, updates, value bytes, then Flink options as KEY=VALUE (the state backend,
 * its primary directory, plain or {@code enc+}) and {@code --async} for state V2 (asynchronous state
 * access, which ForSt always serves from its primary directory). The job first writes one value per key (the load),
 * then reads and rewrites the value of a pseudo-random existing key per record (the updates: one
 * state read and one state write each), checking that every read finds the value last written.
 * The result file gets: load seconds, update seconds, and the JVM's encrypted-read counters
 * (plaintext bytes decrypted, plaintext bytes read by ForSt; 0 0 for a plain run).
 */
public final class ForStBench {

    public static void main(String[] a) throws Exception {
        String result = a[0];
        long keys = Long.parseLong(a[1]);
        long updates = Long.parseLong(a[2]);
        int valueBytes = Integer.parseInt(a[3]);
        Configuration conf = new Configuration();
        boolean async = false;
        for (int i = 4; i < a.length; i++) {
            if (a[i].equals("--async")) { // state V2 (asynchronous state access): ForSt's remote mode always
                async = true;
                continue;
            }
            String[] kv = a[i].split("=", 2);
            conf.setString(kv[0], kv[1]);
        }
        FileSystem.initialize(conf, null); // the shim's factories are on the class path (ServiceLoader)
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        KeyedStream<Long, Long> keyed = env.fromSequence(0, keys + updates - 1).keyBy(n -> key(n, keys));
        (async ? keyed.enableAsyncState() : keyed)
                .process(new Touch(keys, updates, valueBytes, result, async))
                .sinkTo(new DiscardingSink<>());
        env.execute("forst-bench");
        long[] c = ReadCounters.snapshot();
        Files.write(Paths.get(result), (new String(Files.readAllBytes(Paths.get(result)), StandardCharsets.UTF_8).trim()
                + " " + c[0] + " " + c[1] + " " + c[2] + " " + c[3] + " " + CallerPython.made() + "\n").getBytes(StandardCharsets.UTF_8));
        System.exit(0);
    }

    /** Record n's key: n itself during the load, then a pseudo-random existing key. */
    static long key(long n, long keys) {
        if (n < keys) {
            return n;
        }
        long z = n * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return Long.remainderUnsigned(z ^ (z >>> 31), keys);
    }

    /** Reads and rewrites the key's value; times the load and the updates. */
    static final class Touch extends KeyedProcessFunction<Long, Long, Long> {
        private final long keys;
        private final long updates;
        private final int valueBytes;
        private final String result;
        private final boolean async;
        private transient ValueState<byte[]> value;
        private transient org.apache.flink.api.common.state.v2.ValueState<byte[]> valueV2;
        private transient long start;
        private transient long loaded;
        private transient long seed;

        Touch(long keys, long updates, int valueBytes, String result, boolean async) {
            this.keys = keys;
            this.updates = updates;
            this.valueBytes = valueBytes;
            this.result = result;
            this.async = async;
        }

        @Override
        public void open(OpenContext ctx) {
            if (async) {
                valueV2 = getRuntimeContext().getState(
                        new org.apache.flink.api.common.state.v2.ValueStateDescriptor<>("value", byte[].class));
            } else {
                value = getRuntimeContext().getState(new ValueStateDescriptor<>("value", byte[].class));
            }
            seed = 42;
        }

        @Override
        public void processElement(Long n, Context ctx, Collector<Long> out) throws Exception {
            if (n == 0) {
                start = System.nanoTime();
            } else if (n == keys) {
                loaded = System.nanoTime();
            }
            byte[] old = async ? valueV2.value() : value.value();
            if ((n < keys) != (old == null)) {
                throw new IllegalStateException("record " + n + ": the state of key " + ctx.getCurrentKey()
                        + (old == null ? " is missing" : " exists before its first write"));
            }
            byte[] b = new byte[valueBytes];
            for (int i = 0; i + 8 <= valueBytes; i += 8) { // incompressible, as real state mostly is
                seed ^= seed << 13;
                seed ^= seed >>> 7;
                seed ^= seed << 17;
                for (int j = 0; j < 8; j++) {
                    b[i + j] = (byte) (seed >>> (8 * j));
                }
            }
            if (async) {
                valueV2.update(b);
            } else {
                value.update(b);
            }
            if (n == keys + updates - 1) {
                long end = System.nanoTime();
                Files.write(Paths.get(result), ((loaded - start) / 1e9 + " " + (end - loaded) / 1e9)
                        .getBytes(StandardCharsets.UTF_8));
            }
            if (n % 1024 == 0) {
                out.collect(n);
            }
        }
    }
}

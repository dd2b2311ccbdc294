package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.PythonBridge;
import io.heliosdb.flink.crypto.PythonLaunch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lib jar's use of the shared bridge against the real hooks: the gauges read what Python counted. */
class LibBridgeITCase {

    @Test
    void gaugesShowFilesEncryptedThroughTheSameHooks(@TempDir Path tmp) throws Exception {
        Map<String, String> conf = LibTestSupport.crypto(LibTestSupport.keyring(tmp));
        PythonBridge python = PythonBridge.shared(conf);
        long sid = (Long) python.call(120_000, "configure", PythonLaunch.toJson(conf));
        String json = PythonLaunch.toJson(conf);
        FlinkGauges gauges = new FlinkGauges(() -> python.submit("flink_metrics", json));
        int enc = Arrays.asList(FlinkGauges.NAMES).indexOf("heliosdb_checkpoint_encryption_total");
        int bytes = Arrays.asList(FlinkGauges.NAMES).indexOf("heliosdb_checkpoint_encrypted_bytes_total");
        double before = read(gauges, enc);
        // a file written through the hooks, as the FileSystem plugin does (the copying form)
        Object[] w = (Object[]) python.call(60_000, "writer", sid, "enc+file://" + tmp + "/chk-1/state");
        byte[] data = "state-of-the-job".getBytes(StandardCharsets.UTF_8);
        python.call(60_000, "seal_bytes", w[0], 0L, true, data);
        python.call(60_000, "finish", w[0], (long) data.length);
        Thread.sleep(FlinkGauges.REFRESH_MILLIS + 50);
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (read(gauges, enc) < before + 1 && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertEquals(before + 1, read(gauges, enc));
        assertTrue(read(gauges, bytes) >= data.length);
    }

    static double read(FlinkGauges g, int index) throws InterruptedException {
        for (int i = 0; i < 50; i++) { // the first read may start Python; the answer lands later
            double v = g.value(index);
            if (v != 0.0 || i > 20) {
                return v;
            }
            Thread.sleep(100);
        }
        return g.value(index);
    }

    @Test
    void pythonErrorsBecomeIOExceptionsNamingTheClass() {
        PythonBridge python = PythonBridge.shared(LibTestSupport.crypto("local:///unused.json"));
        IOException e = assertThrows(IOException.class, () -> python.call(120_000, "no_such_op"));
        assertTrue(e.getMessage().startsWith("ValueError: "), e.getMessage());
        IOException bad = assertThrows(IOException.class,
                () -> python.call(120_000, "configure", "{\"heliosdb.crypto.segment-size\": \"abc\"}"));
        assertInstanceOf(io.heliosdb.flink.crypto.ConfigException.class, bad, "the plugin's types, in the lib jar too");
        assertTrue(bad.getMessage().startsWith("ConfigError: heliosdb.crypto."), bad.getMessage());
    }
}

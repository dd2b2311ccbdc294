package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystem.WriteMode;
import org.apache.flink.core.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A typed value set in Java reaches Python as Flink's configuration writes it, and Python reads it. */
class TypedOptionsITCase {

    @Test
    void typedValuesReachPythonAsFlinkWritesThemAndPythonReadsThem(@TempDir java.nio.file.Path dir) throws Exception {
        Configuration c = new Configuration();
        for (Map.Entry<String, String> e : TestSupport.conf(TestSupport.keyring(dir), "1").entrySet()) {
            c.setString(e.getKey(), e.getValue());
        }
        c.set(CryptoOptions.ROTATION_ENABLED, false); // no rotation state written into the temporary folder
        c.set(CryptoOptions.SEGMENT_SIZE, MemorySize.parse("128b"));
        c.set(CryptoOptions.CACHE_MAX_AGE, Duration.ofMinutes(5));
        Schemes.EncFile f = new Schemes.EncFile();
        f.configure(c);
        assertEquals("128 bytes", f.conf().get("heliosdb.crypto.segment-size"), "Flink's text, passed as it is");
        assertEquals("5 min", f.conf().get("heliosdb.crypto.cache.max-age"));
        FileSystem fs = f.create(URI.create("enc+file:///"));
        try (FSDataOutputStream out = fs.create(new Path("enc+file://" + dir.resolve("typed")), WriteMode.OVERWRITE)) {
            out.write(TestSupport.data(300, 4));
        }
        byte[] raw = Files.readAllBytes(dir.resolve("typed"));
        assertEquals(128, ((raw[12] & 0xff) << 24) | ((raw[13] & 0xff) << 16) | ((raw[14] & 0xff) << 8) | (raw[15] & 0xff),
                "the segment size Python read from \"128 bytes\"");
    }
}

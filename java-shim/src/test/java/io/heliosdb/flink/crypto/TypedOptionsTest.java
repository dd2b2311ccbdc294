package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Sizes and durations are Flink-typed options; what Python gets is the text Flink's configuration holds. */
class TypedOptionsTest {

    @Test
    void sizesAndDurationsAreTypedWithPythonsDefaults() {
        assertEquals(1 << 20, CryptoOptions.SEGMENT_SIZE.defaultValue().getBytes());
        assertEquals(Duration.ofHours(1), CryptoOptions.CACHE_MAX_AGE.defaultValue());
        assertEquals(Duration.ofDays(30), CryptoOptions.ROTATION_INTERVAL.defaultValue());
        Configuration c = new Configuration();
        c.setString("heliosdb.crypto.audit.file.max-size", "64mb");
        c.setString("heliosdb.crypto.rotation.check-interval", "90 s");
        assertEquals(MemorySize.ofMebiBytes(64), c.get(CryptoOptions.AUDIT_FILE_MAX_SIZE));
        assertEquals(Duration.ofSeconds(90), c.get(CryptoOptions.ROTATION_CHECK_INTERVAL));
    }
}

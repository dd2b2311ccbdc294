package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.CryptoOptions;
import io.heliosdb.flink.crypto.PythonErrors;
import io.heliosdb.flink.crypto.PythonLaunch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** What the lib jar takes from the core without a Python: the JSON, configuration and error helpers. */
class LibBridgeTest {

    @Test
    void jsonAndConfigurationHelpers() {
        Map<String, String> flink = new TreeMap<>();
        flink.put("heliosdb.crypto.kms.uri", "local:///a \"b\"\\c\n");
        flink.put("state.backend.type", "rocksdb");
        Map<String, String> c = CryptoOptions.fromFlink(flink);
        assertEquals(1, c.size());
        assertEquals("{\"heliosdb.crypto.kms.uri\":\"local:///a \\\"b\\\"\\\\c\\u000a\"}", PythonLaunch.toJson(c));
        assertEquals("ConfigError: x", PythonErrors.translate(new RuntimeException("<class 'a.b.ConfigError'>: x")).getMessage());
        IOException io = new IOException("kept");
        assertEquals(io, PythonErrors.translate(io));
    }
}

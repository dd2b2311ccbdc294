package io.heliosdb.flink.crypto.lib;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The lib's pemja bridge without a Python: a Python that cannot start, the JSON and error helpers. */
class LibPythonTest {

    @Test
    void aPythonThatCannotStartFailsEveryCallWithoutRetryingEachTime() throws Exception {
        LibPython missing = new LibPython("/nonexistent/bin/python3");
        IOException first = assertThrows(IOException.class, () -> missing.call(60_000, "ping"));
        assertTrue(first.getMessage().contains("heliosdb.crypto.python.executable: cannot run /nonexistent/bin/python3"),
                first.getMessage());
        IOException again = assertThrows(IOException.class, () -> missing.call(60_000, "ping"));
        assertEquals(first.getMessage(), again.getMessage(), "the remembered failure, not a new attempt");
    }

    @Test
    void jsonAndConfigurationHelpers() {
        Map<String, String> flink = new TreeMap<>();
        flink.put("heliosdb.crypto.kms.uri", "local:///a \"b\"\\c\n");
        flink.put("state.backend.type", "rocksdb");
        Map<String, String> c = LibPython.cryptoConf(flink);
        assertEquals(1, c.size());
        assertEquals("{\"heliosdb.crypto.kms.uri\":\"local:///a \\\"b\\\"\\\\c\\u000a\"}", LibPython.toJson(c));
        assertEquals("ConfigError: x", LibPython.translate(new RuntimeException("<class 'a.b.ConfigError'>: x")).getMessage());
        IOException io = new IOException("kept");
        assertEquals(io, LibPython.translate(io));
    }
}

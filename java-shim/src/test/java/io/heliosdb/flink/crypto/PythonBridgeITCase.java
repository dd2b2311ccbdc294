package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one bridge both jars use, with the venv's Python: one pool per class loader, typed failures of a Future. */
class PythonBridgeITCase {

    @Test
    void thePluginAndTheLibShareOneBridgeInOneClassLoader() throws Exception {
        Map<String, String> conf = TestSupport.conf("local:///unused.json", "64");
        PythonBridge plugin = PythonBridge.get(TestSupport.python());
        assertSame(plugin, PythonBridge.shared(conf));
        assertEquals(PythonBridge.WORKERS, Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("heliosdb-crypto-python-")).count(), "no second pool");
    }

    @Test
    void aFutureFailsWithTheTypedErrorAsItsCause() throws Exception {
        PythonBridge b = PythonBridge.get(TestSupport.python());
        PythonCall c = b.submit("configure", "{\"heliosdb.crypto.segment-size\": \"abc\"}");
        ExecutionException e = assertThrows(ExecutionException.class, c::get);
        assertInstanceOf(ConfigException.class, e.getCause());
        assertTrue(c.isDone());
        assertEquals(b.submit("ping").get(), b.call("ping"));
    }
}

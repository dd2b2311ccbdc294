package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one bridge both jars use, without a Python: a start that fails and is remembered, waits with a deadline. */
class PythonBridgeTest {

    @Test
    void aPythonThatCannotStartFailsEveryCallWithoutRetryingEachTimeUntilAnotherIsNamed() throws Exception {
        PythonBridge missing = new PythonBridge("/nonexistent/bin/python3").ensureWorkers(1);
        IOException first = assertThrows(IOException.class, () -> missing.call(60_000, "ping"));
        assertTrue(first.getMessage().contains("heliosdb.crypto.python.executable: cannot run /nonexistent/bin/python3"),
                first.getMessage());
        IOException again = assertThrows(IOException.class, () -> missing.call(60_000, "ping"));
        assertSame(first, again, "the remembered failure, not a new attempt");
        missing.use("/nonexistent/bin/python4");
        IOException other = assertThrows(IOException.class, () -> missing.call(60_000, "ping"));
        assertTrue(other.getMessage().contains("cannot run /nonexistent/bin/python4"), "another executable is tried at once");
    }

    @Test
    void aCallNotAnsweredInTimeFailsNamingTheOperation() {
        PythonBridge idle = new PythonBridge(TestSupport.python()); // no worker: nothing answers
        IOException e = assertThrows(IOException.class, () -> idle.call(50, "flink_metrics", "{}"));
        assertEquals("heliosdb crypto: Python (" + TestSupport.python() + ") did not answer flink_metrics within 50 ms",
                e.getMessage());
        assertThrows(java.util.concurrent.TimeoutException.class, () -> idle.submit("ping").get(1, TimeUnit.MILLISECONDS));
    }
}

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
    void aPackageOfAnotherBridgeProtocolIsRefusedNamingItsVersionAndTheFix() throws Exception {
        PythonLaunch.checkProtocol(FormatConstants.BRIDGE_PROTOCOL, () -> {
            throw new AssertionError("the version is asked for a refusal's message only");
        }, "/venv/bin/python");
        IOException newer = assertThrows(IOException.class,
                () -> PythonLaunch.checkProtocol(FormatConstants.BRIDGE_PROTOCOL + 1, () -> "0.2.0", "/venv/bin/python"));
        assertEquals("heliosdb crypto: this jar speaks bridge protocol " + FormatConstants.BRIDGE_PROTOCOL
                + ", but heliosdb_flink_crypto 0.2.0 (/venv/bin/python) speaks protocol "
                + (FormatConstants.BRIDGE_PROTOCOL + 1)
                + ": install the jars of the installed package (heliosdb-flink-crypto flink install)", newer.getMessage());
        IOException unknown = new IOException("ValueError: unknown operation 'protocol'");
        IOException older = assertThrows(IOException.class,
                () -> PythonLaunch.checkProtocol(unknown, () -> "0.1.0", "/venv/bin/python"));
        assertTrue(older.getMessage().contains("speaks an older protocol: install the jars"), older.getMessage());
        assertSame(unknown, older.getCause());
        assertThrows(IOException.class, () -> PythonLaunch.checkProtocol("2", () -> "0.1.0", "/venv/bin/python"));
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

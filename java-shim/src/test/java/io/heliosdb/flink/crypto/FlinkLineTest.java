package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.runtime.util.EnvironmentInformation;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A jar refuses a Flink of another line with a message naming both, before anything else runs. */
class FlinkLineTest {

    @Test
    void theJarIsBuiltForTheFlinkItIsCompiledAndTestedAgainst() {
        String running = EnvironmentInformation.getVersion();
        assertEquals(System.getProperty("heliosdb.flink.line"), FlinkLine.built());
        assertEquals(FlinkLine.built(), FlinkLine.lineOf(running), "flink-runtime " + running);
        assertDoesNotThrow(() -> FlinkLine.check("test"));
        assertDoesNotThrow(() -> new Schemes.EncFile().configure(new Configuration()));
    }

    @Test
    void anotherLineIsRefusedNamingBothLines() {
        String other = FlinkLine.built().equals("1.20") ? "2.3.0" : "1.20.3";
        IllegalConfigurationException e = assertThrows(IllegalConfigurationException.class,
                () -> FlinkLine.check(other, "the enc+ FileSystem plugin"));
        String m = e.getMessage();
        assertTrue(m.contains("built for Flink " + FlinkLine.built()) && m.contains("runs on Flink " + other)
                && m.contains("install the jar for Flink " + FlinkLine.lineOf(other)), m);
    }

    @Test
    void anUnknownRunningVersionPasses() {
        assertDoesNotThrow(() -> FlinkLine.check("<unknown>", "test"));
        assertDoesNotThrow(() -> FlinkLine.check(null, "test"));
        assertNull(FlinkLine.lineOf("<unknown>"));
        assertEquals("1.20", FlinkLine.lineOf("1.20.3"));
        assertEquals("2.3", FlinkLine.lineOf("2.3-SNAPSHOT"));
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.IllegalConfigurationException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * The Flink line (major.minor, e.g. {@code 2.3} or {@code 1.20}) this jar was built for, from
 * {@code heliosdb-shim.properties} (written by Maven), checked against the Flink that loads it before
 * anything version-specific runs: a jar built for another line fails with a message naming both lines
 * and the jar to install, instead of a {@code NoSuchMethodError} from deep inside a checkpoint.
 * Compiled into the plugin jar and the lib jar.
 */
public final class FlinkLine {

    private static final Properties BUILD = load();

    private FlinkLine() {
    }

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = FlinkLine.class.getResourceAsStream("heliosdb-shim.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    /** The line this jar was built for ({@code "?"} when the build wrote none). */
    public static String built() {
        return BUILD.getProperty("flink.line", "?");
    }

    /** major.minor of a Flink version string ({@code 1.20.3} -> {@code 1.20}); null if it has none. */
    static String lineOf(String version) {
        if (version == null) {
            return null;
        }
        String[] parts = version.trim().split("[.-]");
        if (parts.length < 2 || !parts[0].matches("\\d+") || !parts[1].matches("\\d+")) {
            return null;
        }
        return parts[0] + "." + parts[1];
    }

    /**
     * Refuses a running Flink of another line than {@link #built()}; {@code component} names what checks
     * (e.g. the FileSystem factory). An unknown running version (no version file) passes.
     */
    public static void check(String runningVersion, String component) {
        String running = lineOf(runningVersion);
        if (running == null || running.equals(built())) {
            return;
        }
        throw new IllegalConfigurationException("heliosdb-flink-crypto: " + component + " was built for Flink "
                + built() + " but runs on Flink " + runningVersion + ": install the jar for Flink " + running
                + " (`heliosdb-flink-crypto flink install FLINK_HOME` picks it; `heliosdb-flink-crypto --version` "
                + "lists the lines this package supports)");
    }

    /** {@link #check(String, String)} against the Flink of this JVM. */
    public static void check(String component) {
        check(runningVersion(), component);
    }

    /** The version of the Flink in this JVM (flink-runtime's version file), or null. */
    static String runningVersion() {
        try {
            Class<?> info = Class.forName("org.apache.flink.runtime.util.EnvironmentInformation");
            Object v = info.getMethod("getVersion").invoke(null);
            return v == null ? null : v.toString();
        } catch (ReflectiveOperationException | LinkageError e) {
            return null; // flink-core alone (no runtime on the class path): nothing to compare with
        }
    }
}

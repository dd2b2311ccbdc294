package io.heliosdb.flink.crypto.lib;

import org.apache.flink.runtime.clusterframework.types.ResourceID;
import org.apache.flink.runtime.metrics.NoOpMetricRegistry;
import org.apache.flink.runtime.metrics.groups.AbstractMetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskManagerMetricGroup;
import org.apache.flink.metrics.Metric;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Shared by the lib tests: the venv's Python, a keyring made at test time, recording metric groups. */
final class LibTestSupport {
    private LibTestSupport() {
    }

    static String python() {
        return System.getProperty("heliosdb.python", "python3");
    }

    /** A keyring file made now (never committed); its local:// URI. */
    static String keyring(Path dir) throws Exception {
        String uri = "local://" + dir.resolve("keyring.json").toAbsolutePath();
        Process p = new ProcessBuilder(python(), "-c",
                "from heliosdb_flink_crypto.kms.local import LocalKeyring\nLocalKeyring.create('" + uri + "')\n")
                .redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("python failed: " + new String(out, StandardCharsets.UTF_8));
        }
        return uri;
    }

    /** heliosdb.crypto.* entries for this JVM's Python (rotation off: tests must not rotate keyrings). */
    static Map<String, String> crypto(String kmsUri) {
        Map<String, String> c = new HashMap<>();
        c.put("heliosdb.crypto.kms.uri", kmsUri);
        c.put("heliosdb.crypto.python.executable", python());
        c.put("heliosdb.crypto.rotation.enabled", "false");
        return c;
    }

    /** A metric registry that records "group-scope/name" of every metric registered through it. */
    static final class RecordingRegistry extends NoOpMetricRegistry {
        final List<String> registered = new ArrayList<>();
        final Map<String, Metric> metrics = new HashMap<>();

        @Override
        @SuppressWarnings("rawtypes") // raw: the parameter is AbstractMetricGroup<?> in Flink 2.x, raw in 1.20
        public synchronized void register(Metric metric, String name, AbstractMetricGroup group) {
            String id = String.join(".", group.getScopeComponents()) + "/" + name;
            registered.add(id);
            metrics.put(id, metric);
        }

        /** heliosdb_* metrics registered on the group whose scope is exactly {@code scope}. */
        synchronized long count(String scope) {
            return heliosdb().stream().filter(id -> id.substring(0, id.indexOf('/')).equals(scope)).count();
        }

        /** Every heliosdb_* metric registered (Flink's own operator metrics left out). */
        synchronized List<String> heliosdb() {
            List<String> out = new ArrayList<>();
            for (String id : registered) {
                if (id.substring(id.indexOf('/') + 1).startsWith("heliosdb_")) {
                    out.add(id);
                }
            }
            return out;
        }

        TaskManagerMetricGroup taskManager(String host) {
            return TaskManagerMetricGroup.createTaskManagerMetricGroup(this, host, ResourceID.generate());
        }
    }
}

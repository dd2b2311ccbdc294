package io.heliosdb.flink.crypto.lib;

import org.apache.flink.api.common.JobID;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.executiongraph.ExecutionAttemptID;
import org.apache.flink.runtime.metrics.groups.TaskManagerMetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The gauges' cache and failure rules (a stand-in source), and where they are registered. */
class FlinkGaugesTest {

    static final int ENCRYPTIONS = 0;

    /** A source answering with {@code answers}, counting fetches. */
    static final class Source implements FlinkGauges.Source {
        final AtomicInteger fetches = new AtomicInteger();
        volatile Supplier<Future<Object>> next;

        Source(Supplier<Future<Object>> next) {
            this.next = next;
        }

        @Override
        public Future<Object> fetch() {
            fetches.incrementAndGet();
            return next.get();
        }
    }

    static Future<Object> answer(String json) {
        return CompletableFuture.completedFuture(json);
    }

    @Test
    void oneFetchRefreshesEveryGaugeAtMostOncePerSecond() throws Exception {
        Source s = new Source(() -> answer("{\"heliosdb_checkpoint_encryption_total\": 3.0, \"heliosdb_kms_calls_total\": 2}"));
        FlinkGauges g = new FlinkGauges(s);
        assertEquals(3.0, g.value(ENCRYPTIONS));
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1));
        assertEquals(0.0, g.value(1));
        assertEquals(1, s.fetches.get(), "every gauge read within a second shares one Python call");
        s.next = () -> answer("{\"heliosdb_checkpoint_encryption_total\": 5.0}");
        Thread.sleep(FlinkGauges.REFRESH_MILLIS + 50);
        assertEquals(5.0, g.value(ENCRYPTIONS));
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1), "a name missing from the answer keeps its value");
        assertEquals(2, s.fetches.get());
    }

    @Test
    void aFailedRefreshKeepsTheLastValuesAndNeverThrows() throws Exception {
        Source s = new Source(() -> answer("{\"heliosdb_checkpoint_encryption_total\": 7.0}"));
        FlinkGauges g = new FlinkGauges(s);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        CompletableFuture<Object> failed = new CompletableFuture<>();
        failed.completeExceptionally(new RuntimeException("<class 'x.ConfigError'>: heliosdb.crypto.kms.uri: is required"));
        s.next = () -> failed;
        Thread.sleep(FlinkGauges.REFRESH_MILLIS + 50);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        s.next = () -> answer("not json");
        Thread.sleep(FlinkGauges.REFRESH_MILLIS + 50);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        s.next = () -> {
            throw new IllegalStateException("Python cannot start");
        };
        Thread.sleep(FlinkGauges.REFRESH_MILLIS + 50);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        assertEquals(4, s.fetches.get());
    }

    @Test
    void aSlowAnswerDoesNotHoldTheReporterAndIsAppliedAtTheNextRead() {
        CompletableFuture<Object> slow = new CompletableFuture<>();
        Source s = new Source(() -> slow);
        FlinkGauges g = new FlinkGauges(s);
        long t0 = System.nanoTime();
        assertEquals(0.0, g.value(ENCRYPTIONS));
        long waitedMillis = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(waitedMillis >= FlinkGauges.WAIT_MILLIS - 10 && waitedMillis < 2000, "waited " + waitedMillis);
        t0 = System.nanoTime();
        assertEquals(0.0, g.value(1), "other gauges do not wait again for the same call");
        assertTrue((System.nanoTime() - t0) / 1_000_000 < FlinkGauges.WAIT_MILLIS);
        slow.complete("{\"heliosdb_checkpoint_encryption_total\": 9.0}");
        assertEquals(9.0, g.value(ENCRYPTIONS));
        assertEquals(1, s.fetches.get());
    }

    @Test
    void parseReadsPythonJsonAndRefusesGarbage() {
        double[] prev = new double[FlinkGauges.NAMES.length];
        double[] v = FlinkGauges.parse("{\"heliosdb_auth_failures_total\": 1e-05, \"other\": 4}", prev);
        assertEquals(1e-05, v[java.util.Arrays.asList(FlinkGauges.NAMES).indexOf("heliosdb_auth_failures_total")]);
        assertEquals(0.0, prev[0], "the previous array is not modified");
        assertEquals(0.0, FlinkGauges.parse("{}", prev)[0]);
        assertThrows(IllegalArgumentException.class, () -> FlinkGauges.parse("Traceback ...", prev));
    }

    @Test
    void theFirstRegistrationWaitsForOneReadAndLaterOnesDoNot() {
        Source s = new Source(() -> answer("{\"heliosdb_kms_calls_total\": 2}"));
        FlinkGauges g = new FlinkGauges(s);
        g.switchOn(FlinkGauges.SWITCH_ON_MILLIS);
        assertEquals(1, s.fetches.get(), "the first registration reads once (it switches Python's metrics on)");
        g.switchOn(FlinkGauges.SWITCH_ON_MILLIS);
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1), "that answer is applied at the next read");
        assertEquals(1, s.fetches.get(), "and within the second no read is repeated");
    }

    @Test
    void registeredOnTheTaskManagerOnceAndOnEveryOperatorGroup(@TempDir java.nio.file.Path tmp) throws Exception {
        Map<String, String> conf = LibTestSupport.crypto(LibTestSupport.keyring(tmp)); // the real Python
        LibTestSupport.RecordingRegistry registry = new LibTestSupport.RecordingRegistry();
        TaskManagerMetricGroup tm = registry.taskManager("tm-host-a");
        TaskMetricGroup task1 = tm.addJob(new JobID(), "job").addTask(ExecutionAttemptID.randomId(), "count");
        TaskMetricGroup task2 = tm.addJob(new JobID(), "job2").addTask(ExecutionAttemptID.randomId(), "count");
        MetricGroup op1 = task1.getOrAddOperator("count");
        MetricGroup op2 = task2.getOrAddOperator("other");
        FlinkGauges.register(conf, task1, op1);
        FlinkGauges.register(conf, task1, op1); // the same operator's backend again
        FlinkGauges.register(conf, task2, op2); // a second job in the same TaskManager
        int n = FlinkGauges.NAMES.length;
        String tmScope = "tm-host-a.taskmanager." + tm.taskManagerId();
        assertEquals(n, registry.count(tmScope), registry.registered.toString());
        assertEquals(n, registry.count(String.join(".", op1.getScopeComponents())));
        assertEquals(n, registry.count(String.join(".", op2.getScopeComponents())));
        assertEquals(3 * n, registry.heliosdb().size(), "nothing registered twice");
        assertTrue(registry.registered.contains(tmScope + "/heliosdb_checkpoint_encryption_total"));
        assertTrue(registry.heliosdb().stream().allMatch(id -> registry.metrics.get(id) instanceof Gauge));
        assertEquals(tm, FlinkGauges.taskManagerGroup(task1));
        FlinkGauges.register(conf, null, null); // nothing to register on: no error
    }
}

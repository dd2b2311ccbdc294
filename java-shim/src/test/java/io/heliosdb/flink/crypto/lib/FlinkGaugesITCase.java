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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Where the gauges are registered, read from the real Python. */
class FlinkGaugesITCase {

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

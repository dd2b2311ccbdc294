package io.heliosdb.flink.crypto.lib;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.execution.Environment;
import org.apache.flink.runtime.executiongraph.ExecutionAttemptID;
import org.apache.flink.runtime.metrics.groups.TaskManagerMetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.StateBackendLoader;
import org.apache.flink.runtime.state.delegate.DelegatingStateBackend;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The metered state backend: loaded by Flink's own loader, delegating everything, adding gauges. */
class MeteredStateBackendTest {

    static final ClassLoader CL = MeteredStateBackendTest.class.getClassLoader();

    static Configuration config(String backend) {
        Configuration c = new Configuration();
        c.setString("state.backend.type", MeteredStateBackendFactory.class.getName());
        if (backend != null) {
            c.setString("heliosdb.crypto.state-backend", backend);
        }
        c.setString("heliosdb.crypto.kms.uri", "local:///nowhere/keyring.json");
        c.setString("heliosdb.crypto.python.executable", LibTestSupport.python());
        return c;
    }

    @Test
    void flinksLoaderMakesItFromTheMergedJobAndClusterConfiguration() throws Exception {
        Configuration cluster = config(null);
        Configuration job = new Configuration();
        job.setString("state.backend.type", MeteredStateBackendFactory.class.getName());
        StateBackend b = StateBackendLoader.fromApplicationOrConfigOrDefault(null, job, cluster, CL, null);
        assertTrue(b instanceof MeteredStateBackend, String.valueOf(b));
        MeteredStateBackend m = (MeteredStateBackend) b;
        assertTrue(m.getDelegate() instanceof HashMapStateBackend, "hashmap is the default");
        assertEquals(m.getDelegate().getName(), m.getName());
        assertFalse(b instanceof DelegatingStateBackend,
                "the changelog backend refuses to wrap a DelegatingStateBackend");
        assertEquals("local:///nowhere/keyring.json", m.conf().get("heliosdb.crypto.kms.uri"));
        assertFalse(m.conf().containsKey("state.backend.type"), "only heliosdb.crypto.* goes to Python");
    }

    @Test
    void refusesItselfAndUnknownBackendsNamingTheOption() {
        MeteredStateBackendFactory f = new MeteredStateBackendFactory();
        IllegalConfigurationException self = assertThrows(IllegalConfigurationException.class,
                () -> f.createFromConfig(config(MeteredStateBackendFactory.class.getName()), CL));
        assertTrue(self.getMessage().startsWith("heliosdb.crypto.state-backend: "), self.getMessage());
        IllegalConfigurationException blank = assertThrows(IllegalConfigurationException.class,
                () -> f.createFromConfig(config(" "), CL));
        assertTrue(blank.getMessage().contains("heliosdb.crypto.state-backend"));
        IllegalConfigurationException unknown = assertThrows(IllegalConfigurationException.class,
                () -> f.createFromConfig(config("com.example.NoSuchFactory"), CL));
        assertTrue(unknown.getMessage().contains("heliosdb.crypto.state-backend")
                && unknown.getMessage().contains("com.example.NoSuchFactory"), unknown.getMessage());
    }

    @Test
    void delegatesEveryDecisionToTheRealBackend() throws Exception {
        MeteredStateBackend m = new MeteredStateBackendFactory().createFromConfig(
                config(RecordingBackend.Factory.class.getName()), CL);
        RecordingBackend real = (RecordingBackend) m.getDelegate();
        assertEquals("recording", m.getName());
        assertTrue(m.useManagedMemory());
        assertFalse(m.supportsNoClaimRestoreMode());
        assertTrue(m.supportsSavepointFormat(SavepointFormatType.CANONICAL));
        assertFalse(m.supportsSavepointFormat(SavepointFormatType.NATIVE));
        assertTrue(m.supportsAsyncKeyedStateBackend());
        assertEquals(null, m.createOperatorStateBackend(null));
        assertEquals(1, real.calls.size());
        StateBackend configured = m.configure(new Configuration(), CL);
        assertTrue(configured instanceof MeteredStateBackend);
        assertTrue(((RecordingBackend) ((MeteredStateBackend) configured).getDelegate()).configured);
    }

    @Test
    void keyedBackendsAreTheDelegatesAndBringTheGauges() throws Exception {
        MeteredStateBackend m = new MeteredStateBackendFactory().createFromConfig(
                config(RecordingBackend.Factory.class.getName()), CL);
        RecordingBackend real = (RecordingBackend) m.getDelegate();
        LibTestSupport.RecordingRegistry registry = new LibTestSupport.RecordingRegistry();
        TaskManagerMetricGroup tm = registry.taskManager("tm-host-b");
        TaskMetricGroup task = tm.addJob(new JobID(), "job").addTask(ExecutionAttemptID.randomId(), "count");
        MetricGroup op = task.getOrAddOperator("count");
        StateBackend.KeyedStateBackendParameters<Long> params = params(task, op);
        assertEquals(null, m.createKeyedStateBackend(params));
        assertSame(params, real.calls.get(0), "the delegate got the very parameters");
        assertEquals(null, m.createAsyncKeyedStateBackend(params));
        assertEquals("async", real.calls.get(1));
        int n = FlinkGauges.NAMES.length;
        assertEquals(n, registry.count("tm-host-b.taskmanager." + tm.taskManagerId()));
        assertEquals(n, registry.count(String.join(".", op.getScopeComponents())));
        assertEquals(2 * n, registry.heliosdb().size());
        // parameters that fail to give their groups never fail the task
        @SuppressWarnings("unchecked")
        StateBackend.KeyedStateBackendParameters<Long> broken = (StateBackend.KeyedStateBackendParameters<Long>)
                Proxy.newProxyInstance(CL, new Class<?>[]{StateBackend.KeyedStateBackendParameters.class}, (p, meth, a) -> {
                    throw new IllegalStateException("no environment");
                });
        assertEquals(null, m.createKeyedStateBackend(broken));
    }

    @SuppressWarnings("unchecked")
    static StateBackend.KeyedStateBackendParameters<Long> params(TaskMetricGroup task, MetricGroup op) {
        Environment env = (Environment) Proxy.newProxyInstance(CL, new Class<?>[]{Environment.class},
                (p, meth, a) -> meth.getName().equals("getMetricGroup") ? task : null);
        return (StateBackend.KeyedStateBackendParameters<Long>) Proxy.newProxyInstance(CL,
                new Class<?>[]{StateBackend.KeyedStateBackendParameters.class}, (p, meth, a) -> {
                    switch (meth.getName()) {
                        case "getEnv":
                            return env;
                        case "getMetricGroup":
                            return op;
                        case "hashCode":
                            return 1;
                        case "equals":
                            return p == a[0];
                        default:
                            return null;
                    }
                });
    }
}

package io.heliosdb.flink.crypto.lib;

import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.execution.Environment;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;
import org.apache.flink.runtime.state.AsyncKeyedStateBackend;
import org.apache.flink.runtime.state.CheckpointableKeyedStateBackend;
import org.apache.flink.runtime.state.ConfigurableStateBackend;
import org.apache.flink.runtime.state.OperatorStateBackend;
import org.apache.flink.runtime.state.StateBackend;

import java.util.Map;
import java.util.TreeMap;

/**
 * A state backend that registers the crypto gauges ({@link FlinkGauges}) when a keyed backend is
 * made, and delegates EVERYTHING else to the real backend: keyed and async keyed backends (the
 * delegate's own instances, so RocksDB incremental checkpoints, ForSt and every {@code instanceof}
 * check on the keyed backend behave as without it), operator backends, managed memory, restore
 * modes, savepoint formats, its name, and {@code configure}.
 *
 * <p>It deliberately does NOT implement {@code DelegatingStateBackend}: Flink's changelog backend
 * (and the deactivated one used to restore changelog checkpoints) refuse to wrap a delegating
 * backend ("Recursive Delegation is not supported"), so with it {@code state.changelog.enabled} would
 * fail; as a plain backend Flink wraps it exactly as it wraps the real one.
 */
public class MeteredStateBackend implements ConfigurableStateBackend {

    private static final long serialVersionUID = 1L;

    private final StateBackend delegate;
    /** The {@code heliosdb.crypto.*} entries, to configure Python if nothing did yet in this JVM. */
    private final TreeMap<String, String> conf;

    public MeteredStateBackend(StateBackend delegate, Map<String, String> conf) {
        if (delegate == null) {
            throw new IllegalArgumentException("delegate state backend is null");
        }
        this.delegate = delegate;
        this.conf = new TreeMap<>(conf);
    }

    /** The {@code heliosdb.crypto.*} entries it configures Python with. */
    Map<String, String> conf() {
        return java.util.Collections.unmodifiableMap(conf);
    }

    /** The real state backend. */
    public StateBackend getDelegate() {
        return delegate;
    }

    @Override
    public String getName() {
        return delegate.getName();
    }

    @Override
    public <K> CheckpointableKeyedStateBackend<K> createKeyedStateBackend(KeyedStateBackendParameters<K> parameters)
            throws Exception {
        register(parameters);
        return delegate.createKeyedStateBackend(parameters);
    }

    /** Raw return type: generic in Flink 2.x, raw in 1.20 (the erasure overrides both). */
    @Override
    @SuppressWarnings({"rawtypes", "unchecked"})
    public <K> AsyncKeyedStateBackend createAsyncKeyedStateBackend(KeyedStateBackendParameters<K> parameters)
            throws Exception {
        register(parameters);
        return delegate.createAsyncKeyedStateBackend(parameters);
    }

    /** Adds the gauges (never throws: metrics must not fail a task). */
    private void register(KeyedStateBackendParameters<?> parameters) {
        TaskMetricGroup task = null;
        MetricGroup operator = null;
        try {
            Environment env = parameters.getEnv();
            task = env == null ? null : env.getMetricGroup();
            operator = parameters.getMetricGroup();
        } catch (RuntimeException e) {
            // no groups: register what we have
        }
        FlinkGauges.register(conf, task, operator);
    }

    @Override
    public boolean supportsAsyncKeyedStateBackend() {
        return delegate.supportsAsyncKeyedStateBackend();
    }

    @Override
    public OperatorStateBackend createOperatorStateBackend(OperatorStateBackendParameters parameters) throws Exception {
        return delegate.createOperatorStateBackend(parameters);
    }

    @Override
    public boolean useManagedMemory() {
        return delegate.useManagedMemory();
    }

    @Override
    public boolean supportsNoClaimRestoreMode() {
        return delegate.supportsNoClaimRestoreMode();
    }

    @Override
    public boolean supportsSavepointFormat(SavepointFormatType formatType) {
        return delegate.supportsSavepointFormat(formatType);
    }

    @Override
    public StateBackend configure(ReadableConfig config, ClassLoader classLoader) throws IllegalConfigurationException {
        if (delegate instanceof ConfigurableStateBackend) {
            StateBackend configured = ((ConfigurableStateBackend) delegate).configure(config, classLoader);
            return configured == delegate ? this : new MeteredStateBackend(configured, conf);
        }
        return this;
    }

    @Override
    public String toString() {
        return "MeteredStateBackend(" + delegate + ")";
    }
}

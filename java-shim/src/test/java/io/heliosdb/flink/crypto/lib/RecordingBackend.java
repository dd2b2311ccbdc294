package io.heliosdb.flink.crypto.lib;

import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.state.AsyncKeyedStateBackend;
import org.apache.flink.runtime.state.CheckpointableKeyedStateBackend;
import org.apache.flink.runtime.state.ConfigurableStateBackend;
import org.apache.flink.runtime.state.OperatorStateBackend;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.StateBackendFactory;

import java.util.ArrayList;
import java.util.List;

/** A state backend whose every answer differs from StateBackend's defaults, recording each call. */
public class RecordingBackend implements ConfigurableStateBackend {
    private static final long serialVersionUID = 1L;

    final List<Object> calls = new ArrayList<>();
    final boolean configured;

    RecordingBackend(boolean configured) {
        this.configured = configured;
    }

    /** {@code heliosdb.crypto.state-backend: io.heliosdb.flink.crypto.lib.RecordingBackend$Factory}. */
    public static class Factory implements StateBackendFactory<RecordingBackend> {
        @Override
        public RecordingBackend createFromConfig(ReadableConfig config, ClassLoader classLoader) {
            return new RecordingBackend(false);
        }
    }

    @Override
    public String getName() {
        return "recording";
    }

    @Override
    public <K> CheckpointableKeyedStateBackend<K> createKeyedStateBackend(KeyedStateBackendParameters<K> p) {
        calls.add(p);
        return null;
    }

    @Override
    @SuppressWarnings("rawtypes")
    public <K> AsyncKeyedStateBackend createAsyncKeyedStateBackend(KeyedStateBackendParameters<K> p) {
        calls.add("async");
        calls.add(p);
        return null;
    }

    @Override
    public boolean supportsAsyncKeyedStateBackend() {
        return true;
    }

    @Override
    public OperatorStateBackend createOperatorStateBackend(OperatorStateBackendParameters p) {
        calls.add(p);
        return null;
    }

    @Override
    public boolean useManagedMemory() {
        return true;
    }

    @Override
    public boolean supportsNoClaimRestoreMode() {
        return false;
    }

    @Override
    public boolean supportsSavepointFormat(SavepointFormatType formatType) {
        return formatType == SavepointFormatType.CANONICAL;
    }

    @Override
    public StateBackend configure(ReadableConfig config, ClassLoader classLoader) throws IllegalConfigurationException {
        return new RecordingBackend(true);
    }
}

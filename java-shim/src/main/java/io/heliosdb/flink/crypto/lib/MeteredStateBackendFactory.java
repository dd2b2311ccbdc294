package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.CryptoOptions;
import io.heliosdb.flink.crypto.FlinkLine;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.StateBackendFactory;
import org.apache.flink.runtime.state.StateBackendLoader;
import org.apache.flink.util.DynamicCodeLoadingException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;

/**
 * {@code state.backend.type: io.heliosdb.flink.crypto.lib.MeteredStateBackendFactory}: the state
 * backend named by {@code heliosdb.crypto.state-backend} ({@code hashmap} by default, {@code rocksdb},
 * {@code forst} or a StateBackendFactory class), loaded by Flink's own StateBackendLoader from the
 * same configuration with {@code state.backend.type} replaced, wrapped in a
 * {@link MeteredStateBackend}. Changelog is left to Flink: it wraps the metered backend as it would
 * wrap the real one ({@code state.changelog.enabled}).
 *
 * <p>Cheap: no Python here (the client and the JobManager load this factory too); Python starts on a
 * TaskManager when the first gauge is read.
 */
public class MeteredStateBackendFactory implements StateBackendFactory<MeteredStateBackend> {

    private static final Logger LOG = LoggerFactory.getLogger(MeteredStateBackendFactory.class);
    static final String STATE_BACKEND_TYPE = "state.backend.type";
    static final String CHANGELOG_ENABLED = "state.changelog.enabled";

    @Override
    public MeteredStateBackend createFromConfig(ReadableConfig config, ClassLoader classLoader)
            throws IllegalConfigurationException, IOException {
        FlinkLine.check("the lib jar's metered state backend");
        String name = config.get(CryptoOptions.STATE_BACKEND);
        name = name == null ? "" : name.trim();
        if (name.isEmpty() || name.equals(MeteredStateBackendFactory.class.getName())) {
            throw new IllegalConfigurationException(CryptoOptions.STATE_BACKEND.key()
                    + ": name the real state backend (hashmap, rocksdb, forst or a StateBackendFactory class), not '"
                    + name + "'");
        }
        Configuration inner = Configuration.fromMap(config.toMap());
        inner.setString(STATE_BACKEND_TYPE, name);
        inner.setString(CHANGELOG_ENABLED, "false"); // Flink wraps the metered backend itself
        StateBackend delegate;
        try {
            delegate = StateBackendLoader.loadStateBackendFromConfig(inner, classLoader, LOG);
        } catch (DynamicCodeLoadingException e) {
            throw new IllegalConfigurationException(CryptoOptions.STATE_BACKEND.key() + ": " + e.getMessage(), e);
        }
        if (delegate == null) {
            throw new IllegalConfigurationException(CryptoOptions.STATE_BACKEND.key() + ": no state backend '" + name + "'");
        }
        if (delegate instanceof MeteredStateBackend) {
            throw new IllegalConfigurationException(CryptoOptions.STATE_BACKEND.key() + ": '" + name
                    + "' is the metered backend itself");
        }
        LOG.info("heliosdb crypto: metered state backend delegating to {}", delegate.getClass().getSimpleName());
        return new MeteredStateBackend(delegate, CryptoOptions.fromFlink(config.toMap()));
    }
}

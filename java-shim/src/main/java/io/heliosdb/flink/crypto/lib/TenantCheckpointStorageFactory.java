package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.CryptoOptions;
import io.heliosdb.flink.crypto.FlinkLine;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.state.CheckpointStorageFactory;
import org.apache.flink.runtime.state.storage.FileSystemCheckpointStorage;

/**
 * {@code execution.checkpointing.storage} (or the deprecated {@code state.checkpoint-storage}):
 * {@code io.heliosdb.flink.crypto.lib.TenantCheckpointStorageFactory}. Flink's FileSystemCheckpointStorage
 * from the same configuration, plus the tenant guard ({@link TenantGuard}) on restore pointers.
 */
public class TenantCheckpointStorageFactory implements CheckpointStorageFactory<TenantCheckpointStorage> {

    @Override
    public TenantCheckpointStorage createFromConfig(ReadableConfig config, ClassLoader classLoader)
            throws IllegalConfigurationException {
        FlinkLine.check("the lib jar's tenant checkpoint storage");
        FileSystemCheckpointStorage storage = FileSystemCheckpointStorage.createFromConfig(config, classLoader);
        Path dir = storage.getCheckpointPath();
        TenantGuard guard = new TenantGuard(CryptoOptions.fromFlink(config.toMap()), dir == null ? null : dir.toString());
        boolean subDirs = config.get(CheckpointingOptions.CREATE_CHECKPOINT_SUB_DIR);
        return new TenantCheckpointStorage(storage, guard, subDirs);
    }
}

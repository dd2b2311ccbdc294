package io.heliosdb.flink.crypto.lib;

import org.apache.flink.api.common.JobID;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.state.CheckpointStorage;
import org.apache.flink.runtime.state.CheckpointStorageAccess;
import org.apache.flink.runtime.state.CheckpointStorageLocation;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.apache.flink.runtime.state.filesystem.FsCheckpointStorageAccess;
import org.apache.flink.runtime.state.storage.FileSystemCheckpointStorage;

import java.io.IOException;
import java.util.Objects;

/**
 * FileSystemCheckpointStorage with the tenant guard and encrypted restore pointers:
 * {@link #resolveCheckpoint} and the access's {@code resolveCheckpoint} (what the JobManager's
 * CheckpointCoordinator calls for {@code -s} / {@code execution.state-recovery.path}, savepoint or
 * retained checkpoint) first ask {@link TenantGuard#check}, then restore a pointer without {@code enc+}
 * whose {@code _metadata} is encrypted through its {@code enc+} twin ({@link EncryptedRestorePointer});
 * the access's {@code initializeLocationForSavepoint} (a savepoint being taken) asks
 * {@link TenantGuard#checkSavepoint} about its target directory (refused unencrypted when the
 * checkpoints are encrypted, tenants or not). The access is a
 * {@link FsCheckpointStorageAccess} subclass, so file merging, ForSt and every
 * {@code instanceof FsCheckpointStorageAccess} behave as with the plain storage. Without tenants
 * configured it never starts Python.
 */
public class TenantCheckpointStorage implements CheckpointStorage {

    private static final long serialVersionUID = 1L;

    private final FileSystemCheckpointStorage storage;
    private final TenantGuard guard;
    private final boolean createCheckpointSubDirs;

    TenantCheckpointStorage(FileSystemCheckpointStorage storage, TenantGuard guard, boolean createCheckpointSubDirs) {
        this.storage = storage;
        this.guard = guard;
        this.createCheckpointSubDirs = createCheckpointSubDirs;
    }

    @Override
    public CompletedCheckpointStorageLocation resolveCheckpoint(String pointer) throws IOException {
        guard.check(pointer);
        return storage.resolveCheckpoint(EncryptedRestorePointer.resolve(pointer));
    }

    @Override
    public CheckpointStorageAccess createCheckpointStorage(JobID jobId) throws IOException {
        return new Access(storage.getCheckpointPath(), storage.getSavepointPath(), createCheckpointSubDirs, jobId,
                storage.getMinFileSizeThreshold(), storage.getWriteBufferSize(), guard);
    }

    /** The wrapped FileSystemCheckpointStorage. */
    public FileSystemCheckpointStorage getDelegate() {
        return storage;
    }

    public Path getCheckpointPath() {
        return storage.getCheckpointPath();
    }

    public Path getSavepointPath() {
        return storage.getSavepointPath();
    }

    @Override
    public String toString() {
        return "TenantCheckpointStorage(" + storage + ")";
    }

    /** FsCheckpointStorageAccess whose restore pointers pass the tenant guard first, and are restored
     *  through their {@code enc+} twin when they name an encrypted checkpoint without it. */
    static final class Access extends FsCheckpointStorageAccess {
        private final TenantGuard guard;

        Access(Path checkpoints, Path savepoints, boolean subDirs, JobID jobId, int fileSizeThreshold,
               int writeBufferSize, TenantGuard guard) throws IOException {
            super(checkpoints, savepoints, subDirs, jobId, fileSizeThreshold, writeBufferSize);
            this.guard = guard;
        }

        @Override
        public CompletedCheckpointStorageLocation resolveCheckpoint(String pointer) throws IOException {
            guard.check(pointer);
            return super.resolveCheckpoint(EncryptedRestorePointer.resolve(pointer));
        }

        /** A savepoint of encrypted checkpoints is encrypted too, and goes under the job's own tenant
         *  only (else it is sealed with another tenant's keys). */
        @Override
        public CheckpointStorageLocation initializeLocationForSavepoint(long checkpointId, String externalLocationPointer)
                throws IOException {
            guard.checkSavepoint(externalLocationPointer != null ? externalLocationPointer
                    : Objects.toString(getDefaultSavepointDirectory(), null));
            return super.initializeLocationForSavepoint(checkpointId, externalLocationPointer);
        }
    }
}

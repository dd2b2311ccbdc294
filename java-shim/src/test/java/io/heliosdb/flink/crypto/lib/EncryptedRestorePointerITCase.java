package io.heliosdb.flink.crypto.lib;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.runtime.state.CheckpointStorageAccess;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A restore pointer without enc+ on an encrypted checkpoint is restored through its enc+ twin. */
class EncryptedRestorePointerITCase {

    @TempDir
    static Path tmp;
    static Configuration conf;

    @BeforeAll
    static void encryptedSchemes() throws Exception {
        conf = TenantCheckpointStorageITCase.config("file://" + tmp.resolve("job/cp"), false, LibTestSupport.keyring(tmp));
        FileSystem.initialize(conf, null); // the shim's enc+ factories are on the test class path
    }

    @AfterAll
    static void reset() {
        FileSystem.initialize(new Configuration(), null);
    }

    /** A checkpoint folder whose _metadata holds {@code body}, written through {@code scheme}. */
    static Path checkpoint(String name, String scheme, byte[] body) throws Exception {
        Path dir = tmp.resolve(name).resolve("chk-3");
        Files.createDirectories(dir);
        org.apache.flink.core.fs.Path metadata = new org.apache.flink.core.fs.Path(scheme + "://" + dir + "/_metadata");
        try (FSDataOutputStream out = metadata.getFileSystem().create(metadata, FileSystem.WriteMode.OVERWRITE)) {
            out.write(body);
        }
        return dir;
    }

    @Test
    void aBarePointerToAnEncryptedCheckpointIsRestoredThroughItsTwin() throws Exception {
        byte[] body = new byte[1000];
        Path dir = checkpoint("encrypted", "enc+file", body);
        TenantCheckpointStorage s = (TenantCheckpointStorage) TenantCheckpointStorageITCase.load(conf);
        CheckpointStorageAccess access = s.createCheckpointStorage(new JobID());
        for (String bare : new String[]{dir.toString(), "file://" + dir, "file:" + dir + "/_metadata"}) {
            for (CompletedCheckpointStorageLocation loc : new CompletedCheckpointStorageLocation[]{
                    access.resolveCheckpoint(bare), s.resolveCheckpoint(bare)}) {
                assertEquals("enc+file:" + dir, loc.getExternalPointer(), bare);
                // the length Flink sees is the plaintext one: read and authenticated through enc+file
                assertEquals(body.length, loc.getMetadataHandle().getStateSize(), bare);
            }
        }
    }

    @Test
    void plainAndEncPointersAreLeftAlone() throws Exception {
        byte[] flinkMagic = {0x49, 0x60, 0x67, 0x2d, 0, 0, 0, 3}; // Checkpoints' own magic number
        Path plain = checkpoint("plain", "file", flinkMagic);
        Path encrypted = checkpoint("named", "enc+file", new byte[10]);
        CheckpointStorageAccess access = TenantCheckpointStorageITCase.load(conf).createCheckpointStorage(new JobID());
        assertEquals("file:" + plain, access.resolveCheckpoint(plain.toString()).getExternalPointer());
        assertEquals("enc+file:" + encrypted, access.resolveCheckpoint("enc+file://" + encrypted).getExternalPointer());
        assertEquals("enc+s3://bucket/ckpt/chk-3", EncryptedRestorePointer.twin("s3://bucket/ckpt/chk-3"));
        assertEquals("enc+file:///data/x", EncryptedRestorePointer.twin("file:/data/x"));
    }
}

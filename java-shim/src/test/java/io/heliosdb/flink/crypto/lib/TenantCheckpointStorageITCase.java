package io.heliosdb.flink.crypto.lib;

import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.state.CheckpointStorage;
import org.apache.flink.runtime.state.CheckpointStorageAccess;
import org.apache.flink.runtime.state.CheckpointStorageLoader;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.apache.flink.runtime.state.filesystem.FsCheckpointStorageAccess;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tenant checkpoint storage: FileSystemCheckpointStorage plus the guard, Python's TenantRouter deciding. */
class TenantCheckpointStorageITCase {

    static final ClassLoader CL = TenantCheckpointStorageITCase.class.getClassLoader();

    @TempDir
    static Path tmp;
    static String keyring;

    @BeforeAll
    static void keys() throws Exception {
        keyring = LibTestSupport.keyring(tmp);
    }

    static Configuration config(String checkpointDir, boolean tenants) {
        return config(checkpointDir, tenants, keyring);
    }

    /** The checkpoint storage's configuration with {@code keyring} (a class of its own that has made one). */
    static Configuration config(String checkpointDir, boolean tenants, String keyring) {
        Configuration c = new Configuration();
        c.setString("execution.checkpointing.storage", TenantCheckpointStorageFactory.class.getName());
        c.setString("execution.checkpointing.dir", checkpointDir);
        for (Map.Entry<String, String> e : LibTestSupport.crypto(keyring).entrySet()) {
            c.setString(e.getKey(), e.getValue());
        }
        if (tenants) {
            for (String t : new String[]{"A", "B"}) {
                c.setString("heliosdb.crypto.tenants." + t + ".path-prefix", "file://" + tmp.resolve("tenant-" + t));
                c.setString("heliosdb.crypto.tenants." + t + ".kms.uri", keyring);
            }
        }
        return c;
    }

    /** A completed checkpoint directory (an empty _metadata: resolving never reads it). */
    static String checkpoint(String tenantDir, String name) throws IOException {
        Path dir = tmp.resolve(tenantDir).resolve(name).resolve("chk-3");
        Files.createDirectories(dir);
        Files.write(dir.resolve("_metadata"), new byte[0]);
        return "file://" + dir;
    }

    /** How Flink writes a path back (file:/x for file:///x). */
    static String flink(String uri) {
        return new org.apache.flink.core.fs.Path(uri).toString();
    }

    static CheckpointStorage load(Configuration c) throws Exception {
        return CheckpointStorageLoader.load(null, new HashMapStateBackend(), c, new Configuration(), CL, null);
    }

    @Test
    void withoutTenantsItIsFileSystemCheckpointStorage() throws Exception {
        CheckpointStorage s = load(config("file://" + tmp.resolve("plain/cp"), false));
        assertTrue(s instanceof TenantCheckpointStorage, String.valueOf(s));
        CheckpointStorageAccess access = s.createCheckpointStorage(new JobID());
        assertTrue(access instanceof FsCheckpointStorageAccess, "file merging and ForSt need this type");
        String elsewhere = checkpoint("tenant-A", "job-0");
        assertEquals(flink(elsewhere), s.resolveCheckpoint(elsewhere).getExternalPointer());
        assertEquals(flink(elsewhere), access.resolveCheckpoint(elsewhere).getExternalPointer());
        assertEquals(tmp.resolve("plain/cp").toString(), ((TenantCheckpointStorage) s).getCheckpointPath().getPath());
    }

    @Test
    void aJobRestoresItsOwnTenantsCheckpoints() throws Exception {
        TenantCheckpointStorage s = (TenantCheckpointStorage) load(
                config("file://" + tmp.resolve("tenant-B/job-2/cp"), true));
        CheckpointStorageAccess access = s.createCheckpointStorage(new JobID());
        assertTrue(access instanceof FsCheckpointStorageAccess, "file merging and ForSt need this type");
        String own = checkpoint("tenant-B", "job-1");
        CompletedCheckpointStorageLocation loc = access.resolveCheckpoint(own);
        assertEquals(flink(own), loc.getExternalPointer());
        assertEquals(flink(own), s.resolveCheckpoint(own).getExternalPointer());
    }

    @Test
    void anotherTenantsCheckpointIsRefusedBeforeAnyFileIsRead() throws Exception {
        String jobDir = "file://" + tmp.resolve("tenant-B/job-3/cp");
        TenantCheckpointStorage s = (TenantCheckpointStorage) load(config(jobDir, true));
        CheckpointStorageAccess access = s.createCheckpointStorage(new JobID());
        // not even there: the guard answers from the paths alone
        String foreign = "file://" + tmp.resolve("tenant-A/job-1/chk-9");
        for (IOException e : new IOException[]{
                assertThrows(IOException.class, () -> access.resolveCheckpoint(foreign)),
                assertThrows(IOException.class, () -> s.resolveCheckpoint(foreign))}) {
            String m = e.getMessage();
            assertTrue(m.startsWith("TenantRestoreError: " + foreign + ": restore refused"), m);
            assertTrue(m.contains("tenant 'A'") && m.contains("tenant 'B'") && m.contains("tenant-B/job-3/cp"), m);
            assertFalse(m.contains("keyring"), "no key material or key location in the message");
        }
        // taking a savepoint: only under the job's own tenant (else another tenant's keys would seal it)
        IOException sp = assertThrows(IOException.class,
                () -> access.initializeLocationForSavepoint(5, "file://" + tmp.resolve("tenant-A/savepoints")));
        assertTrue(sp.getMessage().contains("savepoint refused: the savepoint target belongs to tenant 'A'"), sp.getMessage());
        assertFalse(Files.exists(tmp.resolve("tenant-A/savepoints")), "nothing created under the other tenant");
        access.initializeLocationForSavepoint(6, "file://" + tmp.resolve("tenant-B/savepoints"));
        try (java.util.stream.Stream<Path> made = Files.list(tmp.resolve("tenant-B/savepoints"))) {
            assertTrue(made.anyMatch(p -> p.getFileName().toString().startsWith("savepoint-")), "own tenant: made");
        }
        // an untenanted path belongs to the default tenant: refused too
        IOException untenanted = assertThrows(IOException.class,
                () -> access.resolveCheckpoint("file://" + tmp.resolve("other/chk-1")));
        assertTrue(untenanted.getMessage().contains("'<default>'"), untenanted.getMessage());
    }

    @Test
    void aSavepointOfEncryptedCheckpointsIsNotTakenUnencrypted() throws Exception {
        String plain = "file://" + tmp.resolve("sp-plain");
        Configuration c = config("enc+file://" + tmp.resolve("enc/cp"), false);
        c.setString("execution.checkpointing.savepoint-dir", plain); // as a job's own configuration may
        CheckpointStorageAccess access = load(c).createCheckpointStorage(new JobID());
        String bare = tmp.resolve("sp-bare").toString();
        String[][] cases = { // target given, as shown, its encrypted form
            {plain, plain, "enc+" + plain},
            {null, "file:" + tmp.resolve("sp-plain"), "enc+" + plain}, // the savepoint directory, as Flink writes it
            {bare, bare, "enc+file://" + bare}};
        for (String[] t : cases) {
            IOException e = assertThrows(IOException.class, () -> access.initializeLocationForSavepoint(7, t[0]));
            assertEquals("savepoint refused: its target " + t[1] + " is not encrypted, but the job's checkpoints "
                    + "(enc+file:" + tmp.resolve("enc/cp") + ") are. Take it to " + t[2]
                    + ", or set heliosdb.crypto.allow-unencrypted-state-dirs: true to accept this.", e.getMessage());
        }
        assertFalse(Files.exists(tmp.resolve("sp-plain")) || Files.exists(tmp.resolve("sp-bare")), "nothing created");
        // encrypted: taken
        access.initializeLocationForSavepoint(8, "enc+file://" + tmp.resolve("sp-enc"));
        assertTrue(Files.isDirectory(tmp.resolve("sp-enc")), "the encrypted target is made");
        // the option accepts it
        c.setString("heliosdb.crypto.allow-unencrypted-state-dirs", "true");
        load(c).createCheckpointStorage(new JobID()).initializeLocationForSavepoint(9, plain);
        assertTrue(Files.isDirectory(tmp.resolve("sp-plain")), "accepted with the option");
    }
}

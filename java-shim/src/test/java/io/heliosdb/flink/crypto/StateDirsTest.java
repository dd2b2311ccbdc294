package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The enc+ file systems refuse a configuration that leaves state unencrypted next to encrypted
 *  checkpoints, naming every place, with the same cases as the Python rule (tests/vectors/state-dirs.json). */
class StateDirsTest {

    @Test
    void theSharedCasesFlagExactlyTheirKeys() throws Exception {
        JsonNode cases = VectorsITCase.load("state-dirs.json").get("cases");
        assertTrue(cases.size() >= 20, "cases: " + cases.size());
        for (JsonNode c : cases) {
            Map<String, String> conf = new HashMap<>();
            c.get("conf").fields().forEachRemaining(e -> conf.put(e.getKey(), e.getValue().asText()));
            List<String> want = new ArrayList<>();
            c.get("flagged").forEach(k -> want.add(k.asText()));
            List<String> got = new ArrayList<>();
            StateDirs.unencrypted(conf).forEach(p -> got.add(p[0]));
            assertEquals(want, got, conf.toString());
        }
    }

    static Configuration leaky() {
        Configuration c = new Configuration();
        c.setString("execution.checkpointing.dir", "enc+s3://bucket/checkpoints");
        c.setString("execution.checkpointing.savepoint-dir", "s3://bucket/savepoints");
        c.setString("state.changelog.enabled", "true");
        c.setString("state.changelog.dstl.dfs.base-path", "/data/dstl");
        return c;
    }

    @Test
    void theFileSystemRefusesToStartNamingEachPlaceAndTheWayOut() {
        IllegalConfigurationException e = assertThrows(IllegalConfigurationException.class,
                () -> new Schemes.EncS3().configure(leaky()));
        String m = e.getMessage();
        assertTrue(m.startsWith("execution.checkpointing.dir is enc+s3://bucket/checkpoints (encrypted), but Flink would "
                + "write state unencrypted to: execution.checkpointing.savepoint-dir = s3://bucket/savepoints (point it "
                + "at enc+s3://bucket/savepoints); state.changelog.dstl.dfs.base-path = /data/dstl (point it at "
                + "enc+file:///data/dstl)."), m);
        assertTrue(m.contains("heliosdb.crypto.allow-unencrypted-state-dirs: true"), m);
    }

    @Test
    void theOptionAcceptsItAndConsistentConfigurationsPass() {
        Configuration allowed = leaky();
        allowed.setString(CryptoOptions.ALLOW_UNENCRYPTED_STATE_DIRS.key(), "true");
        assertDoesNotThrow(() -> new Schemes.EncS3().configure(allowed));
        assertEquals("execution.checkpointing.dir is enc+s3://bucket/checkpoints (encrypted), but Flink writes state "
                + "unencrypted to: execution.checkpointing.savepoint-dir = s3://bucket/savepoints (point it at "
                + "enc+s3://bucket/savepoints); state.changelog.dstl.dfs.base-path = /data/dstl (point it at "
                + "enc+file:///data/dstl). Accepted: heliosdb.crypto.allow-unencrypted-state-dirs is true.",
                StateDirs.check(allowed.toMap()), "what the warning (logged once per process) names");
        Configuration encrypted = leaky();
        encrypted.setString("execution.checkpointing.savepoint-dir", "enc+s3://bucket/savepoints");
        encrypted.setString("state.changelog.dstl.dfs.base-path", "enc+file:///data/dstl");
        assertDoesNotThrow(() -> new Schemes.EncFile().configure(encrypted));
        assertNull(StateDirs.check(encrypted.toMap()), "nothing to warn of");
        Configuration plain = leaky();
        plain.setString("execution.checkpointing.dir", "s3://bucket/checkpoints"); // not ours to judge
        assertDoesNotThrow(() -> new Schemes.EncFile().configure(plain));
    }

    @Test
    void withTheGuardOffTheSessionGetsTheFlinkKeysItRead() {
        String allow = CryptoOptions.ALLOW_UNENCRYPTED_STATE_DIRS.key();
        Configuration allowed = leaky();
        allowed.setString(allow, "true");
        allowed.setString("heliosdb.crypto.kms.uri", "local:///keys/k.json");
        allowed.setString("taskmanager.numberOfTaskSlots", "2");
        Schemes.EncS3 f = new Schemes.EncS3();
        f.configure(allowed);
        assertEquals(Map.of(allow, "true", "heliosdb.crypto.kms.uri", "local:///keys/k.json",
                "execution.checkpointing.dir", "enc+s3://bucket/checkpoints",
                "execution.checkpointing.savepoint-dir", "s3://bucket/savepoints", "state.changelog.enabled", "true",
                "state.changelog.dstl.dfs.base-path", "/data/dstl"), f.conf(),
                "the Python side's state_dirs_unguarded event names the places from these");
        Configuration guarded = leaky();
        guarded.setString("execution.checkpointing.savepoint-dir", "enc+s3://bucket/savepoints");
        guarded.setString("state.changelog.dstl.dfs.base-path", "enc+file:///data/dstl");
        guarded.setString("heliosdb.crypto.kms.uri", "local:///keys/k.json");
        f.configure(guarded);
        assertEquals(Map.of("heliosdb.crypto.kms.uri", "local:///keys/k.json"), f.conf(), "nothing unguarded: "
                + "the heliosdb.crypto.* entries only");
    }
}

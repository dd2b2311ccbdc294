package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.IllegalConfigurationException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Refuses a configuration whose checkpoints go through {@code enc+} while Flink writes the same state
 * unencrypted elsewhere: savepoints, {@code high-availability.storageDir} (with HA on), the changelog's
 * {@code state.changelog.dstl.dfs.base-path} (with the changelog on), a remote
 * {@code state.backend.forst.primary-dir}. Twin of heliosdb_flink_crypto/flink/state_dirs.py (the same
 * cases, tests/vectors/state-dirs.json, hold for both); {@code heliosdb.crypto.allow-unencrypted-state-dirs}
 * accepts such a configuration. Called as the enc+ file systems are configured, so a cluster (or a
 * client, or a MiniCluster) with such a configuration does not start.
 */
final class StateDirs {
    private StateDirs() {
    }

    static final String[] CHECKPOINT_DIR = {"execution.checkpointing.dir", "state.checkpoints.dir"};
    static final String[] SAVEPOINT_DIR = {"execution.checkpointing.savepoint-dir", "state.savepoints.dir"};
    static final String[] HA_MODE = {"high-availability.type", "high-availability"};
    static final String HA_DIR = "high-availability.storageDir";
    static final String CHANGELOG = "state.changelog.enabled";
    static final String CHANGELOG_DIR = "state.changelog.dstl.dfs.base-path";
    static final String FORST_PRIMARY = "state.backend.forst.primary-dir";

    /** The keys of the places {@code conf} has Flink write state to unencrypted, each with its value. */
    static List<String[]> unencrypted(Map<String, String> conf) {
        List<String[]> out = new ArrayList<>();
        if (!first(conf, CHECKPOINT_DIR)[1].startsWith("enc+")) {
            return out;
        }
        String ha = first(conf, HA_MODE)[1];
        String forst = first(conf, FORST_PRIMARY)[1];
        add(out, first(conf, SAVEPOINT_DIR), true);
        add(out, first(conf, HA_DIR), !ha.isEmpty() && !ha.equalsIgnoreCase("none"));
        add(out, first(conf, CHANGELOG_DIR), first(conf, CHANGELOG)[1].equalsIgnoreCase("true"));
        add(out, new String[] {FORST_PRIMARY, forst}, !forst.equals("checkpoint-dir") && !forst.equals("local-dir")
                && forst.contains("://") && !forst.substring(0, forst.indexOf("://")).equalsIgnoreCase("file"));
        return out;
    }

    /** Throws naming every such place, unless {@code heliosdb.crypto.allow-unencrypted-state-dirs}. */
    static void check(Map<String, String> conf) {
        List<String[]> places = unencrypted(conf);
        if (places.isEmpty() || first(conf, CryptoOptions.ALLOW_UNENCRYPTED_STATE_DIRS.key())[1].equalsIgnoreCase("true")) {
            return;
        }
        StringBuilder m = new StringBuilder();
        String[] cp = first(conf, CHECKPOINT_DIR);
        m.append(cp[0]).append(" is ").append(cp[1]).append(" (encrypted), but Flink would write state unencrypted to");
        for (String[] p : places) {
            String v = p[1];
            m.append(places.get(0) == p ? ": " : "; ").append(p[0]).append(" = ").append(v)
                    .append(" (point it at enc+").append(v.contains("://") ? v : "file://" + v).append(')');
        }
        m.append(". Set ").append(CryptoOptions.ALLOW_UNENCRYPTED_STATE_DIRS.key())
                .append(": true to accept this (docs/configuration.md).");
        throw new IllegalConfigurationException(m.toString());
    }

    private static void add(List<String[]> out, String[] place, boolean applies) {
        if (applies && !place[1].isEmpty() && !place[1].startsWith("enc+")) {
            out.add(place);
        }
    }

    /** The first of {@code keys} set and its value (stripped), or the first key and "". */
    private static String[] first(Map<String, String> conf, String... keys) {
        for (String k : keys) {
            String v = conf.get(k);
            if (v != null && !v.trim().isEmpty()) {
                return new String[] {k, v.trim()};
            }
        }
        return new String[] {keys[0], ""};
    }
}

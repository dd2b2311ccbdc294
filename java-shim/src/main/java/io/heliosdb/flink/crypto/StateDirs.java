package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.IllegalConfigurationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Refuses a configuration whose checkpoints go through {@code enc+} while Flink writes the same state
 * unencrypted elsewhere: savepoints, {@code high-availability.storageDir} (with HA on), the changelog's
 * {@code state.changelog.dstl.dfs.base-path} (with the changelog on), a remote
 * {@code state.backend.forst.primary-dir}. Twin of heliosdb_flink_crypto/flink/state_dirs.py (the same
 * cases, tests/vectors/state-dirs.json, hold for both); {@code heliosdb.crypto.allow-unencrypted-state-dirs}
 * accepts such a configuration (logged as a warning, once per process). Called as the enc+ file systems
 * are configured, so a cluster (or a client, or a MiniCluster) with such a configuration does not
 * start. The lib jar's checkpoint storage asks {@link #plaintextSavepoint} about each savepoint's
 * target, which a job's own configuration or {@code flink savepoint <target>} chooses.
 */
public final class StateDirs {
    private StateDirs() {
    }

    private static final Logger LOG = LoggerFactory.getLogger(StateDirs.class);
    /** The warnings logged (configure runs once per enc+ scheme: each is logged once). */
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();
    private static final String ALLOW = CryptoOptions.ALLOW_UNENCRYPTED_STATE_DIRS.key();

    static final String[] CHECKPOINT_DIR = {"execution.checkpointing.dir", "state.checkpoints.dir"};
    static final String[] SAVEPOINT_DIR = {"execution.checkpointing.savepoint-dir", "state.savepoints.dir"};
    static final String[] HA_MODE = {"high-availability.type", "high-availability"};
    static final String HA_DIR = "high-availability.storageDir";
    static final String CHANGELOG = "state.changelog.enabled";
    static final String CHANGELOG_DIR = "state.changelog.dstl.dfs.base-path";
    static final String FORST_PRIMARY = "state.backend.forst.primary-dir";
    /** Every key {@link #unencrypted} reads (each with its deprecated name): what {@link #forSession} passes on. */
    private static final String[][] READS = {CHECKPOINT_DIR, SAVEPOINT_DIR, HA_MODE, {HA_DIR}, {CHANGELOG},
        {CHANGELOG_DIR}, {FORST_PRIMARY}};

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

    /** Throws naming every such place, unless {@code heliosdb.crypto.allow-unencrypted-state-dirs}
     *  (then it warns, naming them, and returns the warning). Null when there is none. */
    static String check(Map<String, String> conf) {
        List<String[]> places = unencrypted(conf);
        if (places.isEmpty()) {
            return null;
        }
        boolean allowed = allowed(conf);
        String[] cp = first(conf, CHECKPOINT_DIR);
        StringBuilder m = new StringBuilder(cp[0]).append(" is ").append(cp[1]).append(" (encrypted), but Flink ")
                .append(allowed ? "writes" : "would write").append(" state unencrypted to");
        for (String[] p : places) {
            m.append(places.get(0) == p ? ": " : "; ").append(p[0]).append(" = ").append(p[1])
                    .append(" (point it at ").append(encForm(p[1])).append(')');
        }
        if (allowed) {
            String w = m.append(". Accepted: ").append(ALLOW).append(" is true.").toString();
            if (WARNED.add(w)) {
                LOG.warn(w);
            }
            return w;
        }
        m.append(". Set ").append(ALLOW).append(": true to accept this (docs/configuration.md).");
        throw new IllegalConfigurationException(m.toString());
    }

    /**
     * The session's configuration: {@code crypto} (the {@code heliosdb.crypto.*} entries), and, when
     * {@code heliosdb.crypto.allow-unencrypted-state-dirs} lets places of {@code flink} stay
     * unencrypted, the Flink keys this guard reads, so that the Python side's audit event
     * ({@code state_dirs_unguarded}) names each place as the warning does. Paths only, no secrets.
     */
    static Map<String, String> forSession(Map<String, String> flink, Map<String, String> crypto) {
        if (!allowed(flink) || unencrypted(flink).isEmpty()) {
            return crypto;
        }
        Map<String, String> out = new java.util.TreeMap<>(crypto);
        for (String[] keys : READS) {
            String[] set = first(flink, keys);
            if (!set[1].isEmpty()) {
                out.put(set[0], set[1]);
            }
        }
        return out;
    }

    /**
     * Why a savepoint into {@code target} (a job's savepoint directory, or the target of
     * {@code flink savepoint}) is refused: the job's checkpoints ({@code checkpointDir}) are encrypted
     * and the target is not. Null when it may be taken (the target is {@code enc+}, the checkpoints
     * are not, or {@code crypto}'s {@code heliosdb.crypto.allow-unencrypted-state-dirs} is true).
     */
    public static String plaintextSavepoint(String checkpointDir, String target, Map<String, String> crypto) {
        if (checkpointDir == null || target == null) {
            return null;
        }
        String cp = checkpointDir.trim();
        String t = target.trim();
        if (!cp.startsWith("enc+") || t.startsWith("enc+") || allowed(crypto)) {
            return null;
        }
        return "savepoint refused: its target " + t + " is not encrypted, but the job's checkpoints (" + cp
                + ") are. Take it to " + encForm(t) + ", or set " + ALLOW + ": true to accept this.";
    }

    private static boolean allowed(Map<String, String> conf) {
        return first(conf, ALLOW)[1].equalsIgnoreCase("true");
    }

    /** {@code place}'s enc+ twin (a bare path is a local file). */
    private static String encForm(String place) {
        String p = place.startsWith("file:") && !place.contains("://") ? place.substring(5) : place; // Flink's file:/x
        return "enc+" + (p.contains("://") ? p : "file://" + p);
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

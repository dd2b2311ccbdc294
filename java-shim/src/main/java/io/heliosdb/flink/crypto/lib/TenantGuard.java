package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.Printable;
import io.heliosdb.flink.crypto.PythonBridge;
import io.heliosdb.flink.crypto.PythonLaunch;
import io.heliosdb.flink.crypto.StateDirs;

import java.io.IOException;
import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The tenant guard: before a restore pointer is resolved, Python's TenantRouter (the same
 * longest-prefix rule the FileSystem uses, never re-implemented here) names the tenant of the pointer
 * and of the job's own checkpoint directory; a restore across tenants fails with both tenants and
 * the path named, before any state file is read. Without {@code heliosdb.crypto.tenants.*} it does
 * nothing (Python is not even started).
 */
final class TenantGuard implements Serializable {

    private static final long serialVersionUID = 1L;
    private static final Pattern TENANT_PREFIX = Pattern.compile("^heliosdb\\.crypto\\.tenants\\.[A-Za-z0-9_-]+\\.path-prefix$");
    static final long TIMEOUT_MILLIS = 120_000;

    private final TreeMap<String, String> conf;
    private final String jobDirectory;

    TenantGuard(Map<String, String> conf, String jobDirectory) {
        this.conf = new TreeMap<>(conf);
        this.jobDirectory = jobDirectory;
    }

    /** Whether any tenant is configured (otherwise every restore is the FileSystemCheckpointStorage's). */
    boolean active() {
        for (String k : conf.keySet()) {
            if (TENANT_PREFIX.matcher(k).matches()) {
                return true;
            }
        }
        return false;
    }

    String jobDirectory() {
        return jobDirectory;
    }

    /** Throws if restore pointer {@code pointer} belongs to another tenant than the job's checkpoint directory. */
    void check(String pointer) throws IOException {
        check(pointer, "restore");
    }

    /** Throws if savepoint target {@code target} is unencrypted while the job's checkpoints are
     *  encrypted ({@link StateDirs#plaintextSavepoint}, tenants or not), or lies under another tenant's
     *  prefix than the job's checkpoints. */
    void checkSavepoint(String target) throws IOException {
        String plaintext = StateDirs.plaintextSavepoint(jobDirectory, target, conf);
        if (plaintext != null) {
            throw new IOException(plaintext);
        }
        check(target, "savepoint");
    }

    private void check(String path, String action) throws IOException {
        if (!active() || path == null) {
            return;
        }
        if (jobDirectory == null) {
            throw new IOException(action + " of " + Printable.shown(path) + " refused: tenants are configured "
                    + "(heliosdb.crypto.tenants.*) but the job has no execution.checkpointing.dir to take its tenant from");
        }
        PythonBridge python = PythonBridge.shared(conf);
        Object sid = python.call(TIMEOUT_MILLIS, "configure", PythonLaunch.toJson(conf));
        python.call(TIMEOUT_MILLIS, "check_restore", sid, jobDirectory, path, action);
    }
}

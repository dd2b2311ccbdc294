package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystemFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Registers {@code enc+<inner>} and wraps the FileSystem Flink has for {@code <inner>}
 * (obtained with {@link FileSystem#getUnguardedFileSystem}, not bound to a task's safety net).
 * Flink calls {@link #configure} with the cluster configuration, which is refused if it leaves state
 * unencrypted next to encrypted checkpoints ({@link StateDirs}); the {@code heliosdb.crypto.*}
 * entries are validated in Python on first use (an error names the option key).
 * The Python engine starts lazily, at the first file opened or created.
 */
public abstract class EncryptedFileSystemFactory implements FileSystemFactory {

    public static final String PREFIX = "enc+";

    /** One Python session per distinct configuration per JVM (shared by every encrypted scheme). */
    private static final Map<Map<String, String>, PythonSession> SESSIONS = new ConcurrentHashMap<>();

    private final String scheme;
    private volatile Map<String, String> conf = new HashMap<>();

    protected EncryptedFileSystemFactory(String scheme) {
        this.scheme = scheme;
    }

    static String innerScheme(String scheme) {
        if (!scheme.startsWith(PREFIX) || scheme.length() == PREFIX.length()) {
            throw new IllegalArgumentException("not an encrypted scheme: " + scheme);
        }
        return scheme.substring(PREFIX.length());
    }

    @Override
    public String getScheme() {
        return scheme;
    }

    @Override
    public void configure(Configuration config) {
        FlinkLine.check("the enc+ FileSystem plugin (" + scheme + ")");
        StateDirs.check(config.toMap());
        this.conf = CryptoOptions.fromFlink(config);
    }

    Map<String, String> conf() {
        return conf;
    }

    @Override
    public FileSystem create(URI fsUri) throws IOException {
        String inner = innerScheme(scheme);
        URI innerUri;
        try {
            innerUri = new URI(inner, fsUri.getAuthority(), "/", null, null);
        } catch (URISyntaxException e) {
            throw new IOException("cannot map " + fsUri + " to " + inner + "://", e);
        }
        FileSystem fs = FileSystem.getUnguardedFileSystem(innerUri);
        URI outer;
        try {
            outer = new URI(scheme, fsUri.getAuthority(), "/", null, null);
        } catch (URISyntaxException e) {
            throw new IOException(e.getMessage(), e);
        }
        Map<String, String> c = conf;
        Supplier<PythonSession> session = () -> SESSIONS.computeIfAbsent(c, k -> {
            try {
                return PythonSession.open(k);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        return new EncryptedFileSystem(scheme, inner, fs, outer, session);
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "(" + scheme + ")";
    }
}

package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.Printable;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.apache.flink.core.fs.UnsupportedFileSystemSchemeException;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;

/**
 * A restore pointer without the {@code enc+} scheme ({@code flink run -s /data/ckpt/job/chk-3},
 * {@code execution.state-recovery.path: s3://bucket/savepoints/savepoint-1}) whose {@code _metadata} is
 * an encrypted file (magic {@code HFCE}, docs/format.md F-1) is restored through the matching encrypted
 * scheme ({@code enc+file:///data/ckpt/job/chk-3}): Flink reads {@code _metadata} through the
 * FileSystem of the pointer, and the files it references carry their own {@code enc+} URIs
 * (checkpoints) or lie relative to the pointer (savepoints), so the twin URI restores exactly what
 * naming it would. Only the first four bytes of {@code _metadata} are read through the plain
 * FileSystem, and only for pointers without {@code enc+}; without the encrypted scheme in this process
 * the restore fails with a message naming the URI to use instead of Flink's "Unexpected magic number".
 */
final class EncryptedRestorePointer {

    private static final Logger LOG = LoggerFactory.getLogger(EncryptedRestorePointer.class);
    private static final byte[] MAGIC = {'H', 'F', 'C', 'E'};
    static final String PREFIX = "enc+";

    private EncryptedRestorePointer() {
    }

    /** {@code pointer} itself, or its {@code enc+} twin if it names an encrypted checkpoint or savepoint. */
    static String resolve(String pointer) throws IOException {
        if (pointer == null || pointer.isEmpty() || encrypted(pointer)) {
            return pointer;
        }
        CompletedCheckpointStorageLocation location = AbstractFsCheckpointStorageAccess.resolveCheckpointPointer(pointer);
        if (!startsWithMagic(location)) {
            return pointer;
        }
        String twin = twin(location.getExternalPointer());
        try {
            new Path(twin).getFileSystem();
        } catch (UnsupportedFileSystemSchemeException e) {
            throw new IOException(Printable.shown(pointer + " is an encrypted checkpoint or savepoint (heliosdb-flink-crypto): restore it "
                    + "from " + twin + "; this process has no " + URI.create(twin).getScheme() + ":// file system "
                    + "(install the plugin with heliosdb-flink-crypto flink install)"), e);
        }
        LOG.info("heliosdb crypto: {} is encrypted: restoring it through {}", Printable.shown(pointer), Printable.shown(twin));
        return twin;
    }

    private static boolean encrypted(String pointer) {
        String scheme = new Path(pointer).toUri().getScheme();
        return scheme != null && scheme.startsWith(PREFIX);
    }

    private static boolean startsWithMagic(CompletedCheckpointStorageLocation location) throws IOException {
        byte[] head = new byte[MAGIC.length];
        int n = 0;
        try (FSDataInputStream in = location.getMetadataHandle().openInputStream()) {
            while (n < head.length) {
                int r = in.read(head, n, head.length - n);
                if (r < 0) {
                    return false;
                }
                n += r;
            }
        }
        return java.util.Arrays.equals(head, MAGIC);
    }

    /** {@code file:/data/x} -> {@code enc+file:///data/x}, {@code s3://b/x} -> {@code enc+s3://b/x}. */
    static String twin(String qualified) throws IOException {
        URI u = new Path(qualified).toUri();
        String scheme = u.getScheme() != null ? u.getScheme() : FileSystem.getDefaultFsUri().getScheme();
        try {
            return new URI(PREFIX + scheme, u.getAuthority() == null ? "" : u.getAuthority(), u.getPath(), null, null)
                    .toString();
        } catch (URISyntaxException e) {
            throw new IOException("cannot name the encrypted twin of " + qualified, e);
        }
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.BlockLocation;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystemKind;
import org.apache.flink.core.fs.Path;
import org.apache.flink.core.fs.RecoverableWriter;
import org.apache.flink.util.WrappingProxy;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code enc+<scheme>://...}: the inner scheme's FileSystem with every file encrypted.
 * Paths map one to one ({@code enc+s3://b/k} is {@code s3://b/k}); lengths, positions and offsets
 * are plaintext ones. No RecoverableWriter (Flink then writes {@code _metadata} through
 * {@link #create}), no path copying, and {@link WrappingProxy} exposes the inner FileSystem so
 * entropy injection ({@code s3.entropy.key}) still works.
 */
public class EncryptedFileSystem extends FileSystem implements WrappingProxy<FileSystem> {

    private final String scheme;
    private final String innerScheme;
    private final FileSystem inner;
    private final URI uri;
    private final Supplier<PythonSession> session;

    EncryptedFileSystem(String scheme, String innerScheme, FileSystem inner, URI uri, Supplier<PythonSession> session) {
        this.scheme = scheme;
        this.innerScheme = innerScheme;
        this.inner = inner;
        this.uri = uri;
        this.session = session;
    }

    /** Opens a session from {@code conf} now (used by tests and tools). */
    static EncryptedFileSystem of(String scheme, FileSystem inner, URI uri, Map<String, String> conf) throws IOException {
        PythonSession e = PythonSession.open(conf);
        return new EncryptedFileSystem(scheme, EncryptedFileSystemFactory.innerScheme(scheme), inner, uri, () -> e);
    }

    // -- path mapping ---------------------------------------------------------------
    Path toInner(Path p) {
        URI u = p.toUri();
        if (u.getScheme() == null || u.getScheme().equals(scheme)) {
            return new Path(rebuild(innerScheme, u));
        }
        if (u.getScheme().equals(innerScheme)) {
            return p;
        }
        throw new IllegalArgumentException("path " + p + " is not a " + scheme + ":// path");
    }

    Path toOuter(Path p) {
        URI u = p.toUri();
        if (u.getScheme() == null || u.getScheme().equals(innerScheme)) {
            return new Path(rebuild(scheme, u));
        }
        return p;
    }

    private URI rebuild(String s, URI u) {
        String authority = u.getAuthority() != null ? u.getAuthority() : uri.getAuthority();
        try {
            return new URI(s, authority, u.getPath(), u.getQuery(), u.getFragment());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    private PythonSession session() throws IOException {
        try {
            return session.get();
        } catch (RuntimeException e) {
            if (e.getCause() instanceof IOException) {
                throw (IOException) e.getCause();
            }
            throw e;
        }
    }

    // -- FileSystem -----------------------------------------------------------------
    @Override
    public FileSystem getWrappedDelegate() {
        return inner;
    }

    @Override
    public Path getWorkingDirectory() {
        return toOuter(inner.getWorkingDirectory());
    }

    @Override
    public Path getHomeDirectory() {
        return toOuter(inner.getHomeDirectory());
    }

    @Override
    public URI getUri() {
        return uri;
    }

    /** Not abstract in Flink 2.x, abstract in 1.20: declared so this class compiles for both. */
    public FileSystemKind getKind() {
        return innerScheme.equals("file") || innerScheme.equals("hdfs")
                ? FileSystemKind.FILE_SYSTEM : FileSystemKind.OBJECT_STORE;
    }

    @Override
    public FileStatus getFileStatus(Path f) throws IOException {
        return decorate(inner.getFileStatus(toInner(f)));
    }

    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
        FileStatus[] s = inner.listStatus(toInner(f));
        if (s == null) {
            return null;
        }
        FileStatus[] out = new FileStatus[s.length];
        for (int i = 0; i < s.length; i++) {
            out[i] = decorate(s[i]);
        }
        return out;
    }

    private FileStatus decorate(FileStatus s) {
        Path outer = toOuter(s.getPath());
        return new AuthenticatedFileStatus(s, outer, () -> authenticatedLength(s, outer));
    }

    /** Plaintext length of a file, after its header and final segment authenticated (F-25). */
    private long authenticatedLength(FileStatus s, Path outer) throws IOException {
        PythonSession e = session();
        try (DecryptingInputStream in = new DecryptingInputStream(inner.open(s.getPath()), s.getLen(), e,
                outer.toString())) {
            return in.size();
        }
    }

    /** The inner blocks from {@code start} on (ciphertext offsets exceed plaintext ones by the header and
     *  tags: covering to the end keeps every block of the range; no length is authenticated for it). */
    @Override
    public BlockLocation[] getFileBlockLocations(FileStatus file, long start, long len) throws IOException {
        FileStatus in = inner.getFileStatus(toInner(file.getPath()));
        return inner.getFileBlockLocations(in, start, Math.max(0, in.getLen() - start));
    }

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        return open(f);
    }

    @Override
    public FSDataInputStream open(Path f) throws IOException {
        Path p = toInner(f);
        long ct = inner.getFileStatus(p).getLen();
        PythonSession e = session();
        return new DecryptingInputStream(inner.open(p), ct, e, f.toString());
    }

    @Override
    public FSDataOutputStream create(Path f, WriteMode overwriteMode) throws IOException {
        PythonSession e = session();
        // Keys first: when the KMS is unreachable no (empty) inner file is left behind for Flink to trip on.
        PythonSession.NewFile keys = e.newFile(f.toString());
        FSDataOutputStream os;
        try {
            os = inner.create(toInner(f), overwriteMode);
        } catch (IOException | RuntimeException ex) {
            e.discard(keys.handle);
            throw ex;
        }
        return new EncryptingOutputStream(os, e, f.toString(), keys);
    }

    @Override
    public RecoverableWriter createRecoverableWriter() {
        throw new UnsupportedOperationException(
                scheme + ":// has no RecoverableWriter: encrypted files are written with create()");
    }

    // no @Override: keeps compiling against Flink versions without these overloads
    public RecoverableWriter createRecoverableWriter(Map<String, String> conf) {
        return createRecoverableWriter();
    }

    /** Never: a copy by the inner store would bypass the encrypting and decrypting streams. */
    public boolean canCopyPaths(Path source, Path destination) {
        return false;
    }

    @Override
    public boolean exists(Path f) throws IOException {
        return inner.exists(toInner(f));
    }

    @Override
    public boolean delete(Path f, boolean recursive) throws IOException {
        return inner.delete(toInner(f), recursive);
    }

    @Override
    public boolean mkdirs(Path f) throws IOException {
        return inner.mkdirs(toInner(f));
    }

    /** Re-seals the header when the binding name changes (RocksDB/ForSt {@code *.dbtmp}, Flink's job
     *  result store); otherwise an inner rename. See {@link Rebinding}. */
    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        return Rebinding.rename(inner, getKind() == FileSystemKind.FILE_SYSTEM, this::session, src, dst,
                toInner(src), toInner(dst));
    }

    @Override
    public boolean isDistributedFS() {
        return inner.isDistributedFS();
    }

    @Override
    public String toString() {
        return "EncryptedFileSystem(" + scheme + " over " + inner + ")";
    }
}

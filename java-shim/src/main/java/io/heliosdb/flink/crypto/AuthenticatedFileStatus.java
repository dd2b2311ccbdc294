package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.Path;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * A FileStatus with the outer path and the plaintext length, computed on the first
 * {@link #getLen()} only (docs/format.md F-25): the header authenticates (a Python call; the data
 * key usually comes from the cache) and the final segment is fetched and authenticated, so only
 * callers that ask for a length pay for it (RocksDB/ForSt sizes, Flink's restore of
 * {@code _metadata}), and no length of a cut, swapped or foreign file is ever reported. A failure
 * is an {@link UncheckedIOException} naming the file (getLen cannot throw a checked one); it is
 * remembered, so every later call fails the same way. Directories report the inner length.
 */
final class AuthenticatedFileStatus implements FileStatus {

    /** Computes the plaintext length of a file, authenticating its end. */
    interface Length {
        long compute() throws IOException;
    }

    private final FileStatus inner;
    private final Path path;
    private final Length length;
    private long len = -1;
    private IOException failure;

    AuthenticatedFileStatus(FileStatus inner, Path path, Length length) {
        this.inner = inner;
        this.path = path;
        this.length = length;
    }

    @Override
    public synchronized long getLen() {
        if (inner.isDir()) {
            return inner.getLen();
        }
        if (failure == null && len < 0) {
            try {
                len = length.compute();
            } catch (IOException e) {
                failure = PythonSession.innerFailure(path.toString(), "authenticating the length of", e);
            }
        }
        if (failure != null) {
            throw new UncheckedIOException(failure.getMessage(), failure);
        }
        return len;
    }

    @Override
    public long getBlockSize() {
        return inner.getBlockSize();
    }

    @Override
    public short getReplication() {
        return inner.getReplication();
    }

    @Override
    public long getModificationTime() {
        return inner.getModificationTime();
    }

    @Override
    public long getAccessTime() {
        return inner.getAccessTime();
    }

    @Override
    public boolean isDir() {
        return inner.isDir();
    }

    @Override
    public Path getPath() {
        return path;
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.ByteBufferReadable;
import org.apache.flink.core.fs.FSDataInputStream;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A seekable plaintext view of an encrypted file. Positions, {@link #seek}, {@link #getPos} and
 * {@link #available} are plaintext coordinates; only the segments a read touches are fetched and
 * authenticated, and every byte returned has been authenticated. Implements
 * {@link ByteBufferReadable} so positional reads (ForSt) need no seek; a positional read decrypts
 * exactly the segments it covers, in one call ({@link SegmentWindow#loadRange}).
 *
 * <p>The end of the file authenticates (docs/format.md F-25): no read returns -1, no skip reaches the
 * end and {@link #available} counts no byte past the current window before the final (last-flagged)
 * segment has authenticated; reading sequentially it has been read by then anyway, otherwise it is
 * fetched and authenticated first (one more segment read). Reads below a cut still return the bytes
 * of segments that authenticate.
 *
 * <p>Decrypted segments are kept in a {@link SegmentWindow} (reading on sequentially, the next window
 * is prefetched); sealed bytes come from a {@link CiphertextSource}.
 */
final class DecryptingInputStream extends FSDataInputStream implements ByteBufferReadable {

    /** Authenticates a file's header and returns the Python handle of its keys. */
    interface HeaderOpener {
        long open(byte[] header) throws IOException;
    }

    private final FSDataInputStream in;
    private final PythonSession session;
    private final String path;
    private final SegmentLayout layout;
    private final long handle;
    private final long size;
    private final SegmentWindow window;
    private long pos;
    private boolean closed;

    DecryptingInputStream(FSDataInputStream in, long ciphertextLen, PythonSession session, String path)
            throws IOException {
        this(in, ciphertextLen, session, path, header -> session.openFile(path, header));
    }

    DecryptingInputStream(FSDataInputStream in, long ciphertextLen, PythonSession session, String path,
                          HeaderOpener opener) throws IOException {
        this.in = in;
        this.session = session;
        this.path = path;
        byte[] header;
        try {
            header = SegmentLayout.readHeader(in, path);
            this.layout = SegmentLayout.parsePrefix(header, path);
            this.size = layout.plaintextLength(ciphertextLen, path);
        } catch (CryptoIOException e) {
            in.close();
            session.malformed(path, e.getMessage()); // counted as an authentication failure
            throw e;
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
        try {
            this.handle = opener.open(header);
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
        ReadCounters.opened();
        CiphertextSource source = new CiphertextSource(in, path, layout.segmentSize + layout.overhead);
        this.window = new SegmentWindow(session, source, layout, path, handle, size);
    }

    /** Plaintext length of the file, once its final segment authenticated. */
    synchronized long size() throws IOException {
        authenticateEnd();
        return size;
    }

    /** Loads (so authenticates) the final segment unless that happened already. */
    private void authenticateEnd() throws IOException {
        if (!window.endAuthenticated()) {
            load(window.count() - 1);
        }
    }

    /** Makes segment {@code idx} part of the window (stream reads). */
    private void load(long idx) throws IOException {
        if (closed) {
            throw PythonSession.closedStream(path);
        }
        window.load(idx);
    }

    @Override
    public synchronized void seek(long desired) throws IOException {
        if (desired < 0) {
            throw new EOFException(path + ": cannot seek to negative position " + desired);
        }
        pos = desired;
    }

    @Override
    public synchronized long getPos() {
        return pos;
    }

    @Override
    public synchronized int read() throws IOException {
        if (pos >= size) {
            authenticateEnd();
            return -1;
        }
        load(pos / layout.segmentSize);
        int b = window.get(pos);
        pos++;
        return b;
    }

    @Override
    public synchronized int read(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        if (len == 0) {
            return 0;
        }
        int n = copy(pos, ByteBuffer.wrap(b, off, len), false);
        if (n > 0) {
            pos += n;
        }
        return n;
    }

    /** Copies plaintext from {@code at} into {@code dst} (up to its remaining); -1 at end of file,
     *  once the final segment authenticated. A positional read loads the segments it covers at once. */
    private int copy(long at, ByteBuffer dst, boolean positional) throws IOException {
        if (at >= size) {
            if (!dst.hasRemaining()) {
                return 0;
            }
            authenticateEnd();
            return -1;
        }
        int done = 0;
        int seg = layout.segmentSize;
        while (dst.hasRemaining() && at < size) {
            long idx = at / seg;
            if (!positional) {
                load(idx);
            } else if (!window.holds(idx)) {
                if (closed) {
                    throw PythonSession.closedStream(path);
                }
                long end = Math.min(size, at + dst.remaining());
                window.loadRange(idx, (end - 1) / seg - idx + 1);
            }
            int take = window.copy(at, dst);
            done += take;
            at += take;
        }
        ReadCounters.delivered(done);
        return done;
    }

    @Override
    public synchronized int read(ByteBuffer dst) throws IOException {
        int n = copy(pos, dst, false);
        if (n > 0) {
            pos += n;
        }
        return n;
    }

    @Override
    public synchronized int read(long position, ByteBuffer dst) throws IOException {
        if (position < 0) {
            throw new EOFException(path + ": negative read position " + position);
        }
        return copy(position, dst, true);
    }

    @Override
    public synchronized long skip(long n) throws IOException {
        if (n <= 0) {
            return 0;
        }
        if (pos + n >= size) { // reaches the end: only once the end authenticated
            authenticateEnd();
        }
        long skipped = Math.min(n, Math.max(0, size - pos));
        pos += skipped;
        return skipped;
    }

    /** Bytes readable without blocking: up to the end once it authenticated, else what is left of
     *  the current window (authenticated plaintext) from the position. */
    @Override
    public synchronized int available() {
        long left;
        long start = window.start();
        if (window.endAuthenticated()) {
            left = size - pos;
        } else if (start >= 0 && pos >= start && pos < start + window.length()) {
            left = start + window.length() - pos;
        } else {
            left = 0;
        }
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, left));
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        window.close();
        session.close(handle);
        in.close();
    }
}

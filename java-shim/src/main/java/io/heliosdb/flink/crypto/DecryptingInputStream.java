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
 * {@link ByteBufferReadable} so positional reads (ForSt) need no seek.
 *
 * <p>The end of the file authenticates (docs/format.md F-25): no read returns -1, no skip reaches the
 * end and {@link #available} counts no byte past the current window before the final (last-flagged)
 * segment has authenticated; reading sequentially it has been read by then anyway, otherwise it is
 * fetched and authenticated first (one more segment read). Reads below a cut still return the bytes
 * of segments that authenticate.
 *
 * <p>Decrypted segments are kept as a window: one segment on random access; reading sequentially,
 * the next window (four times the current one, up to {@link NativeBuffers#BATCH_BYTES}) is fetched
 * from the inner stream and decrypted by one Python call, both on a worker, while the caller consumes
 * the current one (a failure there is reported when that window is read; without direct memory for it,
 * there is no prefetch). The caller waits for the prefetch before it touches the inner stream itself.
 * Sealed bytes come from a {@link CiphertextSource}.
 */
final class DecryptingInputStream extends FSDataInputStream implements ByteBufferReadable {

    /** Authenticates a file's header and returns the Python handle of its keys. */
    interface HeaderOpener {
        long open(byte[] header) throws IOException;
    }

    private final FSDataInputStream in;
    private final CiphertextSource source;
    private final CryptoEngine engine;
    private final String path;
    private final SegmentLayout layout;
    private final long handle;
    private final long size;
    private final long count;
    private final int batchSegments;
    private final NativeBuffers.Registered[] sealed = new NativeBuffers.Registered[2];
    private final NativeBuffers.Registered[] plain = new NativeBuffers.Registered[2];
    private int slot;
    private long first = -1; // the window: segments [first, first + segments) in plain[slot]
    private long segments;
    private int windowLen;
    private PythonBridge.Call prefetch; // fetch + decrypt of the next window
    private long prefetchFirst = -1;
    private long prefetchSegments;
    private long pos;
    private boolean endAuthenticated; // the final segment has authenticated
    private boolean closed;

    DecryptingInputStream(FSDataInputStream in, long ciphertextLen, CryptoEngine engine, String path)
            throws IOException {
        this(in, ciphertextLen, engine, path, header -> engine.openFile(path, header));
    }

    DecryptingInputStream(FSDataInputStream in, long ciphertextLen, CryptoEngine engine, String path,
                          HeaderOpener opener) throws IOException {
        this.in = in;
        this.engine = engine;
        this.path = path;
        byte[] header;
        try {
            header = SegmentLayout.readHeader(in, path);
            this.layout = SegmentLayout.parsePrefix(header, path);
            this.size = layout.plaintextLength(ciphertextLen, path);
        } catch (CryptoIOException e) {
            in.close();
            engine.malformed(path, e.getMessage()); // counted as an authentication failure
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
        this.source = new CiphertextSource(in, path, layout.segmentSize + layout.overhead);
        this.count = SegmentLayout.segmentCount(size, layout.segmentSize);
        this.batchSegments = engine.buffers.zeroCopy() ? NativeBuffers.batchSegments(layout.segmentSize) : 1;
    }

    /** Plaintext length of the file, once its final segment authenticated. */
    synchronized long size() throws IOException {
        authenticateEnd();
        return size;
    }

    /** Loads (so authenticates) the final segment unless that happened already. */
    private void authenticateEnd() throws IOException {
        if (!endAuthenticated) {
            load(count - 1);
        }
    }

    /** Makes segment {@code idx} part of the window. */
    private void load(long idx) throws IOException {
        if (first >= 0 && idx >= first && idx < first + segments) {
            return;
        }
        if (closed) {
            throw new IOException(path + ": stream is closed");
        }
        boolean sequential = first >= 0 && idx == first + segments;
        first = -1;
        if (prefetch != null) {
            PythonBridge.Call c = prefetch;
            prefetch = null;
            if (idx >= prefetchFirst && idx < prefetchFirst + prefetchSegments) {
                slot ^= 1;
                windowLen = CryptoEngine.opened(c); // its failure is this read's failure
                first = prefetchFirst;
                segments = prefetchSegments;
                endAuthenticated |= first + segments == count;
            } else {
                settle(c);
            }
        }
        if (first < 0) {
            ensure(slot, 1);
            int want = fetch(idx, 1, slot);
            windowLen = engine.open(handle, idx, idx == count - 1, sealed[slot], want, plain[slot]);
            first = idx;
            segments = 1;
            endAuthenticated |= idx == count - 1;
        }
        long next = first + segments;
        if (sequential && next < count && engine.buffers.zeroCopy()) {
            startPrefetch(next, Math.min(Math.min(batchSegments, 4 * segments), count - next));
        }
    }

    /** Buffers of slot {@code s} hold at least {@code n} segments. */
    private void ensure(int s, long n) throws IOException {
        if (plain[s] != null && plain[s].buffer.capacity() >= n * layout.segmentSize) {
            return;
        }
        engine.buffers.give(sealed[s]);
        engine.buffers.give(plain[s]);
        sealed[s] = null;
        plain[s] = null;
        sealed[s] = engine.buffers.take((int) n * (layout.segmentSize + layout.overhead));
        plain[s] = engine.buffers.take((int) n * layout.segmentSize);
    }

    /** Reads sealed segments {@code [from, from + n)} into {@code sealed[s]}; returns their length. */
    private int fetch(long from, long n, int s) throws IOException {
        long end = from + n;
        long endOffset = end == count ? layout.ciphertextLength(size) : layout.segmentOffset(end);
        long offset = layout.segmentOffset(from);
        int want = (int) (endOffset - offset);
        ByteBuffer b = sealed[s].buffer.duplicate();
        b.clear().limit(want);
        source.readFully(offset, b);
        return want;
    }

    /** Sequential reading: fetch and decrypt the next window in the background meanwhile. */
    private void startPrefetch(long from, long n) {
        int other = slot ^ 1;
        try {
            ensure(other, n);
        } catch (IOException | RuntimeException e) {
            return; // no memory for it: read on demand
        }
        boolean last = from + n == count;
        prefetch = engine.openAsync(handle, from, last, () -> {
            try {
                return fetch(from, n, other);
            } catch (CryptoIOException e) {
                throw e;
            } catch (IOException e) {
                throw CryptoEngine.innerFailure(path, "reading", e);
            }
        }, sealed[other], plain[other]);
        prefetchFirst = from;
        prefetchSegments = n;
    }

    /** Waits for a prefetch nobody wants (its buffers and the inner stream must be idle before
     *  reuse); ignores its result. */
    private static void settle(PythonBridge.Call c) {
        try {
            c.await("open");
        } catch (IOException | RuntimeException ignored) {
            // nobody asked for those segments
        }
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
        int b = plain[slot].buffer.get((int) (pos - first * layout.segmentSize)) & 0xff;
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
        int n = copy(pos, ByteBuffer.wrap(b, off, len));
        if (n > 0) {
            pos += n;
        }
        return n;
    }

    /** Copies plaintext from {@code at} into {@code dst} (up to its remaining); -1 at end of file,
     *  once the final segment authenticated. */
    private int copy(long at, ByteBuffer dst) throws IOException {
        if (at >= size) {
            if (!dst.hasRemaining()) {
                return 0;
            }
            authenticateEnd();
            return -1;
        }
        int done = 0;
        while (dst.hasRemaining() && at < size) {
            load(at / layout.segmentSize);
            int start = (int) (at - first * layout.segmentSize);
            int take = Math.min(windowLen - start, dst.remaining());
            ByteBuffer src = plain[slot].buffer.duplicate();
            src.clear().position(start).limit(start + take);
            dst.put(src);
            done += take;
            at += take;
        }
        return done;
    }

    @Override
    public synchronized int read(ByteBuffer dst) throws IOException {
        int n = copy(pos, dst);
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
        return copy(position, dst);
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
        if (endAuthenticated) {
            left = size - pos;
        } else if (first >= 0 && pos >= first * layout.segmentSize && pos < first * layout.segmentSize + windowLen) {
            left = first * layout.segmentSize + windowLen - pos;
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
        first = -1;
        if (prefetch != null) {
            settle(prefetch);
            prefetch = null;
        }
        engine.close(handle);
        for (int i = 0; i < 2; i++) {
            engine.buffers.give(sealed[i]);
            engine.buffers.give(plain[i]);
            sealed[i] = plain[i] = null;
        }
        in.close();
    }
}

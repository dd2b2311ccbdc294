package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.ByteBufferReadable;
import org.apache.flink.core.fs.FSDataInputStream;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A seekable plaintext view of an encrypted file. Positions, {@link #seek}, {@link #getPos} and
 * {@link #available} are plaintext coordinates; only the segments a read touches are fetched and
 * authenticated (the current one is kept), and every byte returned has been authenticated.
 * Reading sequentially, the next segment is decrypted on a Python worker meanwhile (prefetch).
 * Implements {@link ByteBufferReadable} so positional reads (ForSt) need no seek.
 */
final class DecryptingInputStream extends FSDataInputStream implements ByteBufferReadable {

    private final FSDataInputStream in;
    private final CryptoEngine engine;
    private final String path;
    private final SegmentLayout layout;
    private final long handle;
    private final long size;
    private final long count;
    private final NativeBuffers.Registered[] sealed = new NativeBuffers.Registered[2];
    private final NativeBuffers.Registered[] plain = new NativeBuffers.Registered[2];
    private int slot;
    private PythonBridge.Call prefetch;
    private long prefetchIndex = -1;
    private byte[] scratch;
    private long current = -1;
    private int currentLen;
    private long pos;
    private boolean closed;

    /** Authenticates a file's header and returns the Python handle of its keys. */
    interface HeaderOpener {
        long open(byte[] header) throws IOException;
    }

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
            byte[] prefix = new byte[SegmentLayout.PREFIX_LEN];
            readFully(in, prefix, 0, prefix.length, path);
            this.layout = SegmentLayout.parsePrefix(prefix, path);
            this.size = layout.plaintextLength(ciphertextLen, path);
            header = new byte[layout.headerLen];
            System.arraycopy(prefix, 0, header, 0, prefix.length);
            readFully(in, header, prefix.length, header.length - prefix.length, path);
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
        this.count = SegmentLayout.segmentCount(size, layout.segmentSize);
    }

    /** Plaintext length of the file. */
    long size() {
        return size;
    }

    private static void readFully(FSDataInputStream in, byte[] b, int off, int len, String path) throws IOException {
        while (len > 0) {
            int r = in.read(b, off, len);
            if (r < 0) {
                throw new CryptoIOException(path + ": authentication failed (file tampered, truncated or wrong key)");
            }
            off += r;
            len -= r;
        }
    }

    private void load(long idx) throws IOException {
        if (idx == current) {
            return;
        }
        if (closed) {
            throw new IOException(path + ": stream is closed");
        }
        if (plain[0] == null) {
            sealed[0] = engine.buffers.take(layout.segmentSize + layout.overhead);
            plain[0] = engine.buffers.take(layout.segmentSize);
            scratch = new byte[layout.segmentSize + layout.overhead];
        }
        boolean sequential = idx == current + 1 && current >= 0;
        current = -1;
        if (prefetch != null) {
            PythonBridge.Call f = prefetch;
            prefetch = null;
            if (prefetchIndex == idx) {
                slot ^= 1;
                currentLen = CryptoEngine.opened(f); // its failure is this read's failure
                current = idx;
            } else {
                settle(f);
            }
        }
        if (current != idx) {
            int want = fetch(idx, slot);
            currentLen = engine.open(handle, idx, idx == count - 1, sealed[slot], want, plain[slot]);
            current = idx;
        }
        if (sequential && idx + 1 < count && engine.buffers.zeroCopy()) {
            startPrefetch(idx + 1);
        }
    }

    /** Reads sealed segment {@code idx} from the inner stream into {@code sealed[s]}; returns its length. */
    private int fetch(long idx, int s) throws IOException {
        boolean last = idx == count - 1;
        int want = (int) ((last ? size - idx * layout.segmentSize : layout.segmentSize) + layout.overhead);
        in.seek(layout.segmentOffset(idx));
        readFully(in, scratch, 0, want, path);
        ByteBuffer b = sealed[s].buffer.duplicate();
        b.clear();
        b.put(scratch, 0, want);
        return want;
    }

    /**
     * Sequential reading: decrypt the next segment on a Python worker while the caller consumes
     * this one. A failure there is reported only if that segment is then read.
     */
    private void startPrefetch(long next) {
        int other = slot ^ 1;
        try {
            if (plain[1] == null) {
                sealed[1] = engine.buffers.take(layout.segmentSize + layout.overhead);
                plain[1] = engine.buffers.take(layout.segmentSize);
            }
            int want = fetch(next, other);
            prefetch = engine.openAsync(handle, next, next == count - 1, sealed[other], want, plain[other]);
            prefetchIndex = next;
        } catch (IOException | RuntimeException e) {
            prefetch = null; // read again, and fail there, if the caller gets that far
        }
    }

    /** Waits for a prefetch nobody wants (its buffers must be idle before reuse); ignores its result. */
    private static void settle(PythonBridge.Call f) {
        try {
            f.await("open");
        } catch (IOException ignored) {
            // nobody asked for that segment
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
            return -1;
        }
        long idx = pos / layout.segmentSize;
        load(idx);
        int b = plain[slot].buffer.get((int) (pos - idx * layout.segmentSize)) & 0xff;
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

    /** Copies plaintext from {@code at} into {@code dst} (up to its remaining); -1 at end of file. */
    private int copy(long at, ByteBuffer dst) throws IOException {
        if (at >= size) {
            return dst.hasRemaining() ? -1 : 0;
        }
        int done = 0;
        while (dst.hasRemaining() && at < size) {
            long idx = at / layout.segmentSize;
            load(idx);
            int start = (int) (at - idx * layout.segmentSize);
            int take = Math.min(currentLen - start, dst.remaining());
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
    public synchronized long skip(long n) {
        if (n <= 0) {
            return 0;
        }
        long skipped = Math.min(n, Math.max(0, size - pos));
        pos += skipped;
        return skipped;
    }

    @Override
    public synchronized int available() {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, size - pos));
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        current = -1;
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

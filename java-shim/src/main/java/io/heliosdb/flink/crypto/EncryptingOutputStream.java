package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then each segment
 * sealed by Python as it fills, the last one (flagged last) on {@link #close()}.
 *
 * <p>Pipelined: a full segment is sealed on a Python worker while the caller fills the other
 * plaintext buffer; at most one segment is in flight and sealed segments reach the inner stream
 * in order, from the caller's thread.
 *
 * <p>{@link #getPos()} is the plaintext position (Flink records state offsets from it).
 * {@link #flush()} and {@link #sync()} reach the inner stream but never cut a segment: only close
 * ends a file. Fails closed: once sealing fails, every later call throws and close leaves a file
 * without its final segment, which never authenticates. Only sealed bytes are ever written.
 */
final class EncryptingOutputStream extends FSDataOutputStream {

    private final FSDataOutputStream out;
    private final CryptoEngine engine;
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final NativeBuffers.Registered[] plain = new NativeBuffers.Registered[2];
    private final NativeBuffers.Registered[] sealed = new NativeBuffers.Registered[2];
    private final byte[] scratch;
    private int cur;
    private int fill;
    private long index;
    private long total;
    private PythonBridge.Call pending;
    private int pendingSlot;
    private boolean closed;
    private IOException failure;

    EncryptingOutputStream(FSDataOutputStream out, CryptoEngine engine, String path) throws IOException {
        this.out = out;
        this.engine = engine;
        this.path = path;
        CryptoEngine.NewFile f;
        try {
            f = engine.newFile(path);
        } catch (IOException e) {
            out.close();
            throw e;
        }
        this.handle = f.handle;
        this.seg = f.segmentSize;
        this.overhead = f.overhead;
        this.scratch = new byte[f.segmentSize + f.overhead];
        try {
            plain[0] = engine.buffers.take(seg);
            sealed[0] = engine.buffers.take(seg + overhead);
            out.write(f.header);
        } catch (IOException e) {
            fail(e);
            closeQuietly();
            throw e;
        }
    }

    @Override
    public long getPos() {
        return total;
    }

    @Override
    public void write(int b) throws IOException {
        check();
        if (fill == seg) {
            emit(false);
        }
        plain[cur].buffer.put(fill++, (byte) b);
        total++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        check();
        while (len > 0) {
            if (fill == seg) {
                emit(false); // a full segment and more data follows: not the last one
            }
            int take = Math.min(seg - fill, len);
            ByteBuffer dst = plain[cur].buffer;
            dst.clear().position(fill);
            dst.put(b, off, take);
            fill += take;
            off += take;
            len -= take;
            total += take;
        }
    }

    /**
     * Seals the current buffer as segment {@code index}: the last one inline, others on a worker.
     * One segment in flight at most: wait for it, submit the new one, then copy the finished one
     * out while Python seals the new one (two concurrent seals per stream only fight for the cores).
     */
    private void emit(boolean last) throws IOException {
        try {
            if (last || !engine.buffers.zeroCopy()) {
                drain();
                writeSealed(cur, engine.seal(handle, index, last, plain[cur], fill, sealed[cur]));
            } else {
                int other = cur ^ 1;
                if (plain[other] == null) {
                    plain[other] = engine.buffers.take(seg);
                    sealed[other] = engine.buffers.take(seg + overhead);
                }
                int previous = pending == null ? -1 : CryptoEngine.sealed(pending); // slot "other"
                pending = engine.sealAsync(handle, index, false, plain[cur], fill, sealed[cur]);
                pendingSlot = cur;
                cur = other;
                if (previous >= 0) { // copied out while Python seals the new one
                    writeSealed(other, previous);
                }
            }
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        index++;
        fill = 0;
    }

    /** Waits for the segment in flight and writes it. */
    private void drain() throws IOException {
        if (pending != null) {
            PythonBridge.Call f = pending;
            pending = null;
            writeSealed(pendingSlot, CryptoEngine.sealed(f));
        }
    }

    private void writeSealed(int slot, int n) throws IOException {
        ByteBuffer s = sealed[slot].buffer.duplicate();
        s.clear();
        s.get(scratch, 0, n);
        out.write(scratch, 0, n);
    }

    private IOException failed(Exception e) {
        IOException io = e instanceof IOException ? (IOException) e
                : new IOException(path + ": encryption failed: " + e, e);
        fail(io);
        return io;
    }

    private void check() throws IOException {
        if (closed) {
            throw new IOException(path + ": stream is closed");
        }
        if (failure != null) {
            throw new IOException(path + ": an earlier write failed; this file is incomplete", failure);
        }
    }

    private void fail(IOException e) {
        if (failure == null) {
            failure = e;
        }
    }

    @Override
    public void flush() throws IOException {
        check();
        try {
            drain();
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        out.flush();
    }

    @Override
    public void sync() throws IOException {
        flush();
        out.sync();
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        if (failure != null) {
            closeQuietly();
            throw new IOException(path + ": closed after a failed write; the file has no final segment", failure);
        }
        try {
            emit(true);
            out.close();
        } catch (IOException e) {
            fail(e);
            closeQuietly();
            throw e;
        }
        closed = true;
        engine.finish(handle, total);
        release();
    }

    private void closeQuietly() {
        closed = true;
        if (pending != null) {
            try {
                pending.await("seal"); // Python may still be writing into our buffers: wait before pooling them
            } catch (IOException ignored) {
                // the first failure is the one reported
            }
            pending = null;
        }
        engine.discard(handle);
        release();
        try {
            out.close();
        } catch (IOException ignored) {
            // the first failure is the one reported
        }
    }

    private void release() {
        for (int i = 0; i < 2; i++) {
            engine.buffers.give(plain[i]);
            engine.buffers.give(sealed[i]);
            plain[i] = sealed[i] = null;
        }
    }
}

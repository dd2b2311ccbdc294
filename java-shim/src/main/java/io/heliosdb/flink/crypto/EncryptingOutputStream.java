package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then each segment
 * sealed by Python as it fills, the last one (flagged last) on {@link #close()}.
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
    private NativeBuffers.Registered plain;
    private NativeBuffers.Registered sealed;
    private final byte[] scratch;
    private int fill;
    private long index;
    private long total;
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
        this.scratch = new byte[f.segmentSize + f.overhead];
        try {
            plain = engine.buffers.take(seg);
            sealed = engine.buffers.take(seg + f.overhead);
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
        plain.buffer.put(fill++, (byte) b);
        total++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        check();
        ByteBuffer dst = plain.buffer;
        while (len > 0) {
            if (fill == seg) {
                emit(false); // a full segment and more data follows: not the last one
            }
            int take = Math.min(seg - fill, len);
            dst.clear().position(fill);
            dst.put(b, off, take);
            fill += take;
            off += take;
            len -= take;
            total += take;
        }
    }

    private void emit(boolean last) throws IOException {
        try {
            int n = engine.seal(handle, index, last, plain, fill, sealed);
            ByteBuffer s = sealed.buffer.duplicate();
            s.clear();
            s.get(scratch, 0, n);
            out.write(scratch, 0, n);
        } catch (IOException | RuntimeException e) {
            IOException io = e instanceof IOException ? (IOException) e
                    : new IOException(path + ": encryption failed: " + e, e);
            fail(io);
            throw io;
        }
        index++;
        fill = 0;
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
        out.flush();
    }

    @Override
    public void sync() throws IOException {
        check();
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
        engine.discard(handle);
        release();
        try {
            out.close();
        } catch (IOException ignored) {
            // the first failure is the one reported
        }
    }

    private void release() {
        engine.buffers.give(plain);
        engine.buffers.give(sealed);
        plain = sealed = null;
    }
}

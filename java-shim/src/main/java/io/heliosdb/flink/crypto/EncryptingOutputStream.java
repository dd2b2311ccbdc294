package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then the segments
 * sealed by Python as buffers fill, the last one (flagged last) on {@link #close()}.
 *
 * <p>Batched and pipelined: a file starts with a buffer of one segment (small files stay small);
 * as it grows, buffers grow fourfold up to {@link NativeBuffers#BATCH_BYTES}. A full buffer is sealed
 * by one Python call on a worker, which then writes it to the inner stream, while the caller fills
 * the other buffer, so encryption and the inner stream's I/O overlap the caller's own work
 * (serializing state). At most one batch is in flight, and every call that touches the
 * inner stream waits for it first: sealed bytes reach the inner stream in order, one thread at a time.
 *
 * <p>{@link #getPos()} is the plaintext position (Flink records state offsets from it).
 * {@link #flush()} and {@link #sync()} reach the inner stream but never cut a segment: only close
 * ends a file. Fails closed: once sealing fails, every later call throws and close leaves a file
 * without its final segment, which never authenticates. Only sealed bytes are ever written.
 * Synchronized: Flink may close a stream from a canceling thread while a write is under way, and
 * buffers go back to a shared pool on close.
 */
final class EncryptingOutputStream extends FSDataOutputStream {

    private static final int SEALING = 0;       // whoever comes first: worker done sealing, or the caller
    private static final int BLOCKED = 1;       // the caller is still writing the batch before it
    private static final int CALLER_WRITES = 2;
    private static final int WORKER_WRITES = 3;

    private final FSDataOutputStream out;
    private final CryptoEngine engine;
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final int batchSegments;
    private final NativeBuffers.Registered[] plain = new NativeBuffers.Registered[2];
    private final NativeBuffers.Registered[] sealed = new NativeBuffers.Registered[2];
    private byte[] scratch;
    private int cur;
    private int fill;
    private long index;
    private long total;
    private PythonBridge.Call pending; // seal (+ maybe write) of the batch in flight
    private int pendingSlot;
    private AtomicInteger pendingClaim; // who writes it: SEALING (undecided), BLOCKED, *_WRITES
    private boolean closed;
    private IOException failure;

    EncryptingOutputStream(FSDataOutputStream out, CryptoEngine engine, String path) throws IOException {
        this(out, engine, path, newFileOrClose(out, engine, path));
    }

    /** With the file's keys already made ({@link EncryptedFileSystem#create} makes them first). */
    EncryptingOutputStream(FSDataOutputStream out, CryptoEngine engine, String path, CryptoEngine.NewFile f)
            throws IOException {
        this.out = out;
        this.engine = engine;
        this.path = path;
        this.handle = f.handle;
        this.seg = f.segmentSize;
        this.overhead = f.overhead;
        this.batchSegments = engine.buffers.zeroCopy() ? NativeBuffers.batchSegments(seg) : 1;
        try {
            take(0, 1);
            out.write(f.header);
        } catch (IOException e) {
            fail(e);
            closeQuietly();
            throw e;
        }
    }

    private static CryptoEngine.NewFile newFileOrClose(FSDataOutputStream out, CryptoEngine engine, String path)
            throws IOException {
        try {
            return engine.newFile(path);
        } catch (IOException e) {
            out.close();
            throw e;
        }
    }

    private void take(int slot, int segments) throws IOException {
        plain[slot] = engine.buffers.take(segments * seg);
        sealed[slot] = engine.buffers.take(segments * (seg + overhead));
    }

    /**
     * The file keeps growing: give slot {@code s} buffers of {@code segments} segments (four times
     * the last batch, up to the batch size, so medium files stay medium), fewer if direct memory runs
     * short.
     */
    private void grow(int s, int segments) throws IOException {
        if (plain[s] != null && plain[s].buffer.capacity() >= segments * seg) {
            return;
        }
        giveBack(s);
        for (int n = segments; ; n = Math.max(1, n / 2)) {
            try {
                take(s, n);
                return;
            } catch (NativeBuffers.DirectMemoryExhausted e) {
                giveBack(s);
                if (n == 1) {
                    throw e;
                }
            }
        }
    }

    private int capacity() {
        return plain[cur].buffer.capacity();
    }

    @Override
    public synchronized long getPos() {
        return total;
    }

    @Override
    public synchronized void write(int b) throws IOException {
        check();
        if (fill == capacity()) {
            emit(false);
        }
        plain[cur].buffer.put(fill++, (byte) b);
        total++;
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        check();
        while (len > 0) {
            if (fill == capacity()) {
                emit(false); // full segments and more data follows: none is the last one
            }
            int take = Math.min(capacity() - fill, len);
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
     * Seals the current buffer as segments {@code index, ...} and has them written. One batch in
     * flight at most. Who writes a sealed batch adapts to who is idle (both in order, one at a time):
     * the worker right after sealing it while the caller is still filling the next buffer (a caller
     * busy serializing state keeps only the copy-in), or the caller, after starting the next seal,
     * when it arrived first (a fast caller then overlaps the write with that seal).
     */
    private void emit(boolean last) throws IOException {
        long segments = Math.max(1, (fill + seg - 1) / seg);
        try {
            int prevSlot = pendingSlot;
            int prevLen = pending == null ? -1 : settle(); // >= 0: the caller writes the previous batch
            int slot = cur;
            if (!engine.buffers.zeroCopy()) { // no pipeline: nothing in flight
                writeSealed(slot, engine.seal(handle, index, last, plain[slot], fill, sealed[slot]));
            } else {
                AtomicInteger claim = new AtomicInteger(prevLen >= 0 ? BLOCKED : SEALING);
                pending = engine.sealAsync(handle, index, last, plain[slot], fill, sealed[slot], n -> {
                    if (claim.compareAndSet(SEALING, WORKER_WRITES)) {
                        writeSealed(slot, n);
                    } else {
                        claim.compareAndSet(BLOCKED, CALLER_WRITES); // the previous one is not out yet
                    }
                });
                pendingSlot = slot;
                pendingClaim = claim;
                if (prevLen >= 0) {
                    writeSealed(prevSlot, prevLen); // while Python seals this batch
                    claim.compareAndSet(BLOCKED, SEALING); // in order now: the worker may write it
                }
                if (last) {
                    drain();
                } else {
                    cur = slot ^ 1;
                    grow(cur, Math.min(batchSegments, 4 * (plain[slot].buffer.capacity() / seg)));
                }
            }
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        index += segments;
        fill = 0;
    }

    /** Waits for the batch in flight; its sealed length if the caller is to write it, else -1. */
    private int settle() throws IOException {
        PythonBridge.Call c = pending;
        AtomicInteger claim = pendingClaim;
        pending = null;
        claim.compareAndSet(SEALING, CALLER_WRITES); // arrived first: write it ourselves
        int n = CryptoEngine.sealed(c); // done: the worker's part (seal, maybe write) is over
        return claim.get() == CALLER_WRITES ? n : -1;
    }

    /** The batch in flight is sealed and written (its failure is this call's). */
    private void drain() throws IOException {
        if (pending != null) {
            int slot = pendingSlot;
            int n = settle();
            if (n >= 0) {
                writeSealed(slot, n);
            }
        }
    }

    /** Writes sealed bytes of slot {@code slot} to the inner stream; a failure names the file. */
    private void writeSealed(int slot, int n) throws IOException {
        ByteBuffer s = sealed[slot].buffer.duplicate();
        s.clear().limit(n);
        if (scratch == null) {
            scratch = new byte[seg + overhead];
        }
        try {
            while (s.hasRemaining()) {
                int take = Math.min(scratch.length, s.remaining());
                s.get(scratch, 0, take);
                out.write(scratch, 0, take);
            }
        } catch (IOException e) {
            throw CryptoEngine.innerFailure(path, "writing", e);
        }
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
    public synchronized void flush() throws IOException {
        check();
        try {
            drain();
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        out.flush();
    }

    @Override
    public synchronized void sync() throws IOException {
        flush();
        out.sync();
    }

    @Override
    public synchronized void close() throws IOException {
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
        if (pending != null) { // Python and the worker may still use our buffers and the inner stream: wait
            try {
                pending.await("seal");
            } catch (IOException | RuntimeException ignored) {
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

    private void giveBack(int slot) {
        engine.buffers.give(plain[slot]);
        engine.buffers.give(sealed[slot]);
        plain[slot] = null;
        sealed[slot] = null;
    }

    private void release() {
        giveBack(0);
        giveBack(1);
    }
}

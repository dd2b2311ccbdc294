package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then the segments
 * sealed by Python as buffers fill, the last one (flagged last) on {@link #close()}.
 *
 * <p>Pipelined over a ring of {@link #DEPTH} batch buffers: the caller (Flink's thread, serializing
 * state) only copies plaintext into the current buffer; a full buffer is sealed by one Python call on
 * a worker, and sealed batches are written to the inner stream by the workers, strictly in order and
 * one thread at a time (whichever worker finds the next batch sealed writes it and every sealed batch
 * after it). So filling batch N+2, sealing N+1 and writing N overlap; the caller waits only when
 * every buffer of the ring is still in flight. The caller never touches the inner stream while
 * batches are in flight, and the workers are never interrupted (a local file's channel, which takes
 * sealed bytes straight from native memory, would close on an interrupt). A file starts with a
 * buffer of one segment (small files stay small); as it grows, buffers grow fourfold up to
 * {@link NativeBuffers#WRITE_BATCH_BYTES}.
 *
 * <p>{@link #getPos()} is the plaintext position (Flink records state offsets from it).
 * {@link #flush()} reaches the inner stream but never cuts a segment: only close ends a file.
 * {@link #sync()} writes out every sealed batch and makes the whole file durable on close, after
 * its final segment: a file without that segment never authenticates, so there is nothing to make
 * durable before it (Flink closes right after syncing). Fails closed: once sealing or writing
 * fails, every later call throws and close leaves a file without its final segment. Only sealed
 * bytes are ever written. Synchronized: Flink may close a stream from a canceling thread while a
 * write is under way, and buffers go back to a shared pool on close.
 */
final class EncryptingOutputStream extends FSDataOutputStream {

    /** Batch buffers per stream (JVM property {@code heliosdb.crypto.pipeline-depth}, 2-16, default 8):
     *  with 1 MiB batches, 8 MiB of plaintext (and as much ciphertext) in flight per large file. */
    static final int DEPTH = Math.max(2, Math.min(16, Integer.getInteger("heliosdb.crypto.pipeline-depth", 8)));

    /** One batch buffer of the ring and the batch it holds. */
    private static final class Slot {
        NativeBuffers.Registered plain;
        NativeBuffers.Registered sealed;
        long seq = -1;               // batch number in this file; set before its seal is submitted; guarded by io
        PythonBridge.Call call;      // its seal (and maybe writes); waited for only when the stream fails
        int sealedLength;            // guarded by io
        boolean ready;               // sealed, not yet written; guarded by io
    }

    private final FSDataOutputStream out;
    private final java.nio.channels.WritableByteChannel channel; // the local file's, or null
    private final CryptoEngine engine;
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final int batchSegments;
    private final Slot[] ring;
    private byte[] scratch;
    private Slot cur;
    private int fill;
    private long index;
    private long total;
    private long submitted;      // batches handed to Python
    private int nextSegments = 1; // size of the next buffer taken, in segments
    private boolean syncOnClose;
    private boolean closed;
    private IOException failure;

    private final Object io = new Object(); // guards written, writing, ioFailure and Slot.ready/sealedLength
    private long written;        // batches written to the inner stream, in order
    private boolean writing;     // a worker is writing batches
    private IOException ioFailure;

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
        boolean pipelined = engine.buffers.zeroCopy();
        this.batchSegments = pipelined ? NativeBuffers.batchSegments(seg, NativeBuffers.WRITE_BATCH_BYTES) : 1;
        this.ring = new Slot[pipelined ? DEPTH : 1];
        this.channel = pipelined ? InnerChannels.writable(out) : null;
        for (int i = 0; i < ring.length; i++) {
            ring[i] = new Slot();
        }
        try {
            cur = ring[0];
            grow(cur);
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

    /**
     * Gives a free slot buffers for the next batch: {@link #nextSegments} segments (four times the
     * last batch, up to the batch size, so medium files stay medium), fewer if direct memory runs short.
     */
    private void grow(Slot s) throws IOException {
        int segments = nextSegments;
        nextSegments = Math.min(batchSegments, 4 * segments);
        if (s.plain != null && s.plain.buffer.capacity() >= segments * seg) {
            return;
        }
        giveBack(s);
        for (int n = segments; ; n = Math.max(1, n / 2)) {
            try {
                s.plain = engine.buffers.take(n * seg);
                s.sealed = engine.buffers.take(n * (seg + overhead));
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
        return cur.plain.buffer.capacity();
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
        cur.plain.buffer.put(fill++, (byte) b);
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
            ByteBuffer dst = cur.plain.buffer;
            dst.clear().position(fill);
            dst.put(b, off, take);
            fill += take;
            off += take;
            len -= take;
            total += take;
        }
    }

    /**
     * Seals the current buffer as segments {@code index, ...} on a worker, which (or another) then
     * writes it in order; moves on to the next buffer of the ring, waiting for it to be written out
     * first if it is still in flight. The last batch is waited for.
     */
    private void emit(boolean last) throws IOException {
        long segments = Math.max(1, (fill + seg - 1) / seg);
        try {
            Slot s = cur;
            if (ring.length == 1) { // no zero copy, no pipeline: seal and write here
                writeSealed(s, engine.seal(handle, index, last, s.plain, fill, s.sealed));
            } else {
                synchronized (io) { // read by the writers under it
                    s.seq = submitted;
                }
                s.call = engine.sealAsync(handle, index, last, s.plain, fill, s.sealed, new CryptoEngine.SealedSink() {
                    @Override
                    public void write(int n) throws IOException {
                        sealedOnWorker(s, n);
                    }

                    @Override
                    public void failed(IOException e) {
                        failedOnWorker(e, false);
                    }
                });
                submitted++;
                if (last) {
                    drain();
                } else {
                    Slot next = ring[(int) (submitted % ring.length)];
                    awaitWritten(next);
                    grow(next);
                    cur = next;
                }
            }
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        index += segments;
        fill = 0;
    }

    /**
     * On the worker that sealed {@code s}: marks it sealed and, unless another worker is writing,
     * writes every sealed batch that is next in order (this one, and those sealed meanwhile).
     */
    private void sealedOnWorker(Slot s, int sealedLength) throws IOException {
        synchronized (io) {
            s.sealedLength = sealedLength;
            s.ready = true;
            if (writing) {
                return; // that worker takes this batch too when it gets to it
            }
            writing = true;
        }
        while (true) {
            Slot next;
            int n;
            synchronized (io) {
                next = ring[(int) (written % ring.length)];
                if (ioFailure != null || !next.ready || next.seq != written) {
                    writing = false;
                    io.notifyAll();
                    return;
                }
                n = next.sealedLength;
            }
            try {
                writeSealed(next, n);
            } catch (IOException | RuntimeException e) {
                failedOnWorker(e instanceof IOException ? (IOException) e : new IOException(path + ": " + e, e), true);
                throw e;
            }
            synchronized (io) {
                next.ready = false;
                written++;
                io.notifyAll();
            }
        }
    }

    /** A batch could not be sealed, or ({@code writer}) written: nothing after it is written, and
     *  the caller hears of it. */
    private void failedOnWorker(IOException e, boolean writer) {
        synchronized (io) {
            if (ioFailure == null) {
                ioFailure = e;
            }
            if (writer) {
                writing = false;
            }
            io.notifyAll();
        }
    }

    /**
     * Waits until slot {@code s}'s batch (if any) is sealed and written, on the writers' progress
     * alone (not on the call that sealed it: its worker may go on writing later batches); a failure
     * to seal or write it, or any batch before it, is thrown here.
     */
    private void awaitWritten(Slot s) throws IOException {
        awaitWritten(s.seq + 1);
    }

    /** Waits until {@code batches} batches are written (or one failed). */
    private void awaitWritten(long batches) throws IOException {
        waitWhile(() -> written < batches && ioFailure == null);
        IOException failed;
        synchronized (io) {
            failed = written < batches ? ioFailure : null;
        }
        if (failed != null) {
            throw new IOException(failed.getMessage(), failed);
        }
    }

    /** Waits on {@code io} while {@code waiting} holds (checked under it). Never leaves early, since a
     *  worker may still use our buffers: an interrupt is kept for the caller to see afterwards. */
    private void waitWhile(java.util.function.BooleanSupplier waiting) {
        boolean interrupted = false;
        synchronized (io) {
            while (waiting.getAsBoolean()) {
                try {
                    io.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Every batch in flight is sealed and written (the first failure is this call's). */
    private void drain() throws IOException {
        awaitWritten(submitted);
    }

    /** Writes sealed bytes of slot {@code s} to the inner stream; a failure names the file. A local
     *  file (pipelined, so on a worker) takes them straight from native memory through its channel. */
    private void writeSealed(Slot s, int n) throws IOException {
        ByteBuffer b = s.sealed.buffer.duplicate();
        b.clear().limit(n);
        try {
            if (channel != null) {
                while (b.hasRemaining()) {
                    channel.write(b);
                }
                return;
            }
            if (scratch == null) {
                scratch = new byte[seg + overhead];
            }
            while (b.hasRemaining()) {
                int take = Math.min(scratch.length, b.remaining());
                b.get(scratch, 0, take);
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

    /** Writes out what is sealed; the file is made durable on close, once it is complete. */
    @Override
    public synchronized void sync() throws IOException {
        flush();
        syncOnClose = true;
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
            if (syncOnClose) {
                out.sync();
            }
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
        // Python and the workers may still use our buffers and the inner stream: wait for them
        for (Slot s : ring) {
            if (s.call != null) {
                try {
                    s.call.await("seal");
                } catch (IOException | RuntimeException ignored) {
                    // the first failure is the one reported
                }
                s.call = null;
            }
        }
        waitWhile(() -> writing);
        engine.discard(handle);
        release();
        try {
            out.close();
        } catch (IOException ignored) {
            // the first failure is the one reported
        }
    }

    private void giveBack(Slot s) {
        engine.buffers.give(s.plain);
        engine.buffers.give(s.sealed);
        s.plain = null;
        s.sealed = null;
    }

    private void release() {
        for (Slot s : ring) {
            giveBack(s);
        }
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then the segments
 * sealed by Python as batches fill, the last one (flagged last) on {@link #close()}.
 *
 * <p>A thin adapter over a {@link WritePipeline} and its {@link SealingStage}: Flink's thread
 * (serializing state) copies plaintext into the stream's plaintext buffer (one segment) and, each time
 * it is full, seals it into the current batch by calling Python itself ({@link CallerPython}: the bytes
 * are still in its core's cache, and no other thread waits for them). A stream that holds one of the
 * process's {@link WorkerSlots} (one by default: a file written alone) has its full batches written to
 * the inner stream on the bridge's workers, in order, one batch at a time, while Flink's thread goes
 * on; the caller never touches the inner stream while batches are in flight, and the workers are never
 * interrupted (a local file's channel, which takes sealed bytes straight from native memory, would
 * close on an interrupt). Any other stream (files written side by side) writes each segment on the
 * caller's thread as soon as it is sealed: a local file by Python, in the call that seals it, to the
 * file's descriptor; any other inner stream through its {@code byte[]} writes (which an interrupt
 * does not stop either), as does every stream without zero copy (its segments copied through pemja).
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

    /** Batches per stream (JVM property {@code heliosdb.crypto.pipeline-depth}, 2-16, default 4): with
     *  2 MiB batches, 8 MiB of sealed bytes in flight per large file (and the stream's plaintext buffer). */
    static final int DEPTH = Math.max(2, Math.min(16, Integer.getInteger("heliosdb.crypto.pipeline-depth", 4)));

    private final FSDataOutputStream out;
    private final PythonSession session;
    private final String path;
    private final long handle;
    private final SealingStage stage;
    private final WritePipeline pipeline;
    private boolean worker; // holds a WorkerSlots slot: its batches are written on a worker
    private long total;
    private boolean syncOnClose;
    private boolean closed;
    private IOException failure;

    EncryptingOutputStream(FSDataOutputStream out, PythonSession session, String path) throws IOException {
        this(out, session, path, newFileOrClose(out, session, path));
    }

    /** With the file's keys already made ({@link EncryptedFileSystem#create} makes them first). */
    EncryptingOutputStream(FSDataOutputStream out, PythonSession session, String path, PythonSession.NewFile f)
            throws IOException {
        this.out = out;
        this.session = session;
        this.path = path;
        this.handle = f.handle;
        int seg = f.segmentSize;
        boolean zeroCopy = session.buffers.zeroCopy();
        this.worker = zeroCopy && WorkerSlots.SHARED.take();
        // a stream without a slot seals (and writes) what its plaintext buffer holds: SealingStage.SEAL_BYTES
        // of whole segments per call (one at the default segment size; 16 of ForSt's small ones)
        int maxSegments = !zeroCopy ? 1 : NativeBuffers.batchSegments(seg,
                worker ? NativeBuffers.WRITE_BATCH_BYTES : SealingStage.SEAL_BYTES);
        // a local file's channel only on a worker: on Flink's thread an interrupt (Flink cancelling)
        // would close it mid-file, where the inner stream's own writes carry on, as file://'s do; there
        // Python writes each sealed segment to the file's descriptor as it seals it
        this.stage = new SealingStage(session, out, worker ? InnerChannels.writable(out) : null,
                zeroCopy && !worker ? InnerChannels.fd(out) : -1, path, handle, seg, f.overhead, maxSegments);
        WritePipeline p = null;
        try {
            p = worker
                    ? new WritePipeline(stage, session.bridge::execute, seg, maxSegments, DEPTH)
                    : new WritePipeline(stage, Runnable::run, seg, maxSegments, 1); // written as sealed
            out.write(f.header);
        } catch (IOException | RuntimeException e) {
            this.pipeline = p;
            fail(e instanceof IOException ? (IOException) e : new IOException(Printable.shown(path) + ": " + e, e));
            closeQuietly();
            throw e;
        }
        this.pipeline = p;
    }

    private static PythonSession.NewFile newFileOrClose(FSDataOutputStream out, PythonSession session, String path)
            throws IOException {
        try {
            return session.newFile(path);
        } catch (IOException e) {
            out.close();
            throw e;
        }
    }

    @Override
    public synchronized long getPos() {
        return total;
    }

    @Override
    public synchronized void write(int b) throws IOException {
        check();
        try {
            pipeline.write((byte) b);
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        total++;
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        check();
        try {
            pipeline.write(b, off, len);
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
        total += len;
    }

    /** Hands the last batch to the pipeline: it ends the file. */
    private void emitLast() throws IOException {
        try {
            pipeline.submit(true);
        } catch (IOException | RuntimeException e) {
            throw failed(e);
        }
    }

    private IOException failed(Exception e) {
        IOException io = e instanceof IOException ? (IOException) e
                : new IOException(Printable.shown(path) + ": encryption failed: " + e, e);
        fail(io);
        return io;
    }

    private void check() throws IOException {
        if (closed) {
            throw PythonSession.closedStream(path);
        }
        if (failure != null) {
            throw new IOException(Printable.shown(path) + ": an earlier write failed; this file is incomplete", failure);
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
            pipeline.drain();
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
            throw new IOException(Printable.shown(path) + ": closed after a failed write; the file has no final segment", failure);
        }
        try {
            emitLast();
            pipeline.drain();
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
        session.finish(handle, total);
        release();
    }

    /** Gives every buffer back, once the workers left them, and the worker slot. */
    private void release() {
        if (pipeline != null) {
            pipeline.release();
            stage.release();
        }
        if (worker) {
            worker = false;
            WorkerSlots.SHARED.give();
        }
    }

    /** Ends a failed file: waits for the workers to leave its buffers and the inner stream, reports
     *  the file aborted, closes the inner stream. */
    private void closeQuietly() {
        closed = true;
        release();
        session.discard(handle);
        try {
            out.close();
        } catch (IOException ignored) {
            // the first failure is the one reported
        }
    }
}

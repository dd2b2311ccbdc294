package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * Plaintext in, the encrypted file out to the inner stream: the header first, then the segments
 * sealed by Python as batches fill, the last one (flagged last) on {@link #close()}.
 *
 * <p>A thin adapter over a {@link WritePipeline}: Flink's thread (serializing state) copies
 * plaintext into the current batch and, when it is full, seals it by calling Python itself
 * ({@link CallerPython}: the bytes are still in its core's cache, and no other thread waits for
 * them); sealed batches are written to the inner stream on the bridge's workers, in order, one batch
 * at a time, while Flink's thread goes on. The caller never touches the inner stream while batches
 * are in flight, and the workers are never interrupted (a local file's channel, which takes sealed
 * bytes straight from native memory, would close on an interrupt). Without zero copy there is no
 * pipeline: each segment is sealed (copied through pemja) and written on the caller's thread.
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

    /** Batch buffers per stream (JVM property {@code heliosdb.crypto.pipeline-depth}, 2-16, default 4):
     *  with 1 MiB batches, 4 MiB of plaintext (and as much ciphertext) in flight per large file. */
    static final int DEPTH = Math.max(2, Math.min(16, Integer.getInteger("heliosdb.crypto.pipeline-depth", 4)));

    /** A batch's plaintext buffer and the buffer Python seals it into, both registered with Python.
     *  Batches of the largest size share one plaintext buffer (the stream's {@code sharedPlain}): a
     *  batch is sealed as it is submitted, so its plaintext is free before the next is filled, and
     *  Flink's thread keeps copying into the same memory, in its core's cache. */
    private static final class Sealable extends WritePipeline.Batch {
        final NativeBuffers.Registered plain;
        final NativeBuffers.Registered sealed;
        final boolean shared;
        int sealedLength;

        Sealable(NativeBuffers.Registered plain, NativeBuffers.Registered sealed, boolean shared) {
            super(plain.buffer);
            this.plain = plain;
            this.sealed = sealed;
            this.shared = shared;
        }
    }

    private final FSDataOutputStream out;
    private final WritableByteChannel channel; // the local file's, or null
    private final PythonSession session;
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final WritePipeline pipeline;
    private byte[] scratch;       // used by one worker at a time (the pipeline's order)
    private final int maxSegments;
    private NativeBuffers.Registered sharedPlain; // the largest batches' plaintext, Flink's thread only
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
        this.seg = f.segmentSize;
        this.overhead = f.overhead;
        boolean pipelined = session.buffers.zeroCopy();
        this.maxSegments = pipelined ? NativeBuffers.batchSegments(seg, NativeBuffers.WRITE_BATCH_BYTES) : 1;
        this.channel = pipelined ? InnerChannels.writable(out) : null;
        WritePipeline p = null;
        try {
            p = pipelined
                    ? new WritePipeline(new Stage(), session.bridge::execute, seg, maxSegments, DEPTH)
                    : new WritePipeline(new Stage(), Runnable::run, seg, 1, 1);
            out.write(f.header);
        } catch (IOException | RuntimeException e) {
            this.pipeline = p;
            fail(e instanceof IOException ? (IOException) e : new IOException(path + ": " + e, e));
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

    /** Seals batches for the pipeline on the caller's thread, writes them on its workers. */
    private final class Stage implements WritePipeline.Stage {
        @Override
        public WritePipeline.Batch take(int segments) throws IOException {
            for (int n = segments; ; n = Math.max(1, n / 2)) { // fewer if direct memory runs short
                NativeBuffers.Registered plain = null;
                boolean share = n == maxSegments && n > 1;
                try {
                    if (share && sharedPlain == null) {
                        sharedPlain = session.buffers.take(n * seg);
                    }
                    plain = share ? sharedPlain : session.buffers.take(n * seg);
                    return new Sealable(plain, session.buffers.take(n * (seg + overhead)), share);
                } catch (NativeBuffers.DirectMemoryExhausted e) {
                    if (!share) {
                        session.buffers.give(plain);
                    }
                    if (n == 1) {
                        throw e;
                    }
                }
            }
        }

        @Override
        public void prepare(WritePipeline.Batch b) throws IOException {
            Sealable s = (Sealable) b;
            try {
                s.sealedLength = session.sealHere(handle, s.firstSegment, s.last, s.plain, s.length, s.sealed);
            } catch (RuntimeException e) {
                throw new IOException(path + ": encryption failed: " + e, e);
            }
        }

        @Override
        public void process(WritePipeline.Batch b) throws IOException {
            Sealable s = (Sealable) b;
            writeSealed(s.sealed.buffer, s.sealedLength);
        }

        @Override
        public void give(WritePipeline.Batch b) {
            if (!((Sealable) b).shared) {
                session.buffers.give(((Sealable) b).plain);
            }
            session.buffers.give(((Sealable) b).sealed);
        }
    }

    /** Writes {@code n} sealed bytes to the inner stream; a failure names the file. A local file
     *  (pipelined, so on a worker) takes them straight from native memory through its channel. */
    private void writeSealed(ByteBuffer sealed, int n) throws IOException {
        ByteBuffer b = sealed.duplicate();
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
            throw PythonSession.innerFailure(path, "writing", e);
        }
    }

    @Override
    public synchronized long getPos() {
        return total;
    }

    @Override
    public synchronized void write(int b) throws IOException {
        check();
        if (pipeline.room() == 0) {
            emit(false);
        }
        pipeline.put((byte) b);
        total++;
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        if (off < 0 || len < 0 || off + len > b.length) {
            throw new IndexOutOfBoundsException();
        }
        check();
        while (len > 0) {
            if (pipeline.room() == 0) {
                emit(false); // full segments and more data follows: none is the last one
            }
            int take = Math.min(pipeline.room(), len);
            pipeline.put(b, off, take);
            off += take;
            len -= take;
            total += take;
        }
    }

    /** Hands the current batch to the pipeline (the last one: it ends the file). */
    private void emit(boolean last) throws IOException {
        try {
            pipeline.submit(last);
        } catch (IOException | RuntimeException e) {
            throw failed(e);
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
            throw new IOException(path + ": closed after a failed write; the file has no final segment", failure);
        }
        try {
            emit(true);
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

    /** Gives every buffer back, once the workers left them. */
    private void release() {
        pipeline.release();
        session.buffers.give(sharedPlain);
        sharedPlain = null;
    }

    /** Ends a failed file: waits for the workers to leave its buffers and the inner stream, reports
     *  the file aborted, closes the inner stream. */
    private void closeQuietly() {
        closed = true;
        if (pipeline != null) {
            release();
        }
        session.discard(handle);
        try {
            out.close();
        } catch (IOException ignored) {
            // the first failure is the one reported
        }
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * How an {@link EncryptingOutputStream}'s batches are made, sealed and written (its
 * {@link WritePipeline.Stage}): a batch is sealed by Python on the caller's thread as it is submitted
 * ({@link PythonSession#sealHere}), and written to the inner stream on a worker. A local file's
 * channel takes the sealed bytes straight from native memory; any other inner stream gets them through
 * a {@code byte[]}.
 */
final class SealingStage implements WritePipeline.Stage {

    /** A batch's plaintext buffer and the buffer Python seals it into, both registered with Python.
     *  Batches of the largest size share one plaintext buffer ({@code sharedPlain}): a
     *  batch is sealed as it is submitted, so its plaintext is free before the next is filled, and
     *  Flink's thread keeps copying into the same memory, in its core's cache. */
    private static final class Sealable extends WritePipeline.Batch {
        final NativeBuffers.Registered plain;
        final NativeBuffers.Registered sealed;
        int sealedLength;

        Sealable(NativeBuffers.Registered plain, NativeBuffers.Registered sealed) {
            super(plain.buffer);
            this.plain = plain;
            this.sealed = sealed;
        }
    }

    private final PythonSession session;
    private final FSDataOutputStream out;
    private final WritableByteChannel channel; // the local file's, or null
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final int maxSegments;
    private byte[] scratch;       // used by one worker at a time (the pipeline's order)
    private NativeBuffers.Registered sharedPlain; // the largest batches' plaintext, the caller's only

    SealingStage(PythonSession session, FSDataOutputStream out, WritableByteChannel channel, String path, long handle,
                 int seg, int overhead, int maxSegments) {
        this.session = session;
        this.out = out;
        this.channel = channel;
        this.path = path;
        this.handle = handle;
        this.seg = seg;
        this.overhead = overhead;
        this.maxSegments = maxSegments;
    }

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
                return new Sealable(plain, session.buffers.take(n * (seg + overhead)));
            } catch (NativeBuffers.DirectMemoryExhausted e) {
                if (plain != sharedPlain) {
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
            throw new IOException(Printable.shown(path) + ": encryption failed: " + e, e);
        }
    }

    @Override
    public void process(WritePipeline.Batch b) throws IOException {
        Sealable s = (Sealable) b;
        writeSealed(s.sealed.buffer, s.sealedLength);
    }

    @Override
    public void give(WritePipeline.Batch b) {
        Sealable s = (Sealable) b;
        if (s.plain != sharedPlain) { // the shared one goes back at release()
            session.buffers.give(s.plain);
        }
        session.buffers.give(s.sealed);
    }

    /** After the pipeline gave every batch back: the shared plaintext buffer goes back too. */
    void release() {
        session.buffers.give(sharedPlain);
        sharedPlain = null;
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
}

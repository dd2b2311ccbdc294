package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * How an {@link EncryptingOutputStream}'s batches are made, sealed and written (its
 * {@link WritePipeline.Stage}): Flink's thread copies into one plaintext buffer per stream, of
 * {@link #SEAL_BYTES} (four segments by default), and seals it with Python ({@link PythonSession#sealHere})
 * each time it fills, into the batch's sealed buffer at that part's place; a batch (2 MiB by default) is
 * written to the inner stream on a worker, or, for a stream without a worker slot ({@link WorkerSlots}),
 * each batch of {@link #SEAL_BYTES} on the caller's thread as soon as it is sealed. On a worker a local file's
 * channel takes the sealed bytes straight from native memory. On the caller's thread a local file is
 * written by Python in the call that seals ({@link PythonSession#sealWrite}: from native memory, the
 * bytes still in the core's cache, and no Java interrupt stops it); any other inner stream gets them
 * through a {@code byte[]}.
 */
final class SealingStage implements WritePipeline.Stage {

    /**
     * Plaintext bytes per sealing call (JVM system property {@code heliosdb.crypto.seal-bytes}, default
     * 1 MiB: one segment at the default segment size, four of 256 KiB; whole segments, at least one, at most a batch
     * and 16 segments; a whole batch when the writing thread seals through the bridge's workers,
     * {@link CallerPython}). Each call finds the interpreter out of the core's cache after the bytes
     * sealed since the last one, so fewer, larger calls cost less than the cache misses of a larger
     * plaintext buffer: 512 KiB against 256 KiB, and 1 MiB against 512 KiB, each lowered the CPU a
     * write adds over AES-GCM's in 8 of 10 runs, and its time (docs/performance.md, "The shape").
     */
    static final int SEAL_BYTES = Integer.getInteger("heliosdb.crypto.seal-bytes", 1 << 20);

    /** Largest piece of sealed bytes copied onto the heap per write to an inner stream without a channel
     *  (S3, GCS, HDFS, memory): 256 KiB stays in the core's L2 with the sealed batch; one piece per 1 MiB
     *  segment cost the bridge 3-7% of its encrypt rate (docs/performance.md, "The engine and the bridge"). */
    static final int SCRATCH_BYTES = 256 << 10;

    /** A batch's plaintext buffer (the stream's, {@link #plain}, when it was made) and the buffer Python
     *  seals it into, both registered with Python, and the sealed bytes in it. */
    private static final class Sealable extends WriteBatch {
        final NativeBuffers.Registered plain;
        final NativeBuffers.Registered sealed;
        int sealedLength;

        Sealable(NativeBuffers.Registered plain, NativeBuffers.Registered sealed, int capacity) {
            super(plain.buffer, capacity);
            this.plain = plain;
            this.sealed = sealed;
        }
    }

    private final PythonSession session;
    private final FSDataOutputStream out;
    private final WritableByteChannel channel; // the local file's (written on a worker), or null
    private final int fd;                      // the local file's descriptor, Python writing each part as sealed; or -1
    private final String path;
    private final long handle;
    private final int seg;
    private final int overhead;
    private final int sealSegments;
    private byte[] scratch;       // used by one thread at a time (the pipeline's order)
    /** The stream's plaintext buffer, every new batch's, the caller's only: a batch's plaintext is
     *  sealed before the next batch takes the buffer. Up to {@code sealSegments}, as large as the
     *  batches need (they grow); the smaller ones it replaced go back at {@link #release()}. */
    private NativeBuffers.Registered plain;
    private final java.util.List<NativeBuffers.Registered> outgrown = new java.util.ArrayList<>();

    SealingStage(PythonSession session, FSDataOutputStream out, WritableByteChannel channel, int fd, String path,
                 long handle, int seg, int overhead, int maxSegments) {
        this.session = session;
        this.out = out;
        this.channel = channel;
        this.fd = fd;
        this.path = path;
        this.handle = handle;
        this.seg = seg;
        this.overhead = overhead;
        // a thread without its own interpreter seals through a worker, a hand-off per call: per batch
        int perCall = maxSegments > 1 && CallerPython.onThisThread(session.bridge)
                ? SEAL_BYTES / seg : maxSegments;
        this.sealSegments = Math.max(1, Math.min(maxSegments, perCall));
    }

    @Override
    public WriteBatch take(int segments) throws IOException {
        for (int n = segments; ; n = Math.max(1, n / 2)) { // fewer if direct memory runs short
            try {
                int p = Math.min(n, sealSegments) * seg;
                if (plain == null || plain.buffer.capacity() < p) {
                    NativeBuffers.Registered grown = session.buffers.take(p);
                    if (plain != null) {
                        outgrown.add(plain);
                    }
                    plain = grown;
                }
                return new Sealable(plain, session.buffers.take(n * (seg + overhead)), n * seg);
            } catch (NativeBuffers.DirectMemoryExhausted e) {
                if (n == 1) {
                    throw e;
                }
            }
        }
    }

    @Override
    public void prepare(WriteBatch b) throws IOException {
        Sealable s = (Sealable) b;
        long index = s.firstSegment + s.base / seg;
        try {
            if (fd >= 0) { // sealed and written by Python: nothing left for process()
                session.sealWrite(handle, index, s.last, s.plain, s.length - s.base, s.sealed, fd);
                return;
            }
            s.sealedLength += session.sealHere(handle, index, s.last, s.plain, s.length - s.base, s.sealed,
                    s.sealedLength);
        } catch (RuntimeException e) {
            throw new IOException(Printable.shown(path) + ": encryption failed: " + e, e);
        }
    }

    @Override
    public void process(WriteBatch b) throws IOException {
        Sealable s = (Sealable) b;
        if (s.sealedLength > 0) { // nothing when Python wrote what it sealed (sealWrite)
            writeSealed(s.sealed.buffer, s.sealedLength);
            s.sealedLength = 0;
        }
    }

    @Override
    public void give(WriteBatch b) {
        session.buffers.give(((Sealable) b).sealed);
    }

    /** After the pipeline gave every batch back: the plaintext buffers go back too. */
    void release() {
        session.buffers.give(plain);
        plain = null;
        outgrown.forEach(session.buffers::give);
        outgrown.clear();
    }

    /** Writes {@code n} sealed bytes to the inner stream; a failure names the file. A local file
     *  takes them straight from native memory through its channel. */
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
                scratch = new byte[Math.min(seg + overhead, SCRATCH_BYTES)];
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

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.ByteBufferReadable;
import org.apache.flink.core.fs.FSDataInputStream;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where {@link DecryptingInputStream} gets sealed bytes: ranges of the inner file read into native
 * buffers. Flink's local file stream is read straight into them by position; any other inner stream
 * as a stream through a byte[] ({@link InnerChannels#positional}: a positional read of an object
 * store's stream is a request of its own, and Flink's Hadoop wrapper fills a direct ByteBuffer one byte
 * at a time), seeking only where it is not already (sequential reads make no new request).
 */
final class CiphertextSource {

    private final FSDataInputStream in;
    private final String path;
    private final int chunk;
    private ByteBufferReadable direct; // positional reads (Flink's local file stream only)
    private byte[] scratch;

    CiphertextSource(FSDataInputStream in, String path, int chunk) {
        this.in = in;
        this.path = path;
        this.chunk = chunk;
        this.direct = InnerChannels.positional(in);
    }

    /** Whether reads are positional reads of a local file (no request, no network wait). */
    boolean local() {
        return direct != null;
    }

    /** Fills {@code b} (from its position to its limit) with the bytes at {@code offset}; the opaque
     *  authentication failure if the file ends first (shorter than its length said). */
    void readFully(long offset, ByteBuffer b) throws IOException {
        int start = b.position();
        if (direct != null) {
            try {
                while (b.hasRemaining()) {
                    if (direct.read(offset + b.position() - start, b) < 0) {
                        throw CryptoIOException.authentication(path);
                    }
                }
                return;
            } catch (UnsupportedOperationException e) {
                direct = null; // declared but not supported by this stream (some Hadoop streams): copy
                b.position(start);
            }
        }
        if (scratch == null) {
            scratch = new byte[chunk];
        }
        in.seek(offset);
        while (b.hasRemaining()) {
            int take = Math.min(scratch.length, b.remaining());
            if (!SegmentLayout.readFully(in, scratch, 0, take)) {
                throw CryptoIOException.authentication(path);
            }
            b.put(scratch, 0, take);
        }
    }
}

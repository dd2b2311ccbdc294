package io.heliosdb.flink.crypto;

import java.nio.ByteBuffer;

/**
 * A batch of a {@link WritePipeline}: its plaintext buffer and what the pipeline records of it. The
 * plaintext buffer may hold less than the batch (whole segments): when it is full and the batch is
 * not, the stage prepares what it holds ({@link WritePipeline.Stage#prepare}) and the buffer takes the
 * batch's next bytes.
 */
class WriteBatch {
    final ByteBuffer plain;
    private final int capacity;
    /** Plaintext bytes in the batch, the index of its first segment, whether it ends the file. */
    int length;
    long firstSegment;
    boolean last;
    /** Bytes of the batch prepared already (no longer in {@code plain}, which holds the rest). */
    int base;

    WriteBatch(ByteBuffer plain) {
        this(plain, plain.capacity());
    }

    WriteBatch(ByteBuffer plain, int capacity) {
        this.plain = plain;
        this.capacity = capacity;
    }

    int capacity() {
        return capacity;
    }
}

package io.heliosdb.flink.crypto;

import java.io.IOException;

/**
 * The 16-byte header prefix and the segment arithmetic of format/layout.py (docs/format.md
 * F-5, F-6, F-14..F-17): enough to turn ciphertext lengths and offsets into plaintext ones without
 * Python. A file of n plaintext bytes has max(1, ceil(n / S)) segments, each its plaintext length
 * plus a fixed per-suite overhead O.
 */
final class SegmentLayout {

    static final int PREFIX_LEN = 16;
    static final int SUITE_AES_GCM = 1;
    static final int SUITE_AES_CBC_HMAC = 2;
    static final int MIN_SEGMENT = 16;
    static final int MAX_SEGMENT = 16 * 1024 * 1024;
    static final int MAX_HEADER = 64 * 1024;
    /** PREFIX_LEN + fixed fields + tenant length + slot count + one empty slot + commitment + MAC. */
    static final int MIN_HEADER = PREFIX_LEN + 64 + 2 + 1 + 6 + 32 + 32;
    static final long MAX_SEGMENTS = 0xFFFFFFFFL;

    final int suite;
    final int headerLen;
    final int segmentSize;
    final int overhead;

    SegmentLayout(int suite, int headerLen, int segmentSize) {
        this.suite = suite;
        this.headerLen = headerLen;
        this.segmentSize = segmentSize;
        this.overhead = overhead(suite);
    }

    static int overhead(int suite) {
        return suite == SUITE_AES_GCM ? 16 : 48;
    }

    /** Parses and checks the prefix (magic HFCE, version 1, suite, flags, lengths). */
    static SegmentLayout parsePrefix(byte[] p, String path) throws IOException {
        if (p.length < PREFIX_LEN) {
            throw new CryptoIOException(path + ": too short to be an encrypted checkpoint file");
        }
        if (p[0] != 'H' || p[1] != 'F' || p[2] != 'C' || p[3] != 'E') {
            throw new CryptoIOException(path + ": not an encrypted checkpoint file (bad magic)");
        }
        int version = p[4] & 0xff;
        int suite = p[5] & 0xff;
        int flags = ((p[6] & 0xff) << 8) | (p[7] & 0xff);
        long hlen = u32(p, 8);
        long seg = u32(p, 12);
        if (version != 1) {
            throw new CryptoIOException(path + ": unsupported format version " + version);
        }
        if (suite != SUITE_AES_GCM && suite != SUITE_AES_CBC_HMAC) {
            throw new CryptoIOException(path + ": unknown algorithm suite " + suite);
        }
        if (flags != 0) {
            throw new CryptoIOException(path + ": reserved flags are set");
        }
        if (hlen < MIN_HEADER || hlen > MAX_HEADER) {
            throw new CryptoIOException(path + ": header length " + hlen + " is not allowed");
        }
        if (seg < MIN_SEGMENT || seg > MAX_SEGMENT || seg % 16 != 0) {
            throw new CryptoIOException(path + ": segment size " + seg + " is not allowed");
        }
        return new SegmentLayout(suite, (int) hlen, (int) seg);
    }

    private static long u32(byte[] b, int off) {
        return ((b[off] & 0xffL) << 24) | ((b[off + 1] & 0xffL) << 16) | ((b[off + 2] & 0xffL) << 8) | (b[off + 3] & 0xffL);
    }

    static long segmentCount(long plainLen, int seg) {
        return Math.max(1, (plainLen + seg - 1) / seg);
    }

    long ciphertextLength(long plainLen) {
        return headerLen + plainLen + segmentCount(plainLen, segmentSize) * overhead;
    }

    /** Plaintext length of a complete file of {@code ctLen} bytes; an error naming the file if no file has that length. */
    long plaintextLength(long ctLen, String path) throws IOException {
        long body = ctLen - headerLen;
        if (body < overhead) {
            throw new CryptoIOException(path + ": truncated: no final segment");
        }
        long full = segmentSize + (long) overhead;
        long count = (body + full - 1) / full;
        long last = body - (count - 1) * full;
        if (last < overhead || (last == overhead && count > 1) || count > MAX_SEGMENTS) {
            throw new CryptoIOException(path + ": truncated or extended: length fits no segment layout");
        }
        return body - count * overhead;
    }

    long segmentOffset(long index) {
        return headerLen + index * (segmentSize + (long) overhead);
    }
}

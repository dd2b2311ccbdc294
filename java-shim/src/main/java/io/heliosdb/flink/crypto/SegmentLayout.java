package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * The 16-byte header prefix and the segment arithmetic of format/layout.py (docs/format.md
 * F-5, F-6, F-14..F-17): enough to turn ciphertext lengths and offsets into plaintext ones without
 * Python. A file of n plaintext bytes has max(1, ceil(n / S)) segments, each its plaintext length
 * plus a fixed per-suite overhead O. Format versions 1 and 2 share this prefix and layout (version 2
 * adds the name field after the tenant); whether version 1 may be read is decided in Python.
 */
final class SegmentLayout {

    static final int PREFIX_LEN = 16;
    static final int SUITE_AES_GCM = 1;
    static final int SUITE_AES_CBC_HMAC = 2;
    static final int MIN_SEGMENT = 16;
    static final int MAX_SEGMENT = 16 * 1024 * 1024;
    static final int MAX_HEADER = 64 * 1024;
    static final int VERSION_1 = 1;
    static final int VERSION = 2;
    /** Longest binding name in a version 2 header (UTF-8 bytes), as format/header.py MAX_NAME. */
    static final int MAX_NAME = 1024;
    /** Version 1: PREFIX_LEN + fixed fields + tenant length + slot count + one empty slot + commitment + MAC. */
    static final int MIN_HEADER_V1 = PREFIX_LEN + 64 + 2 + 1 + 6 + 32 + 32;
    /** Version 2 adds the name's length field. */
    static final int MIN_HEADER = MIN_HEADER_V1 + 2;
    /** The most segments a file may have (indexes 0 .. MAX_SEGMENTS - 1): what Python's writer can seal
     *  and its readers accept (format/layout.py MAX_SEGMENTS). */
    static final long MAX_SEGMENTS = 0xFFFFFFFFL;

    final int version;
    final int suite;
    final int headerLen;
    final int segmentSize;
    final int overhead;

    SegmentLayout(int version, int suite, int headerLen, int segmentSize) {
        this.version = version;
        this.suite = suite;
        this.headerLen = headerLen;
        this.segmentSize = segmentSize;
        this.overhead = overhead(suite);
    }

    static int overhead(int suite) {
        return suite == SUITE_AES_GCM ? 16 : 48;
    }

    /** Parses and checks the prefix (magic HFCE, version 1 or 2, suite, flags, lengths). */
    static SegmentLayout parsePrefix(byte[] p, String path) throws IOException {
        if (p.length < PREFIX_LEN) {
            throw CryptoIOException.format(path, "too short to be an encrypted checkpoint file");
        }
        if (p[0] != 'H' || p[1] != 'F' || p[2] != 'C' || p[3] != 'E') {
            throw CryptoIOException.format(path, "not an encrypted checkpoint file (bad magic)");
        }
        int version = p[4] & 0xff;
        int suite = p[5] & 0xff;
        int flags = ((p[6] & 0xff) << 8) | (p[7] & 0xff);
        long hlen = u32(p, 8);
        long seg = u32(p, 12);
        if (version != VERSION_1 && version != VERSION) {
            throw CryptoIOException.format(path, "unsupported format version " + version);
        }
        if (suite != SUITE_AES_GCM && suite != SUITE_AES_CBC_HMAC) {
            throw CryptoIOException.format(path, "unknown algorithm suite " + suite);
        }
        if (flags != 0) {
            throw CryptoIOException.format(path, "reserved flags are set");
        }
        if (hlen < (version == VERSION_1 ? MIN_HEADER_V1 : MIN_HEADER) || hlen > MAX_HEADER) {
            throw CryptoIOException.format(path, "header length " + hlen + " is not allowed");
        }
        if (seg < MIN_SEGMENT || seg > MAX_SEGMENT || seg % 16 != 0) {
            throw CryptoIOException.format(path, "segment size " + seg + " is not allowed");
        }
        return new SegmentLayout(version, suite, (int) hlen, (int) seg);
    }

    /** The prefix and the whole header at the start of {@code in}, the prefix's fields checked (not yet
     *  authenticated: Python does that). */
    static byte[] readHeader(FSDataInputStream in, String path) throws IOException {
        byte[] prefix = new byte[PREFIX_LEN];
        if (!readFully(in, prefix, 0, PREFIX_LEN)) {
            throw CryptoIOException.format(path, "too short to be an encrypted checkpoint file");
        }
        byte[] header = Arrays.copyOf(prefix, parsePrefix(prefix, path).headerLen);
        if (!readFully(in, header, PREFIX_LEN, header.length - PREFIX_LEN)) {
            throw CryptoIOException.format(path, "file ends inside its header");
        }
        return header;
    }

    /** Reads exactly {@code len} bytes; false if the stream ended first. */
    static boolean readFully(InputStream in, byte[] b, int off, int len) throws IOException {
        while (len > 0) {
            int r = in.read(b, off, len);
            if (r < 0) {
                return false;
            }
            off += r;
            len -= r;
        }
        return true;
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
            throw CryptoIOException.format(path, "truncated: no final segment");
        }
        long full = segmentSize + (long) overhead;
        long count = (body + full - 1) / full;
        long last = body - (count - 1) * full;
        if (last < overhead || (last == overhead && count > 1) || count > MAX_SEGMENTS) {
            throw CryptoIOException.format(path, "truncated or extended: length fits no segment layout");
        }
        return body - count * overhead;
    }

    long segmentOffset(long index) {
        return headerLen + index * (segmentSize + (long) overhead);
    }
}

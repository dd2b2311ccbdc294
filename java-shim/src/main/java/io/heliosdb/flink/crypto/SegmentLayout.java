package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static io.heliosdb.flink.crypto.FormatConstants.FLAGS_OFFSET;
import static io.heliosdb.flink.crypto.FormatConstants.HEADER_LENGTH_OFFSET;
import static io.heliosdb.flink.crypto.FormatConstants.MAGIC;
import static io.heliosdb.flink.crypto.FormatConstants.MAX_HEADER_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.MAX_SEGMENTS;
import static io.heliosdb.flink.crypto.FormatConstants.MAX_SEGMENT_SIZE;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_HEADER_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_HEADER_LEN_V1;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_SEGMENT_SIZE;
import static io.heliosdb.flink.crypto.FormatConstants.OVERHEAD_AES_CBC_HMAC;
import static io.heliosdb.flink.crypto.FormatConstants.OVERHEAD_AES_GCM;
import static io.heliosdb.flink.crypto.FormatConstants.PREFIX_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.SEGMENT_ALIGN;
import static io.heliosdb.flink.crypto.FormatConstants.SEGMENT_SIZE_OFFSET;
import static io.heliosdb.flink.crypto.FormatConstants.SUITE_AES_CBC_HMAC;
import static io.heliosdb.flink.crypto.FormatConstants.SUITE_AES_GCM;
import static io.heliosdb.flink.crypto.FormatConstants.SUITE_OFFSET;
import static io.heliosdb.flink.crypto.FormatConstants.VERSION;
import static io.heliosdb.flink.crypto.FormatConstants.VERSION_1;
import static io.heliosdb.flink.crypto.FormatConstants.VERSION_OFFSET;

/**
 * The 16-byte header prefix and the segment arithmetic of format/layout.py (docs/format.md
 * F-5, F-6, F-14..F-17): enough to turn ciphertext lengths and offsets into plaintext ones without
 * Python. A file of n plaintext bytes has max(1, ceil(n / S)) segments, each its plaintext length
 * plus a fixed per-suite overhead O. Format versions 1 and 2 share this prefix and layout (version 2
 * adds the name field after the tenant); whether version 1 may be read is decided in Python.
 * Every number comes from {@link FormatConstants}, generated from format/.
 */
final class SegmentLayout {

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
        return suite == SUITE_AES_GCM ? OVERHEAD_AES_GCM : OVERHEAD_AES_CBC_HMAC;
    }

    /** Parses and checks the prefix (magic HFCE, version 1 or 2, suite, flags, lengths). */
    static SegmentLayout parsePrefix(byte[] p, String path) throws IOException {
        if (p.length < PREFIX_LEN) {
            throw CryptoIOException.format(path, "too short to be an encrypted checkpoint file");
        }
        if (!new String(p, 0, MAGIC.length(), StandardCharsets.ISO_8859_1).equals(MAGIC)) {
            throw CryptoIOException.format(path, "not an encrypted checkpoint file (bad magic)");
        }
        int version = p[VERSION_OFFSET] & 0xff;
        int suite = p[SUITE_OFFSET] & 0xff;
        int flags = ((p[FLAGS_OFFSET] & 0xff) << 8) | (p[FLAGS_OFFSET + 1] & 0xff);
        long hlen = u32(p, HEADER_LENGTH_OFFSET);
        long seg = u32(p, SEGMENT_SIZE_OFFSET);
        if (version != VERSION_1 && version != VERSION) {
            throw CryptoIOException.format(path, "unsupported format version " + version);
        }
        if (suite != SUITE_AES_GCM && suite != SUITE_AES_CBC_HMAC) {
            throw CryptoIOException.format(path, "unknown algorithm suite " + suite);
        }
        if (flags != 0) {
            throw CryptoIOException.format(path, "reserved flags are set");
        }
        if (hlen < (version == VERSION_1 ? MIN_HEADER_LEN_V1 : MIN_HEADER_LEN) || hlen > MAX_HEADER_LEN) {
            throw CryptoIOException.format(path, "header length " + hlen + " is not allowed");
        }
        if (seg < MIN_SEGMENT_SIZE || seg > MAX_SEGMENT_SIZE || seg % SEGMENT_ALIGN != 0) {
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

package io.heliosdb.flink.crypto;

/**
 * The checkpoint file format's constants (docs/format.md) and the bridge protocol's version, GENERATED
 * from heliosdb_flink_crypto/format/ and flink/bridge.py
 * by {@code python -m heliosdb_flink_crypto.flink.java_mirror}: do not edit by hand.
 */
final class FormatConstants {
    private FormatConstants() {
    }

    /** The first four bytes of every encrypted file (F-1), ASCII. */
    static final String MAGIC = "HFCE";

    /** bytes of the prefix: enough to frame the file (F-16). */
    static final int PREFIX_LEN = 16;

    /** offset of the format version byte (F-2). */
    static final int VERSION_OFFSET = 4;

    /** offset of the suite byte (F-3). */
    static final int SUITE_OFFSET = 5;

    /** offset of the u16 flags, must be 0 (F-4). */
    static final int FLAGS_OFFSET = 6;

    /** offset of the u32 header length H (F-5). */
    static final int HEADER_LENGTH_OFFSET = 8;

    /** offset of the u32 segment size S (F-6). */
    static final int SEGMENT_SIZE_OFFSET = 12;

    /** format version 1: no name field, read only where enabled (F-30). */
    static final int VERSION_1 = 1;

    /** the format version writers write. */
    static final int VERSION = 2;

    /** suite id of AES-256-GCM. */
    static final int SUITE_AES_GCM = 1;

    /** suite id of AES-256-CBC-HMAC-SHA256. */
    static final int SUITE_AES_CBC_HMAC = 2;

    /** bytes an AES-256-GCM segment grows by. */
    static final int OVERHEAD_AES_GCM = 16;

    /** bytes an AES-256-CBC-HMAC-SHA256 segment grows by. */
    static final int OVERHEAD_AES_CBC_HMAC = 48;

    /** smallest segment size. */
    static final int MIN_SEGMENT_SIZE = 16;

    /** largest segment size. */
    static final int MAX_SEGMENT_SIZE = 16777216;

    /** segment sizes are multiples of this. */
    static final int SEGMENT_ALIGN = 16;

    /** largest header length. */
    static final int MAX_HEADER_LEN = 65536;

    /** smallest version 1 header: prefix, fixed fields, empty tenant, one empty slot, commitment, MAC. */
    static final int MIN_HEADER_LEN_V1 = 153;

    /** smallest version 2 header. */
    static final int MIN_HEADER_LEN = 155;

    /** longest binding name in a version 2 header, UTF-8 bytes (F-24). */
    static final int MAX_NAME = 1024;

    /** the most segments a file may have (indexes 0 .. MAX_SEGMENTS - 1, F-14). */
    static final long MAX_SEGMENTS = 4294967295L;

    /** the version of the Java-Python call protocol (flink/bridge.py PROTOCOL): the shim refuses a package that answers another. */
    static final long BRIDGE_PROTOCOL = 4L;
}

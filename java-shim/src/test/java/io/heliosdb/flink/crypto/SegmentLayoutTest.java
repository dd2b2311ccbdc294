package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import static io.heliosdb.flink.crypto.FormatConstants.MAX_HEADER_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.MAX_SEGMENT_SIZE;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_HEADER_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_HEADER_LEN_V1;
import static io.heliosdb.flink.crypto.FormatConstants.MIN_SEGMENT_SIZE;
import static io.heliosdb.flink.crypto.FormatConstants.OVERHEAD_AES_CBC_HMAC;
import static io.heliosdb.flink.crypto.FormatConstants.OVERHEAD_AES_GCM;
import static io.heliosdb.flink.crypto.FormatConstants.PREFIX_LEN;
import static io.heliosdb.flink.crypto.FormatConstants.SEGMENT_ALIGN;
import static io.heliosdb.flink.crypto.FormatConstants.SUITE_AES_CBC_HMAC;
import static io.heliosdb.flink.crypto.FormatConstants.SUITE_AES_GCM;
import static io.heliosdb.flink.crypto.FormatConstants.VERSION;
import static io.heliosdb.flink.crypto.FormatConstants.VERSION_1;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shim's framing without Python: every prefix limit at the edge and one past it, and the length arithmetic. */
class SegmentLayoutTest {

    static byte[] prefix(String magic, int version, int suite, int flags, long headerLen, long segment) {
        ByteBuffer b = ByteBuffer.allocate(PREFIX_LEN);
        b.put(magic.getBytes(StandardCharsets.ISO_8859_1)).put((byte) version).put((byte) suite).putShort((short) flags)
                .putInt((int) headerLen).putInt((int) segment);
        return b.array();
    }

    static byte[] prefix(int version, long headerLen, long segment) {
        return prefix("HFCE", version, SUITE_AES_GCM, 0, headerLen, segment);
    }

    static void refused(byte[] p, String what) {
        CryptoIOException e = assertThrows(CryptoIOException.class, () -> SegmentLayout.parsePrefix(p, "f"));
        assertEquals(CryptoIOException.FORMAT, e.kind());
        assertTrue(e.getMessage().startsWith("f: ") && e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void everyPrefixLimitIsAcceptedAtTheEdgeAndRefusedOnePast() throws Exception {
        SegmentLayout l = SegmentLayout.parsePrefix(prefix(VERSION, MIN_HEADER_LEN, MIN_SEGMENT_SIZE), "f");
        assertEquals(VERSION, l.version);
        assertEquals(MIN_HEADER_LEN, l.headerLen);
        assertEquals(MIN_SEGMENT_SIZE, l.segmentSize);
        assertEquals(MAX_HEADER_LEN, SegmentLayout.parsePrefix(prefix(VERSION, MAX_HEADER_LEN, MAX_SEGMENT_SIZE), "f").headerLen);
        assertEquals(MIN_HEADER_LEN_V1, SegmentLayout.parsePrefix(prefix(VERSION_1, MIN_HEADER_LEN_V1, 32), "f").headerLen);
        refused(prefix(VERSION, MIN_HEADER_LEN - 1, 32), "header length");
        refused(prefix(VERSION_1, MIN_HEADER_LEN_V1 - 1, 32), "header length");
        refused(prefix(VERSION, MAX_HEADER_LEN + 1, 32), "header length");
        refused(prefix(VERSION, MIN_HEADER_LEN, MIN_SEGMENT_SIZE - SEGMENT_ALIGN), "segment size");
        refused(prefix(VERSION, MIN_HEADER_LEN, MAX_SEGMENT_SIZE + SEGMENT_ALIGN), "segment size");
        refused(prefix(VERSION, MIN_HEADER_LEN, MIN_SEGMENT_SIZE + 1), "segment size");
        refused(prefix(VERSION, 0xFFFFFFFFL, 32), "header length");
        refused(prefix(VERSION + 1, MIN_HEADER_LEN, 32), "format version");
        refused(prefix(0, MIN_HEADER_LEN, 32), "format version");
        refused(prefix("HFCE", VERSION, 3, 0, MIN_HEADER_LEN, 32), "suite");
        refused(prefix("HFCE", VERSION, SUITE_AES_GCM, 1, MIN_HEADER_LEN, 32), "flags");
        refused(prefix("HFCF", VERSION, SUITE_AES_GCM, 0, MIN_HEADER_LEN, 32), "magic");
        refused(new byte[PREFIX_LEN - 1], "too short");
    }

    @Test
    void lengthsRoundTripForBothSuitesAndImpossibleLengthsAreRefused() throws Exception {
        int[][] suites = {{SUITE_AES_GCM, OVERHEAD_AES_GCM}, {SUITE_AES_CBC_HMAC, OVERHEAD_AES_CBC_HMAC}};
        for (int[] suite : suites) {
            SegmentLayout l = new SegmentLayout(VERSION, suite[0], 200, 32);
            assertEquals(suite[1], l.overhead);
            for (long n = 0; n <= 100; n++) {
                long ct = l.ciphertextLength(n);
                assertEquals(200 + n + SegmentLayout.segmentCount(n, 32) * suite[1], ct);
                assertEquals(n, l.plaintextLength(ct, "f"));
            }
            assertEquals(200 + 2L * (32 + suite[1]), l.segmentOffset(2));
            assertEquals(1, SegmentLayout.segmentCount(0, 32));
            assertEquals(2, SegmentLayout.segmentCount(33, 32));
            long[] impossible = {199, 200 + suite[1] - 1, 200 + 32 + suite[1] + suite[1], 200 + 32 + suite[1] + 1};
            for (long ct : impossible) {
                CryptoIOException e = assertThrows(CryptoIOException.class, () -> l.plaintextLength(ct, "f"), "" + ct);
                assertEquals(CryptoIOException.FORMAT, e.kind());
            }
        }
    }
}

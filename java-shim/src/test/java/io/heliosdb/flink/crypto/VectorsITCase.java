package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The core's format vectors (tests/vectors/) read through the shim's input stream: every version 2
 * and version 1 vector (version 1 read with version 1 enabled, as the test hook does) gives exactly
 * its recorded verdict: its plaintext, or the error class Python names (CryptoIOException.kind()),
 * with exact counts; and the binding-name table holds for the Java twin of rule F-24.
 */
class VectorsITCase {

    static final HexFormat HEX = HexFormat.of();
    static final File VECTORS = new File(System.getProperty("heliosdb.vectors", "../tests/vectors"));

    @TempDir
    static java.nio.file.Path dir;
    static PythonSession session;

    @BeforeAll
    static void setUp() throws Exception {
        session = PythonSession.open(TestSupport.conf(TestSupport.keyring(dir), "64"));
    }

    static JsonNode load(String name) throws IOException {
        File file = new File(VECTORS, name);
        assertTrue(file.isFile(), "vectors missing at " + file);
        return new ObjectMapper().readTree(file);
    }

    @Test
    void everyVersion2VectorGivesExactlyItsRecordedVerdict() throws Exception {
        JsonNode vectors = load("vectors-v2.json").get("vectors");
        assertEquals(58, vectors.size());
        int valid = 0;
        for (JsonNode v : vectors) {
            String name = v.get("name").asText();
            byte[] ct = HEX.parseHex(v.get("ciphertext").asText());
            java.nio.file.Path f = write(name, ct);
            String bound = v.get("bound_name").asText();
            if (v.get("result").asText().equals("valid")) {
                assertTrue(v.get("error").isNull(), name);
                byte[] want = HEX.parseHex(v.get("plaintext").asText());
                assertEquals(want.length, SegmentLayout.parsePrefix(ct, name).plaintextLength(ct.length, name), name);
                assertArrayEquals(want, read(f, v.get("dek").asText(), bound), name);
                valid++;
            } else {
                CryptoIOException e = assertThrows(CryptoIOException.class,
                        () -> read(f, v.get("dek").asText(), bound), name);
                assertEquals(v.get("error").asText(), e.kind(), name + ": " + e.getMessage());
                assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
            }
        }
        assertEquals(12, valid);
    }

    @Test
    void everyVersion1VectorGivesExactlyItsRecordedVerdict() throws Exception {
        int valid = 0;
        int invalid = 0;
        for (JsonNode v : load("vectors.json").get("vectors")) {
            String name = v.get("name").asText();
            byte[] ct = HEX.parseHex(v.get("ciphertext").asText());
            java.nio.file.Path f = write(name, ct);
            if (v.get("result").asText().equals("valid")) {
                assertTrue(v.get("error").isNull(), name);
                byte[] want = HEX.parseHex(v.get("plaintext").asText());
                SegmentLayout l = SegmentLayout.parsePrefix(Arrays.copyOf(ct, 16), name);
                assertEquals(FormatConstants.VERSION_1, l.version, name);
                assertEquals(ct.length, l.ciphertextLength(want.length), name);
                assertArrayEquals(want, read(f, v.get("dek").asText(), ""), name);
                valid++;
            } else {
                CryptoIOException e = assertThrows(CryptoIOException.class, () -> read(f, v.get("dek").asText(), ""), name);
                assertEquals(v.get("error").asText(), e.kind(), name + ": " + e.getMessage());
                assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
                invalid++;
            }
        }
        assertEquals(12, valid);
        assertEquals(26, invalid);
    }

    @Test
    void bindingNamesFollowRuleF24() throws Exception {
        JsonNode cases = load("binding-names.json").get("cases");
        assertTrue(cases.size() > 20);
        for (JsonNode c : cases) {
            assertEquals(c.get("name").asText(), BindingName.of(c.get("path").asText()), c.get("path").asText());
        }
    }

    static java.nio.file.Path write(String name, byte[] ct) throws IOException {
        java.nio.file.Path f = dir.resolve(name);
        Files.write(f, ct);
        return f;
    }

    private static byte[] read(java.nio.file.Path f, String dek, String boundName) throws IOException {
        Path p = new Path(f.toUri());
        FileSystem local = FileSystem.getLocalFileSystem();
        long len = local.getFileStatus(p).getLen();
        String path = f.toString();
        try (FSDataInputStream in = new DecryptingInputStream(local.open(p), len, session, path,
                header -> session.insecureOpenWithDek(path, header, dek, boundName))) {
            return in.readAllBytes();
        }
    }
}

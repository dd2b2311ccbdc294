package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
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

/** The core's format vectors (tests/vectors/vectors.json) read through the shim's input stream. */
class VectorsTest {

    @TempDir
    java.nio.file.Path dir;

    @Test
    void shimDecryptsEveryValidVectorAndRejectsEveryInvalidOne() throws Exception {
        File file = new File(System.getProperty("heliosdb.vectors", "../tests/vectors"), "vectors.json");
        assertTrue(file.isFile(), "vectors missing at " + file);
        JsonNode root = new ObjectMapper().readTree(file);
        String kms = TestSupport.keyring(dir);
        CryptoEngine engine = CryptoEngine.open(TestSupport.conf(kms, "64"));
        HexFormat hex = HexFormat.of();
        int valid = 0;
        int invalid = 0;
        for (JsonNode v : root.get("vectors")) {
            String name = v.get("name").asText();
            byte[] ct = hex.parseHex(v.get("ciphertext").asText());
            java.nio.file.Path f = dir.resolve(name);
            Files.write(f, ct);
            String dek = v.get("dek").asText();
            String path = f.toString();
            if (v.get("result").asText().equals("valid")) {
                byte[] want = hex.parseHex(v.get("plaintext").asText());
                SegmentLayout l = SegmentLayout.parsePrefix(Arrays.copyOf(ct, 16), path);
                assertEquals(want.length, l.plaintextLength(ct.length, path), name);
                assertEquals(ct.length, l.ciphertextLength(want.length), name);
                assertArrayEquals(want, read(engine, f, dek), name);
                valid++;
            } else {
                assertThrows(IOException.class, () -> read(engine, f, dek), name);
                invalid++;
            }
        }
        assertTrue(valid >= 6 && invalid >= 10, valid + " valid, " + invalid + " invalid");
    }

    private static byte[] read(CryptoEngine engine, java.nio.file.Path f, String dek) throws IOException {
        Path p = new Path(f.toUri());
        FileSystem local = FileSystem.getLocalFileSystem();
        long len = local.getFileStatus(p).getLen();
        String path = f.toString();
        try (FSDataInputStream in = new DecryptingInputStream(local.open(p), len, engine, path,
                header -> engine.insecureOpenWithDek(path, header, dek))) {
            return in.readAllBytes();
        }
    }
}

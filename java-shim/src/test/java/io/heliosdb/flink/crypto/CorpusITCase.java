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
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adversarial corpus (heliosdb_flink_crypto.testing.corpus, generated now with a keyring made now)
 * read through the shim's input stream: every valid file gives its plaintext, every hostile file
 * fails with an IOException naming it (never another exception, never data). The Python side runs
 * the same corpus through verify (tests/test_corpus.py).
 */
class CorpusITCase {

    @TempDir
    java.nio.file.Path dir;

    @Test
    void everyHostileFileIsRejectedAndEveryValidOneRead() throws Exception {
        int[] seen = check(entry -> !entry.get("end_only").asBoolean());
        assertTrue(seen[0] >= 14 && seen[1] > 1500, seen[0] + " valid, " + seen[1] + " rejected");
    }

    @Test
    void aFileCutToItsLastTagIsRejected() throws Exception {
        int[] seen = check(entry -> entry.get("end_only").asBoolean());
        assertTrue(seen[1] == 2, seen[1] + " rejected");
    }

    /** Reads the corpus entries {@code which} selects; returns {valid read, rejected}. */
    private int[] check(Predicate<JsonNode> which) throws Exception {
        java.nio.file.Path root = dir.resolve("corpus");
        String kms = TestSupport.keyring(dir);
        TestSupport.runPython("import sys\nfrom heliosdb_flink_crypto.testing.corpus import build\n"
                + "build(sys.argv[1], sys.argv[2])\n", root.toString(), kms);
        JsonNode manifest = new ObjectMapper().readTree(root.resolve("manifest.json").toFile());
        Map<String, String> conf = TestSupport.conf(kms, "64");
        conf.put("heliosdb.crypto.rotation.enabled", "false"); // nothing written beside the keyring meanwhile
        PythonSession session = PythonSession.open(conf);
        HexFormat hex = HexFormat.of();
        List<String> wrong = new ArrayList<>();
        int[] seen = new int[2];
        for (JsonNode entry : manifest.get("items")) {
            if (!entry.get("java").asBoolean() || !which.test(entry)) {
                continue;
            }
            String name = entry.get("path").asText();
            File f = new File(manifest.get("tree").asText(), name);
            boolean valid = entry.get("expect").asText().equals("valid");
            try {
                byte[] got = read(session, f);
                if (valid) {
                    assertArrayEquals(hex.parseHex(entry.get("plaintext").asText()), got, name);
                    seen[0]++;
                } else {
                    wrong.add(name + ": read " + got.length + " bytes");
                }
            } catch (IOException e) {
                if (valid) {
                    wrong.add(name + ": " + e);
                } else if (!String.valueOf(e.getMessage()).contains(f.getPath())) {
                    wrong.add(name + ": the error does not name the file: " + e.getMessage());
                } else {
                    seen[1]++;
                }
            } catch (RuntimeException e) {
                wrong.add(name + ": " + e);
            }
        }
        assertTrue(wrong.isEmpty(), wrong.size() + " wrong verdicts, first: "
                + wrong.subList(0, Math.min(10, wrong.size())));
        return seen;
    }

    private static byte[] read(PythonSession session, File f) throws IOException {
        Path p = new Path(f.toURI());
        FileSystem local = FileSystem.getLocalFileSystem();
        long len = local.getFileStatus(p).getLen();
        try (FSDataInputStream in = new DecryptingInputStream(local.open(p), len, session, f.getPath())) {
            return in.readAllBytes();
        }
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystem.WriteMode;
import org.apache.flink.core.fs.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Through {@code enc+file://} with the real engine: the end of a file authenticates before any EOF
 * or length (F-25), a file swapped in from another place fails naming it (F-24), and a rename that
 * changes the binding name (RocksDB/ForSt's {@code *.dbtmp} to {@code CURRENT}) re-seals the file.
 */
class EndAndPlaceITCase {

    @TempDir
    static java.nio.file.Path dir;
    static PythonSession session;
    static EncryptedFileSystem fs;
    static final int SEG = 64;
    static final int GCM = 16;

    @BeforeAll
    static void setUp() throws Exception {
        session = PythonSession.open(TestSupport.conf(TestSupport.keyring(dir), String.valueOf(SEG)));
        fs = new EncryptedFileSystem("enc+file", "file", FileSystem.getLocalFileSystem(), URI.create("enc+file:///"),
                () -> session);
    }

    static Path path(String name) throws IOException {
        Files.createDirectories(dir.resolve(name).getParent());
        return new Path("enc+file://" + dir.resolve(name).toAbsolutePath());
    }

    static byte[] write(String name, byte[] data) throws IOException {
        try (FSDataOutputStream out = fs.create(path(name), WriteMode.OVERWRITE)) {
            out.write(data);
        }
        return data;
    }

    static byte[] disk(String name) throws IOException {
        return Files.readAllBytes(dir.resolve(name));
    }

    static int headerLen(String name) throws IOException {
        return SegmentLayout.parsePrefix(disk(name), name).headerLen;
    }

    static void cut(String name, long length) throws IOException {
        Files.write(dir.resolve(name), Arrays.copyOf(disk(name), (int) length));
    }

    static CryptoIOException failsReading(String name) {
        CryptoIOException e = assertThrows(CryptoIOException.class, () -> {
            try (FSDataInputStream in = fs.open(path(name))) {
                in.readAllBytes();
            }
        }, name);
        assertTrue(e.getMessage().contains(dir.resolve(name).toString()), e.getMessage());
        assertEquals(ErrorKinds.of(e.kind(), "").getClass(), e.getClass(), "the Java type says what the kind says");
        return e;
    }

    static void lengthFails(String name, String kind) throws IOException {
        FileStatus st = fs.getFileStatus(path(name));
        UncheckedIOException e = assertThrows(UncheckedIOException.class, st::getLen, name);
        assertTrue(e.getMessage().contains(dir.resolve(name).toString()), e.getMessage());
        assertEquals(kind, ((CryptoIOException) e.getCause()).kind(), e.getMessage());
        assertEquals(ErrorKinds.of(kind, "").getClass(), e.getCause().getClass(), e.getMessage());
        assertThrows(UncheckedIOException.class, st::getLen, "a failure is remembered");
        Path p = path(name);
        FileStatus same = Arrays.stream(fs.listStatus(p.getParent()))
                .filter(s -> s.getPath().getName().equals(p.getName())).findFirst().orElseThrow();
        assertThrows(UncheckedIOException.class, same::getLen, "listStatus too");
    }

    @Test
    void aFileCutToOneSegmentOverheadNeverReadsAsEmpty() throws Exception {
        write("cut/one-overhead", TestSupport.data(1000, 1));
        cut("cut/one-overhead", headerLen("cut/one-overhead") + GCM);
        try (FSDataInputStream in = fs.open(path("cut/one-overhead"))) {
            assertEquals(0, in.available(), "no length before the end authenticated");
            assertThrows(CryptoIOException.class, in::read, "never -1 for a cut file");
            assertThrows(CryptoIOException.class, () -> in.read(new byte[10]));
            assertThrows(CryptoIOException.class, () -> in.skip(1));
        }
        assertEquals(CryptoIOException.AUTHENTICATION, failsReading("cut/one-overhead").kind());
        lengthFails("cut/one-overhead", CryptoIOException.AUTHENTICATION);
    }

    @Test
    void anEmptyFileWithASmashedTagNeverReadsAsEmpty() throws Exception {
        write("empty/smashed", new byte[0]);
        write("empty/good", new byte[0]);
        byte[] b = disk("empty/smashed");
        b[b.length - 1] ^= 1;
        Files.write(dir.resolve("empty/smashed"), b);
        assertEquals(CryptoIOException.AUTHENTICATION, failsReading("empty/smashed").kind());
        lengthFails("empty/smashed", CryptoIOException.AUTHENTICATION);
        try (FSDataInputStream in = fs.open(path("empty/good"))) {
            assertEquals(-1, in.read());
        }
        assertEquals(0, fs.getFileStatus(path("empty/good")).getLen());
    }

    @Test
    void aFileCutToItsHeaderHasNoLengthAtAll() throws Exception {
        write("cut/header", TestSupport.data(100, 2));
        cut("cut/header", headerLen("cut/header"));
        assertEquals(CryptoIOException.FORMAT, failsReading("cut/header").kind());
        lengthFails("cut/header", CryptoIOException.FORMAT);
        Files.write(dir.resolve("cut/foreign"), "plain text".getBytes(StandardCharsets.UTF_8));
        lengthFails("cut/foreign", CryptoIOException.FORMAT);
    }

    @Test
    void truncationAtEverySegmentBoundaryFailsAtTheEndButNotBelowTheCut() throws Exception {
        byte[] data = TestSupport.data(4 * SEG + 5, 3);
        for (int k = 1; k <= 4; k++) {
            String name = "boundary/cut-" + k;
            write(name, data);
            int h = headerLen(name);
            cut(name, h + (long) k * (SEG + GCM));
            failsReading(name);
            lengthFails(name, CryptoIOException.AUTHENTICATION);
            try (FSDataInputStream in = fs.open(path(name))) {
                // random access below the cut: segments before the (wrongly) last one authenticate.
                // Backwards, so no read-ahead window reaches the cut (a sequential reader fails at the
                // window holding it, up to one window early)
                for (int j = k - 2; j >= 0; j--) {
                    in.seek((long) j * SEG);
                    byte[] got = new byte[SEG];
                    assertEquals(SEG, in.readNBytes(got, 0, SEG));
                    assertArrayEquals(Arrays.copyOfRange(data, j * SEG, (j + 1) * SEG), got);
                }
                in.seek((long) (k - 1) * SEG);
                assertThrows(CryptoIOException.class, in::read, "the cut segment itself never authenticates");
                in.seek(10L * SEG);
                assertThrows(CryptoIOException.class, in::read, "no EOF past a cut");
                assertThrows(CryptoIOException.class,
                        () -> ((org.apache.flink.core.fs.ByteBufferReadable) in).read(100L * SEG, ByteBuffer.allocate(4)));
            }
        }
    }

    @Test
    void theEndIsCheckedOnceAndSequentialReadsPayNothingMore() throws Exception {
        byte[] data = write("whole", TestSupport.data(3 * SEG + 1, 4));
        try (FSDataInputStream in = fs.open(path("whole"))) {
            assertArrayEquals(data, in.readAllBytes());
            assertEquals(-1, in.read());
            assertEquals(0, in.available());
            in.seek(5);
            assertEquals(data.length - 5, in.available());
            assertEquals(data.length - 5, in.skip(10_000));
        }
        assertEquals(data.length, fs.getFileStatus(path("whole")).getLen());
    }

    @Test
    void aStateFileOfAnotherCheckpointCopiedOverThisOneFailsNamingIt() throws Exception {
        write("job/chk-6/9f1c2a4e-old", TestSupport.data(500, 5));
        byte[] newer = write("job/chk-7/5eed0000-new", TestSupport.data(500, 6));
        Files.copy(dir.resolve("job/chk-6/9f1c2a4e-old"), dir.resolve("job/chk-7/5eed0000-new"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        CryptoIOException e = failsReading("job/chk-7/5eed0000-new");
        assertEquals("MisplacedFileError", e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains("sealed for another place"), e.getMessage());
        lengthFails("job/chk-7/5eed0000-new", "MisplacedFileError");
        assertEquals(500, newer.length);
    }

    @Test
    void anOlderMetadataCopiedOverANewerOneFailsNamingIt() throws Exception {
        write("job/chk-6/_metadata", TestSupport.data(300, 7));
        write("job/chk-7/_metadata", TestSupport.data(300, 8));
        Files.copy(dir.resolve("job/chk-6/_metadata"), dir.resolve("job/chk-7/_metadata"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertEquals("MisplacedFileError", failsReading("job/chk-7/_metadata").kind());
        lengthFails("job/chk-7/_metadata", "MisplacedFileError");
        write("other-job/chk-7/_metadata", TestSupport.data(300, 9));
        Files.copy(dir.resolve("other-job/chk-7/_metadata"), dir.resolve("job/chk-6/_metadata"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertEquals("MisplacedFileError", failsReading("job/chk-6/_metadata").kind());
    }

    @Test
    void aForStStyleRenameOfDbtmpToCurrentReSealsTheFile() throws Exception {
        byte[] data = write("db/000001.dbtmp", "MANIFEST-000005\n".getBytes(StandardCharsets.UTF_8));
        byte[] sealedAsTmp = disk("db/000001.dbtmp");
        assertTrue(fs.rename(path("db/000001.dbtmp"), path("db/CURRENT")));
        assertFalse(fs.exists(path("db/000001.dbtmp")));
        try (FSDataInputStream in = fs.open(path("db/CURRENT"))) {
            assertArrayEquals(data, in.readAllBytes());
        }
        assertEquals(data.length, fs.getFileStatus(path("db/CURRENT")).getLen());
        byte[] current = disk("db/CURRENT");
        int h = headerLen("db/CURRENT");
        int hTmp = SegmentLayout.parsePrefix(sealedAsTmp, "tmp").headerLen;
        assertEquals(hTmp - "000001.dbtmp".length() + "CURRENT".length(), h, "only the name changed in the header");
        assertArrayEquals(Arrays.copyOfRange(sealedAsTmp, hTmp, sealedAsTmp.length),
                Arrays.copyOfRange(current, h, current.length), "the body is copied unchanged");
        assertEquals(0, Files.list(dir.resolve("db")).filter(p -> p.getFileName().toString().contains("hfc-tmp"))
                .count(), "no temporary file left");
        // the same bytes put there by hand (not through the rename) are refused
        Files.write(dir.resolve("db/CURRENT"), sealedAsTmp);
        assertEquals("MisplacedFileError", failsReading("db/CURRENT").kind());
        // a second rename over an existing CURRENT replaces it
        byte[] next = write("db/000009.dbtmp", "MANIFEST-000009\n".getBytes(StandardCharsets.UTF_8));
        assertTrue(fs.rename(path("db/000009.dbtmp"), path("db/CURRENT")));
        try (FSDataInputStream in = fs.open(path("db/CURRENT"))) {
            assertArrayEquals(next, in.readAllBytes());
        }
    }

    @Test
    void renamesThatKeepTheNameAndDirectoriesAreInnerRenames() throws Exception {
        write("moves/a/x", TestSupport.data(200, 10));
        byte[] before = disk("moves/a/x");
        Files.createDirectories(dir.resolve("moves/b"));
        assertTrue(fs.rename(path("moves/a/x"), path("moves/b/x")));
        assertArrayEquals(before, disk("moves/b/x"), "same binding name: the bytes move as they are");
        assertTrue(fs.rename(path("moves/b"), path("moves/c")));
        assertEquals(200, fs.getFileStatus(path("moves/c/x")).getLen());
        assertFalse(fs.rename(path("moves/missing"), path("moves/other")));
    }

    @Test
    void aRenameOfATamperedFileFailsNamingItAndLeavesBothPlacesAsTheyWere() throws Exception {
        write("bad/000003.dbtmp", TestSupport.data(100, 11));
        byte[] b = disk("bad/000003.dbtmp");
        b[20] ^= 1; // inside the header: it no longer authenticates
        Files.write(dir.resolve("bad/000003.dbtmp"), b);
        IOException e = assertThrows(IOException.class, () -> fs.rename(path("bad/000003.dbtmp"), path("bad/CURRENT")));
        assertTrue(e.getMessage().contains(dir.resolve("bad/000003.dbtmp").toString()), e.getMessage());
        assertTrue(Files.exists(dir.resolve("bad/000003.dbtmp")));
        assertFalse(Files.exists(dir.resolve("bad/CURRENT")));
    }

    @Test
    void readersAcceptTheLargestSegmentIndexTheWriterSealsAndNoMore() throws Exception {
        for (long count : new long[] {FormatConstants.MAX_SEGMENTS, FormatConstants.MAX_SEGMENTS + 1}) {
            java.nio.file.Path f = dir.resolve("edge-" + count);
            String out = TestSupport.runPython(SPARSE, f.toString(), Long.toString(count)).trim();
            String dek = out.split(" ")[0];
            Path p = new Path(f.toUri());
            FileSystem local = FileSystem.getLocalFileSystem();
            String path = f.toString();
            if (count > FormatConstants.MAX_SEGMENTS) {
                assertTrue(out.endsWith("refused"), "the writer refuses index MAX_SEGMENTS: " + out);
                CryptoIOException e = assertThrows(CryptoIOException.class, () -> new DecryptingInputStream(local.open(p),
                        local.getFileStatus(p).getLen(), session, path,
                        h -> session.insecureOpenWithDek(path, h, dek, "edge")));
                assertEquals(CryptoIOException.FORMAT, e.kind(), e.getMessage());
                continue;
            }
            try (DecryptingInputStream in = new DecryptingInputStream(local.open(p), local.getFileStatus(p).getLen(),
                    session, path, h -> session.insecureOpenWithDek(path, h, dek, "edge"))) {
                long size = (count - 1) * 16 + 5;
                assertEquals(size, in.size());
                in.seek(size - 5);
                byte[] got = new byte[5];
                assertEquals(5, in.readNBytes(got, 0, 5));
                assertArrayEquals("edge!".getBytes(StandardCharsets.US_ASCII), got);
                assertEquals(-1, in.read());
            } finally {
                Files.delete(f);
            }
        }
    }

    /** A sparse file of {@code count} 16-byte segments: a real header, the final segment sealed at
     *  index count - 1 (only that one is written); prints the DEK, and whether the writer refused. */
    static final String SPARSE = String.join("\n",
            "import sys",
            "from heliosdb_flink_crypto.engine import DataKey, new_header",
            "from heliosdb_flink_crypto.errors import FormatError",
            "from heliosdb_flink_crypto.format import KeySlot, MAX_SEGMENTS, SUITE_AES_GCM",
            "path, count = sys.argv[1], int(sys.argv[2])",
            "dk = DataKey(bytes(16), bytes(range(32)), (KeySlot('local:///nowhere', '1', b'w'),))",
            "h, raw, keys = new_header(dk, SUITE_AES_GCM, 16, name='edge')",
            "out = bytearray(21)",
            "try:",
            "    keys.seal_into(count - 1, True, b'edge!', out)",
            "    refused = ''",
            "except FormatError:",
            "    refused = ' refused'",
            "    keys.seal_into(0, True, b'edge!', out)",
            "with open(path, 'wb') as f:",
            "    f.write(raw)",
            "    f.seek(h.length + (count - 1) * 32)",
            "    f.write(out)",
            "print(bytes(range(32)).hex() + refused)",
            "");
}

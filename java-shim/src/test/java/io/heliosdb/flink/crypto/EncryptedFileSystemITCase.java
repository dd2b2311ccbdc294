package io.heliosdb.flink.crypto;

import org.apache.flink.configuration.Configuration;
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
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The encrypted FileSystem over the local one, with the real Python engine behind pemja. */
class EncryptedFileSystemITCase {

    @TempDir
    static java.nio.file.Path dir;
    static String kms;
    static EncryptedFileSystem fs;
    static final int SEG = 64;

    @BeforeAll
    static void setUp() throws Exception {
        kms = TestSupport.keyring(dir);
        fs = EncryptedFileSystem.of("enc+file", FileSystem.getLocalFileSystem(), URI.create("enc+file:///"),
                TestSupport.conf(kms, String.valueOf(SEG)));
    }

    static Path path(String name) {
        return new Path("enc+file://" + dir.resolve(name).toAbsolutePath());
    }

    static byte[] write(Path p, byte[] data) throws IOException {
        try (FSDataOutputStream out = fs.create(p, WriteMode.OVERWRITE)) {
            out.write(data);
            assertEquals(data.length, out.getPos());
        }
        return data;
    }

    static byte[] readAll(Path p) throws IOException {
        try (FSDataInputStream in = fs.open(p)) {
            return in.readAllBytes();
        }
    }

    @Test
    void roundTripsEverySizeAroundSegmentBoundaries() throws Exception {
        for (int n : new int[] {0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 1000}) {
            Path p = path("rt-" + n);
            byte[] data = write(p, TestSupport.data(n, n));
            assertArrayEquals(data, readAll(p), "size " + n);
            long ct = Files.size(dir.resolve("rt-" + n));
            assertTrue(ct > n, "ciphertext carries a header and tags");
            assertEquals(n, fs.getFileStatus(p).getLen(), "plaintext length of " + n);
            // not the plaintext at the end (where a tag is): compared from 16 bytes on, since a shorter
            // file's last bytes match a random tag's by chance (1 in 256 for one byte)
            assertFalse(n >= 16 && Arrays.equals(data, Arrays.copyOfRange(TestSupport.readAll(dir.resolve("rt-" + n)), (int) ct - n, (int) ct)));
        }
    }

    @Test
    void ciphertextOnDiskIsNotThePlaintext() throws Exception {
        byte[] secret = "the secret state value 0123456789".repeat(20).getBytes(StandardCharsets.UTF_8);
        write(path("secret"), secret);
        String disk = new String(TestSupport.readAll(dir.resolve("secret")), StandardCharsets.ISO_8859_1);
        assertTrue(disk.startsWith("HFCE"));
        assertFalse(disk.contains("secret state"));
    }

    @Test
    void getPosIsPlaintextAndFlushSyncNeverCutASegment() throws Exception {
        Path a = path("flushed");
        Path b = path("written"); // a name of the same length: the same header length
        byte[] data = TestSupport.data(300, 7);
        try (FSDataOutputStream out = fs.create(a, WriteMode.OVERWRITE)) {
            for (int i = 0; i < data.length; i += 10) {
                out.write(data, i, 10);
                out.flush();
                out.sync();
                assertEquals(i + 10, out.getPos());
            }
        }
        write(b, data);
        assertEquals(Files.size(dir.resolve("written")), Files.size(dir.resolve("flushed")));
        assertArrayEquals(data, readAll(a));
    }

    @Test
    void singleByteWritesAndReads() throws Exception {
        Path p = path("bytes");
        byte[] data = TestSupport.data(150, 3);
        try (FSDataOutputStream out = fs.create(p, WriteMode.OVERWRITE)) {
            for (byte x : data) {
                out.write(x);
            }
        }
        try (FSDataInputStream in = fs.open(p)) {
            for (byte x : data) {
                assertEquals(x & 0xff, in.read());
            }
            assertEquals(-1, in.read());
        }
    }

    @Test
    void aClosedStreamNamesItsFileAndWhereACauseWouldBe() throws Exception {
        Path p = path("closed");
        FSDataOutputStream out = fs.create(p, WriteMode.OVERWRITE);
        out.write(TestSupport.data(3 * SEG, 4));
        out.close();
        FSDataInputStream in = fs.open(p);
        in.close();
        for (IOException e : new IOException[] {
                assertThrows(IOException.class, () -> out.write(1)), assertThrows(IOException.class, in::read)}) {
            assertTrue(e.getMessage().contains(dir.resolve("closed") + ": stream is closed (if another stream of the same "
                    + "restore or checkpoint failed, that closed this one: the TaskManager log names the file that "
                    + "failed first)"), e.getMessage());
        }
    }

    @Test
    void seekGetPosSkipAndAvailableArePlaintextCoordinates() throws Exception {
        Path p = path("seek");
        byte[] data = write(p, TestSupport.data(1000, 11));
        try (FSDataInputStream in = fs.open(p)) {
            for (long at : new long[] {999, 0, 63, 64, 65, 500, 128, 1}) {
                in.seek(at);
                assertEquals(at, in.getPos());
                byte[] got = new byte[40];
                int n = in.read(got);
                int expect = (int) Math.min(40, 1000 - at);
                assertEquals(expect, n);
                assertArrayEquals(Arrays.copyOfRange(data, (int) at, (int) at + expect), Arrays.copyOf(got, n));
                assertEquals(at + n, in.getPos());
                assertEquals(1000 - at - n, in.available());
            }
            in.seek(10);
            assertEquals(100, in.skip(100));
            assertEquals(110, in.getPos());
            assertEquals(data[110] & 0xff, in.read());
            in.seek(1000);
            assertEquals(-1, in.read(new byte[5]));
            assertThrows(IOException.class, () -> in.seek(-1));
        }
    }

    @Test
    void positionalByteBufferReadsDoNotMoveThePosition() throws Exception {
        Path p = path("pread");
        byte[] data = write(p, TestSupport.data(700, 5));
        try (FSDataInputStream in = fs.open(p)) {
            org.apache.flink.core.fs.ByteBufferReadable r = (org.apache.flink.core.fs.ByteBufferReadable) in;
            in.seek(17);
            for (ByteBuffer bb : new ByteBuffer[] {ByteBuffer.allocate(100), ByteBuffer.allocateDirect(100)}) {
                int n = r.read(250, bb);
                assertEquals(100, n);
                bb.flip();
                byte[] got = new byte[100];
                bb.get(got);
                assertArrayEquals(Arrays.copyOfRange(data, 250, 350), got);
                assertEquals(17, in.getPos());
            }
            ByteBuffer tail = ByteBuffer.allocate(50);
            assertEquals(10, r.read(690, tail));
            assertEquals(-1, r.read(700, ByteBuffer.allocate(5)));
            ByteBuffer seq = ByteBuffer.allocate(30);
            assertEquals(30, r.read(seq));
            assertEquals(47, in.getPos());
            assertArrayEquals(Arrays.copyOfRange(data, 17, 47), seq.array());
        }
    }

    @Test
    void listStatusReportsPlaintextLengthsAndOuterPaths() throws Exception {
        java.nio.file.Path sub = Files.createDirectories(dir.resolve("list"));
        write(path("list/a"), TestSupport.data(10, 1));
        write(path("list/b"), TestSupport.data(130, 2));
        Files.write(sub.resolve("foreign"), "plain".getBytes(StandardCharsets.UTF_8));
        FileStatus[] st = fs.listStatus(path("list"));
        assertEquals(3, st.length);
        for (FileStatus s : st) {
            assertEquals("enc+file", s.getPath().toUri().getScheme());
            String name = s.getPath().getName();
            if (name.equals("foreign")) { // no length for a file that does not authenticate (F-25)
                java.io.UncheckedIOException e = assertThrows(java.io.UncheckedIOException.class, s::getLen);
                assertTrue(e.getMessage().contains(sub.resolve("foreign").toString()), e.getMessage());
                continue;
            }
            assertEquals(name.equals("a") ? 10 : 130, s.getLen(), name);
        }
        assertTrue(fs.getFileStatus(path("list")).isDir());
        assertTrue(fs.exists(path("list/a")));
        assertTrue(fs.rename(path("list/a"), path("list/c")));
        assertEquals(10, readAll(path("list/c")).length);
        assertTrue(fs.delete(path("list"), true));
        assertFalse(fs.exists(path("list")));
    }

    @Test
    void tamperedOrForeignFilesFailClosedNamingTheFile() throws Exception {
        Path p = path("tamper");
        write(p, TestSupport.data(200, 9));
        java.nio.file.Path raw = dir.resolve("tamper");
        byte[] b = Files.readAllBytes(raw);
        b[b.length - 20] ^= 1;
        Files.write(raw, b);
        IOException e = assertThrows(IOException.class, () -> readAll(p));
        assertTrue(e.getMessage().contains(raw.toAbsolutePath().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("authentication failed"), e.getMessage());

        Files.write(dir.resolve("plain"), "not encrypted at all, just text".getBytes(StandardCharsets.UTF_8));
        IOException f = assertThrows(IOException.class, () -> fs.open(path("plain")));
        assertTrue(f.getMessage().contains("bad magic"), f.getMessage());

        write(path("whole"), TestSupport.data(1000, 12));
        Files.write(dir.resolve("cut"), Arrays.copyOf(Files.readAllBytes(dir.resolve("whole")), 300));
        assertThrows(IOException.class, () -> readAll(path("cut")), "a truncated file never reads");
    }

    @Test
    void noRecoverableWriterNoPathCopiesAndTheInnerFsIsExposed() {
        assertThrows(UnsupportedOperationException.class, () -> fs.createRecoverableWriter());
        assertThrows(UnsupportedOperationException.class, () -> fs.createRecoverableWriter(Map.of()));
        assertFalse(fs.canCopyPaths(path("a"), path("b")));
        assertSame(FileSystem.getLocalFileSystem(), fs.getWrappedDelegate());
        assertEquals("enc+file", fs.getWorkingDirectory().toUri().getScheme());
        assertEquals("enc+file", fs.getHomeDirectory().toUri().getScheme());
        assertEquals(org.apache.flink.core.fs.FileSystemKind.FILE_SYSTEM, fs.getKind());
        assertFalse(fs.isDistributedFS());
    }

    @Test
    void factoryRegistersTheSchemeAndValidatesOptionsInPython() throws Exception {
        Schemes.EncFile f = new Schemes.EncFile();
        assertEquals("enc+file", f.getScheme());
        Configuration c = new Configuration();
        for (Map.Entry<String, String> e : TestSupport.conf(kms, "128").entrySet()) {
            c.setString(e.getKey(), e.getValue());
        }
        c.setString("unrelated.key", "x");
        f.configure(c);
        assertFalse(f.conf().containsKey("unrelated.key"));
        FileSystem viaFactory = f.create(URI.create("enc+file:///"));
        Path p = path("factory");
        try (FSDataOutputStream out = viaFactory.create(p, WriteMode.OVERWRITE)) {
            out.write(TestSupport.data(300, 4));
        }
        assertArrayEquals(TestSupport.data(300, 4), readAll(p), "a file of segment size 128 reads anywhere");
        byte[] raw = Files.readAllBytes(dir.resolve("factory"));
        assertEquals(128, ((raw[12] & 0xff) << 24) | ((raw[13] & 0xff) << 16) | ((raw[14] & 0xff) << 8) | (raw[15] & 0xff));

        Schemes.EncFile bad = new Schemes.EncFile();
        Configuration b = new Configuration();
        for (Map.Entry<String, String> e : TestSupport.conf(kms, "not-a-size").entrySet()) {
            b.setString(e.getKey(), e.getValue());
        }
        bad.configure(b);
        FileSystem badFs = bad.create(URI.create("enc+file:///"));
        IOException e = assertThrows(IOException.class, () -> badFs.create(path("never"), WriteMode.OVERWRITE));
        assertTrue(e.getMessage().contains("heliosdb.crypto.segment-size"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("never")), "nothing is written when Python cannot start");
    }

    @Test
    void aKmsThatCannotWrapLeavesNoFileBehind() throws Exception {
        String gone = "local://" + dir.resolve("no-such-keyring.json").toAbsolutePath();
        EncryptedFileSystem noKms = EncryptedFileSystem.of("enc+file", FileSystem.getLocalFileSystem(),
                URI.create("enc+file:///"), TestSupport.conf(gone, String.valueOf(SEG)));
        IOException e = assertThrows(IOException.class, () -> noKms.create(path("orphan"), WriteMode.OVERWRITE));
        assertTrue(e.getMessage().contains("no-such-keyring.json"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("orphan")), "no empty inner file when the keys cannot be made");
    }

    @Test
    void javaWritesPythonReadsAndPythonWritesJavaReads() throws Exception {
        Path p = path("j2p");
        byte[] data = write(p, TestSupport.data(5000, 21));
        String code = "import sys, hashlib\nfrom heliosdb_flink_crypto import CheckpointCrypto\n"
                + "c = CheckpointCrypto([sys.argv[1]])\n"
                + "print(hashlib.sha256(c.open_path(sys.argv[2]).read()).hexdigest())\n";
        String digest = TestSupport.runPython(code, kms, dir.resolve("j2p").toString()).trim();
        assertEquals(sha256(data), digest);

        String write = "import sys, random\nfrom heliosdb_flink_crypto import CheckpointCrypto\n"
                + "c = CheckpointCrypto([sys.argv[1]], segment_size=4096)\n"
                + "open(sys.argv[2], 'wb').write(c.encrypt_bytes(random.Random(5).randbytes(20000), name='p2j'))\n"
                + "import hashlib; print(hashlib.sha256(random.Random(5).randbytes(20000)).hexdigest())\n";
        String want = TestSupport.runPython(write, kms, dir.resolve("p2j").toString()).trim();
        byte[] got = readAll(path("p2j"));
        assertEquals(20000, got.length);
        assertEquals(want, sha256(got));
        assertEquals(20000, fs.getFileStatus(path("p2j")).getLen());
    }

    @Test
    void copyingFallbackWritesTheSameFormat() throws Exception {
        PythonSession copying = PythonSession.open(TestSupport.conf(kms, String.valueOf(SEG)), false);
        assertFalse(copying.buffers.zeroCopy());
        EncryptedFileSystem slow = new EncryptedFileSystem("enc+file", "file", FileSystem.getLocalFileSystem(),
                URI.create("enc+file:///"), () -> copying);
        byte[] data = TestSupport.data(333, 8);
        try (FSDataOutputStream out = slow.create(path("copying"), WriteMode.OVERWRITE)) {
            out.write(data);
        }
        assertArrayEquals(data, readAll(path("copying")));
        write(path("fast"), TestSupport.data(1000, 13));
        try (FSDataInputStream in = slow.open(path("fast"))) {
            assertEquals(1000, in.readAllBytes().length);
        }
        assertNotEquals(0, NativeBuffers.address(ByteBuffer.allocateDirect(16)), "zero-copy path available on this JDK");
    }

    /** An inner stream over another one (a local file). */
    static class DelegatingStream extends FSDataInputStream {
        final FSDataInputStream d;

        DelegatingStream(FSDataInputStream d) {
            this.d = d;
        }

        @Override
        public void seek(long p) throws IOException {
            d.seek(p);
        }

        @Override
        public long getPos() throws IOException {
            return d.getPos();
        }

        @Override
        public int read() throws IOException {
            return d.read();
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            return d.read(b, off, len);
        }

        @Override
        public void close() throws IOException {
            d.close();
        }
    }

    /** An inner stream without ByteBufferReadable, over a local file. */
    static final class PlainStream extends DelegatingStream {
        PlainStream(FSDataInputStream d) {
            super(d);
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            return d.read(b, off, Math.min(len, 7)); // short reads, as network streams do
        }
    }

    @Test
    void sequentialBatchesRandomAccessAndInnerStreamsWithoutPositionalReads() throws Exception {
        Path p = path("windows");
        byte[] data = write(p, TestSupport.data(SEG * 40 + 9, 17)); // several batches of 8 segments
        java.nio.file.Path raw = dir.resolve("windows");
        FileSystem local = FileSystem.getLocalFileSystem();
        for (boolean positional : new boolean[] {true, false}) {
            FSDataInputStream inner = local.open(new Path(raw.toUri()));
            if (!positional) {
                inner = new PlainStream(inner);
            }
            try (DecryptingInputStream in = new DecryptingInputStream(inner, Files.size(raw),
                    PythonSession.open(TestSupport.conf(kms, String.valueOf(SEG))), raw.toString())) {
                assertEquals(data.length, in.size());
                byte[] all = new byte[data.length];
                int off = 0;
                for (int chunk = 1; off < all.length; chunk = chunk * 3 % 97 + 1) { // odd chunk sizes
                    int n = in.read(all, off, Math.min(chunk, all.length - off));
                    assertTrue(n > 0);
                    off += n;
                }
                assertArrayEquals(data, all);
                assertEquals(-1, in.read());
                for (long at : new long[] {SEG * 39L, 5, SEG * 20L + 3, SEG * 21L, SEG * 22L, SEG * 23L + 60, 0}) {
                    in.seek(at);
                    byte[] got = new byte[100];
                    int n = in.read(got);
                    assertArrayEquals(Arrays.copyOfRange(data, (int) at, (int) at + n), Arrays.copyOf(got, n));
                }
            }
        }
    }

    /** An object store's stream (S3, GCS, HDFS through Hadoop) declares positional reads too, but
     *  each is a ranged request of its own: counted here. */
    static final class RangedStream extends DelegatingStream implements org.apache.flink.core.fs.ByteBufferReadable {
        int positionalReads;
        int bufferReads;
        int seeksThatMove;

        RangedStream(FSDataInputStream d) {
            super(d);
        }

        @Override
        public int read(long position, ByteBuffer dst) throws IOException {
            positionalReads++;
            return ((org.apache.flink.core.fs.ByteBufferReadable) d).read(position, dst);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            bufferReads++; // Flink's HadoopDataInputStream fills a direct buffer one read() at a time
            return ((org.apache.flink.core.fs.ByteBufferReadable) d).read(dst);
        }

        @Override
        public void seek(long p) throws IOException {
            if (p != d.getPos()) {
                seeksThatMove++; // an object store reopens its request here
            }
            d.seek(p);
        }
    }

    @Test
    void anObjectStoresStreamIsReadAsOneStreamNotARequestPerWindow() throws Exception {
        Path p = path("object");
        byte[] data = write(p, TestSupport.data(SEG * 100 + 3, 29)); // windows of 1, 4, 16, 16, ... segments
        java.nio.file.Path raw = dir.resolve("object");
        // Flink 2.x's local stream reads by position (pread); 1.20's has no ByteBufferReadable: read as a stream
        boolean preads = org.apache.flink.core.fs.ByteBufferReadable.class.isAssignableFrom(
                org.apache.flink.core.fs.local.LocalDataInputStream.class);
        assertEquals(preads, InnerChannels.positional(FileSystem.getLocalFileSystem().open(new Path(raw.toUri()))) != null,
                "the local file system's stream is read by position where Flink allows it");
        RangedStream inner = new RangedStream(FileSystem.getLocalFileSystem().open(new Path(raw.toUri())));
        assertTrue(InnerChannels.positional(inner) == null);
        try (DecryptingInputStream in = new DecryptingInputStream(inner, Files.size(raw),
                PythonSession.open(TestSupport.conf(kms, String.valueOf(SEG))), raw.toString())) {
            assertArrayEquals(data, in.readAllBytes());
        }
        assertEquals(0, inner.positionalReads);
        assertEquals(0, inner.bufferReads);
        assertEquals(0, inner.seeksThatMove, "a sequential read reopened the object");
    }

    @Test
    void aTamperedLaterSegmentFailsOnlyWhenItsWindowIsRead() throws Exception {
        Path p = path("late-tamper");
        byte[] data = write(p, TestSupport.data(SEG * 30, 23));
        java.nio.file.Path raw = dir.resolve("late-tamper");
        byte[] b = Files.readAllBytes(raw);
        b[b.length - 10] ^= 1; // in the last segment
        Files.write(raw, b);
        try (FSDataInputStream in = fs.open(p)) {
            byte[] head = new byte[SEG * 3];
            assertEquals(head.length, in.read(head));
            assertArrayEquals(Arrays.copyOf(data, head.length), head);
            in.seek(SEG * 29L);
            assertThrows(IOException.class, () -> in.read(new byte[10]));
        }
    }

    /** A local file system that asks for entropy injection, as the S3 file systems do. */
    static final class EntropyLocal extends org.apache.flink.core.fs.local.LocalFileSystem
            implements org.apache.flink.core.fs.EntropyInjectingFileSystem {
        @Override
        public String getEntropyInjectionKey() {
            return "_entropy_";
        }

        @Override
        public String generateEntropy() {
            return "abcd";
        }
    }

    @Test
    void entropyInjectionOfTheInnerFileSystemStillWorks() throws Exception {
        EncryptedFileSystem enc = EncryptedFileSystem.of("enc+file", new EntropyLocal(), URI.create("enc+file:///"),
                TestSupport.conf(kms, String.valueOf(SEG)));
        Path withKey = path("_entropy_/data");
        assertTrue(org.apache.flink.core.fs.EntropyInjector.isEntropyInjecting(enc, withKey));
        org.apache.flink.core.fs.OutputStreamAndPath sp =
                org.apache.flink.core.fs.EntropyInjector.createEntropyAware(enc, withKey, WriteMode.OVERWRITE);
        try (FSDataOutputStream out = sp.stream()) {
            out.write(TestSupport.data(100, 31));
        }
        assertEquals(path("abcd/data"), sp.path());
        assertTrue(Files.exists(dir.resolve("abcd").resolve("data")));
        assertEquals(path("data"),
                org.apache.flink.core.fs.EntropyInjector.removeEntropyMarkerIfPresent(enc, path("_entropy_/data")));
        assertArrayEquals(TestSupport.data(100, 31), readAll(path("abcd/data")));
    }

    static String sha256(byte[] b) throws Exception {
        byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(b);
        StringBuilder sb = new StringBuilder();
        for (byte x : d) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }
}

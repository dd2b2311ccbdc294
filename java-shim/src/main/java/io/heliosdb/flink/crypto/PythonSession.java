package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.util.Map;

/**
 * The Java handle on one session of the Python side (the {@code configure} hook's id, one per distinct
 * configuration): the hook calls the streams make to start a file and to seal or open its segments,
 * through the {@link PythonBridge}. Keys never leave Python; Java sees header bytes, handles and
 * ciphertext.
 */
final class PythonSession {

    /** What a new file starts with. */
    static final class NewFile {
        final long handle;
        final byte[] header;
        final int segmentSize;
        final int overhead;

        NewFile(long handle, byte[] header, int segmentSize, int overhead) {
            this.handle = handle;
            this.header = header;
            this.segmentSize = segmentSize;
            this.overhead = overhead;
        }
    }

    final PythonBridge bridge;
    final NativeBuffers buffers;
    private final long sid;

    private PythonSession(PythonBridge bridge, long sid, boolean zeroCopy) {
        this.bridge = bridge;
        this.sid = sid;
        this.buffers = new NativeBuffers(bridge, zeroCopy);
    }

    /**
     * Starts (or joins) the JVM's Python and validates {@code conf} (the {@code heliosdb.crypto.*}
     * entries) there; a bad option fails with a message naming its key.
     */
    static PythonSession open(Map<String, String> conf) throws IOException {
        return open(conf, true);
    }

    static PythonSession open(Map<String, String> conf, boolean zeroCopy) throws IOException {
        PythonBridge bridge = PythonBridge.get(PythonBridge.executable(conf));
        long sid = (Long) bridge.call("configure", PythonLaunch.toJson(conf));
        return new PythonSession(bridge, sid, zeroCopy);
    }

    NewFile newFile(String path) throws IOException {
        Object[] r = (Object[]) bridge.call("writer", sid, path);
        return new NewFile((Long) r[0], (byte[]) r[1], ((Long) r[2]).intValue(), ((Long) r[3]).intValue());
    }

    /** Seals {@code len} plaintext bytes of {@code src} as segments {@code index, ...} into {@code dst}
     *  from byte {@code dstOff} on: zero-copy on the calling thread ({@link CallerPython}); without zero
     *  copy (one segment per call) copied through a worker. Written streams. */
    int sealHere(long handle, long index, boolean last, NativeBuffers.Registered src, int len,
                 NativeBuffers.Registered dst, int dstOff) throws IOException {
        if (!buffers.zeroCopy()) {
            return copying("seal_bytes", handle, index, last, src, len, dst, dstOff);
        }
        return ((Long) CallerPython.call(bridge, "seal", handle, index, last, src.id, (long) len, dst.id,
                (long) dstOff)).intValue();
    }

    /** Zero copy only: as {@link #sealHere} (into {@code dst} from its start), and Python writes the
     *  sealed bytes to the local file whose descriptor is {@code fd} ({@link InnerChannels#fd}) before
     *  it returns: one call, the bytes still in this core's cache, no copy in Java. */
    int sealWrite(long handle, long index, boolean last, NativeBuffers.Registered src, int len,
                  NativeBuffers.Registered dst, int fd) throws IOException {
        return ((Long) CallerPython.call(bridge, "seal_write", handle, index, last, src.id, (long) len, dst.id,
                (long) fd)).intValue();
    }

    /** Without zero copy: {@code op} (a "_bytes" form) on a copy of {@code src}'s first {@code len} bytes,
     *  through a worker; its output copied into {@code dst} from byte {@code dstOff} on. */
    private int copying(String op, long handle, long index, boolean last, NativeBuffers.Registered src, int len,
                        NativeBuffers.Registered dst, int dstOff) throws IOException {
        byte[] out = (byte[]) bridge.call(op, handle, index, last, copyOut(src, len));
        copyIn(dst, dstOff, out);
        return out.length;
    }

    /** What fetches sealed bytes on the worker: typically, read them from the inner stream. */
    interface SealedSource {
        int read() throws IOException;
    }

    /** Zero-copy only: {@code source} fetches sealed bytes, then Python opens them, both on a worker;
     *  {@link #opened} waits for them. */
    PythonCall openAsync(long handle, long index, boolean last, SealedSource source,
                                NativeBuffers.Registered src, NativeBuffers.Registered dst) {
        return bridge.submit(() -> new Object[] {handle, index, last, src.id, (long) source.read(), dst.id},
                "open", null);
    }

    static int opened(PythonCall c) throws IOException {
        return ((Long) c.await("open")).intValue();
    }

    /** An inner stream's failure, saying which encrypted file it hit (the inner message kept). */
    static IOException innerFailure(String path, String what, IOException e) {
        String m = String.valueOf(e.getMessage());
        return m.contains(path) ? e
                : new IOException(Printable.shown(path + ": " + what + " the inner file failed: " + m), e);
    }

    /** A call on a closed stream. Also what Flink reports when it closed a stream because another
     *  failed (ForSt copies a restore's files in parallel): the message says where the cause is. */
    static IOException closedStream(String path) {
        return new IOException(Printable.shown(path) + ": stream is closed (if another stream of the same"
                + " restore or checkpoint failed, that closed this one: the TaskManager log names the file"
                + " that failed first)");
    }

    /** The file is complete: Python reports it and forgets its keys. Not waited for (it only emits
     *  events; the queue keeps it ordered after this file's other calls). */
    void finish(long handle, long plaintextBytes) {
        bridge.submit("finish", handle, plaintextBytes);
    }

    /** The file was aborted (reported as such); not waited for. */
    void discard(long handle) {
        bridge.submit("discard", handle);
    }

    /** Reports a file the shim could not frame (best effort: the read fails either way). */
    void malformed(String path, String reason) {
        try {
            bridge.call("malformed", sid, path, reason);
        } catch (IOException ignored) {
            // reporting must not mask the original error
        }
    }

    long openFile(String path, byte[] header) throws IOException {
        return (Long) bridge.call("reader", sid, path, header);
    }

    /**
     * The header {@code src}'s file needs at {@code dst} (rule F-24): {@code header} (its first bytes,
     * at least the header) authenticated and checked against {@code src} as a read would, re-sealed
     * for {@code dst}'s binding name; an empty array when nothing is to be re-sealed.
     */
    byte[] reseal(String src, String dst, byte[] header) throws IOException {
        return (byte[]) bridge.call("reseal", sid, src, dst, header);
    }

    /** TESTS ONLY: open a header with a given data key (format vectors), checking it is sealed for
     *  {@code boundName}; Python refuses it unless HELIOSDB_INSECURE_TEST_HOOKS=1. */
    long insecureOpenWithDek(String path, byte[] header, String dekHex, String boundName) throws IOException {
        return (Long) bridge.call("insecure_reader_with_dek", path, header, dekHex, boundName);
    }

    /** Authenticates and decrypts {@code len} bytes of sealed segment {@code index}; returns plaintext length. */
    int open(long handle, long index, boolean last, NativeBuffers.Registered src, int len,
             NativeBuffers.Registered dst) throws IOException {
        if (!buffers.zeroCopy()) {
            return copying("open_bytes", handle, index, last, src, len, dst, 0);
        }
        return ((Long) bridge.call("open", handle, index, last, src.id, (long) len, dst.id)).intValue();
    }

    /** As {@link #open}, zero-copy on the calling thread ({@link CallerPython}): positional reads,
     *  local files. */
    int openHere(long handle, long index, boolean last, NativeBuffers.Registered src, int len,
                 NativeBuffers.Registered dst) throws IOException {
        if (!buffers.zeroCopy()) {
            return copying("open_bytes", handle, index, last, src, len, dst, 0);
        }
        return ((Long) CallerPython.call(bridge, "open", handle, index, last, src.id, (long) len, dst.id)).intValue();
    }

    /** The reader is done (reported with the bytes it authenticated); not waited for. */
    void close(long handle) {
        bridge.submit("close", handle);
    }

    private static byte[] copyOut(NativeBuffers.Registered r, int len) {
        byte[] b = new byte[len];
        java.nio.ByteBuffer d = r.buffer.duplicate();
        d.clear();
        d.get(b);
        return b;
    }

    private static void copyIn(NativeBuffers.Registered r, int offset, byte[] b) {
        java.nio.ByteBuffer d = r.buffer.duplicate();
        d.clear().position(offset);
        d.put(b);
    }
}

package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The decrypted segments a {@link DecryptingInputStream} holds: a window of consecutive segments
 * {@code [first, first + segments)} in one of two pairs of native buffers (sealed, plain), every byte
 * of it authenticated. A window fetched and opened synchronously is opened in place, in its sealed
 * buffer: the sealed segments are fetched one segment ({@link #lead}) into it and Python writes the
 * plaintext from its start, each segment's below its own sealed bytes (no call's input overlaps its
 * output, which AES-GCM in cryptography 51 refuses): one buffer instead of two, less memory for the
 * kernel's copy, AES-GCM and the copy out to pass through. A prefetched window is opened into the
 * slot's plaintext buffer.
 *
 * <ul>
 *   <li>{@link #load} (stream reads): one segment on random access. Reading on sequentially from a
 *   local file (positional reads, {@link CiphertextSource#local}), the caller fetches and decrypts
 *   the next segments (four times the current window, up to {@link #LOCAL_READ_BYTES}) itself, one Python call on its own thread ({@link CallerPython}):
 *   a read from the page cache costs no wait worth hiding, and bytes that stay on one core in pieces
 *   that fit its cache cost less CPU than a prefetch on another core (docs/performance.md). From
 *   any other inner stream (object stores: every fetch waits on the network), the next window (four
 *   times the current one, up to {@link NativeBuffers#BATCH_BYTES}) is fetched and decrypted by one
 *   Python call, both on a worker, while the caller consumes the current one (a failure there is
 *   reported when that window is read; without direct memory for it, there is no prefetch). The
 *   caller waits for the prefetch before it touches the inner stream.</li>
 *   <li>{@link #loadRange} (positional reads, ForSt's block reads): exactly the segments a read
 *   covers, fetched and decrypted in one call, never a prefetch: a block read that crosses a segment
 *   boundary costs one call, not two plus a window decrypted for nothing.</li>
 * </ul>
 */
final class SegmentWindow {

    /** Plaintext bytes per call reading a local file sequentially (JVM system property
     *  {@code heliosdb.crypto.local-read-bytes}, default 512 KiB, at least one segment: one of the default 1 MiB, two of 256 KiB, which,
     *  sealed and plain, stay in a core's L2 cache between the kernel's copy, AES-GCM and the copy
     *  out; with 256 KiB segments, 256 KiB per call cost more Python calls, 1 MiB more cache misses). */
    static final int LOCAL_READ_BYTES = Integer.getInteger("heliosdb.crypto.local-read-bytes", 512 << 10);

    private final PythonSession session;
    private final CiphertextSource source;
    private final SegmentLayout layout;
    private final String path;
    private final long handle;
    private final long size;
    private final long count;
    private final int batchSegments;
    private final int localSegments; // per call reading a local file on: 0 when not on the caller
    private final int lead; // where a window opened in place starts in its sealed buffer (0: copying through byte arrays)
    private final NativeBuffers.Registered[] sealed = new NativeBuffers.Registered[2];
    private final NativeBuffers.Registered[] plain = new NativeBuffers.Registered[2];
    private int slot;
    private long first = -1;
    private long segments;
    private int windowLen;
    private PythonCall prefetch; // fetch + decrypt of the next window
    private long prefetchFirst = -1;
    private long prefetchSegments;
    private boolean endAuthenticated; // the final segment has authenticated
    private boolean inPlace; // the window was opened in its sealed buffer (its plaintext from the start)

    SegmentWindow(PythonSession session, CiphertextSource source, SegmentLayout layout, String path, long handle,
                  long size) {
        this.session = session;
        this.source = source;
        this.layout = layout;
        this.path = path;
        this.handle = handle;
        this.size = size;
        this.count = SegmentLayout.segmentCount(size, layout.segmentSize);
        this.batchSegments = session.buffers.zeroCopy() ? NativeBuffers.batchSegments(layout.segmentSize) : 1;
        this.localSegments = session.buffers.zeroCopy() && CallerPython.ENABLED && source.local()
                ? Math.max(1, LOCAL_READ_BYTES / layout.segmentSize) : 0;
        this.lead = session.buffers.zeroCopy() ? layout.segmentSize : 0;
    }

    long count() {
        return count;
    }

    boolean endAuthenticated() {
        return endAuthenticated;
    }

    boolean holds(long idx) {
        return first >= 0 && idx >= first && idx < first + segments;
    }

    /** Plaintext offset of the window's start, and its length ({@code -1, 0} when empty). */
    long start() {
        return first < 0 ? -1 : first * layout.segmentSize;
    }

    int length() {
        return first < 0 ? 0 : windowLen;
    }

    /** Makes segment {@code idx} part of the window (stream reads: may start a prefetch). */
    void load(long idx) throws IOException {
        if (holds(idx)) {
            return;
        }
        boolean sequential = first >= 0 && idx == first + segments;
        first = -1;
        if (localSegments > 0) { // never a prefetch in flight here
            open(idx, sequential ? Math.min(Math.min(localSegments, 4 * segments), count - idx) : 1, true);
            return;
        }
        if (prefetch != null) {
            PythonCall c = prefetch;
            prefetch = null;
            if (idx >= prefetchFirst && idx < prefetchFirst + prefetchSegments) {
                slot ^= 1;
                windowLen = PythonSession.opened(c); // its failure is this read's failure
                inPlace = false;
                ReadCounters.call();
                ReadCounters.decrypted(windowLen);
                first = prefetchFirst;
                segments = prefetchSegments;
                endAuthenticated |= first + segments == count;
            } else {
                settle(c);
            }
        }
        if (first < 0) {
            open(idx, 1, false);
        }
        long next = first + segments;
        if (sequential && next < count && session.buffers.zeroCopy()) {
            startPrefetch(next, Math.min(Math.min(batchSegments, 4 * segments), count - next));
        }
    }

    /** Makes segments {@code [from, from + n)} (n capped at one batch) the window, in one call and
     *  without a prefetch (positional reads). */
    void loadRange(long from, long n) throws IOException {
        n = Math.max(1, Math.min(Math.min(n, batchSegments), count - from));
        if (holds(from) && holds(from + n - 1)) {
            return;
        }
        first = -1;
        if (prefetch != null) { // its buffers and the inner stream must be idle before reuse
            settle(prefetch);
            prefetch = null;
        }
        open(from, n, true);
    }

    /** Fetches and decrypts segments {@code [from, from + n)} in the current slot's sealed buffer, in
     *  place, synchronously; {@code here}: Python on the calling thread (positional reads, local files). */
    private void open(long from, long n, boolean here) throws IOException {
        ensure(slot, n, false);
        int want = fetch(from, n, slot, lead);
        boolean last = from + n == count;
        inPlace = true;
        windowLen = here ? session.openHere(handle, from, last, sealed[slot], want, sealed[slot])
                : session.open(handle, from, last, sealed[slot], want, sealed[slot]);
        ReadCounters.call();
        ReadCounters.decrypted(windowLen);
        first = from;
        segments = n;
        endAuthenticated |= from + n == count;
    }

    /** Copies window bytes from plaintext offset {@code at} (inside the window) into {@code dst}, up to
     *  the end of the window. */
    int copy(long at, ByteBuffer dst) {
        int from = (int) (at - first * layout.segmentSize);
        int take = Math.min(windowLen - from, dst.remaining());
        ByteBuffer src = plaintext().duplicate();
        src.clear().position(from).limit(from + take);
        dst.put(src);
        return take;
    }

    /** The byte at plaintext offset {@code at} (inside the window). */
    int get(long at) {
        return plaintext().get((int) (at - first * layout.segmentSize)) & 0xff;
    }

    /** The buffer holding the window's plaintext, from its start. */
    private ByteBuffer plaintext() {
        return (inPlace ? sealed : plain)[slot].buffer;
    }

    /** Buffers of slot {@code s} hold at least {@code n} segments (the sealed one after {@link #lead}
     *  bytes, to be opened in place; the plaintext one only {@code withPlain}). */
    private void ensure(int s, long n, boolean withPlain) throws IOException {
        int sealedBytes = lead + (int) n * (layout.segmentSize + layout.overhead);
        if (sealed[s] == null || sealed[s].buffer.capacity() < sealedBytes) {
            session.buffers.give(sealed[s]);
            sealed[s] = null;
            sealed[s] = session.buffers.take(sealedBytes);
        }
        if (withPlain && (plain[s] == null || plain[s].buffer.capacity() < n * layout.segmentSize)) {
            session.buffers.give(plain[s]);
            plain[s] = null;
            plain[s] = session.buffers.take((int) n * layout.segmentSize);
        }
    }

    /** Reads sealed segments {@code [from, from + n)} into {@code sealed[s]} from byte {@code at};
     *  returns their length. */
    private int fetch(long from, long n, int s, int at) throws IOException {
        long end = from + n;
        long endOffset = end == count ? layout.ciphertextLength(size) : layout.segmentOffset(end);
        long offset = layout.segmentOffset(from);
        int want = (int) (endOffset - offset);
        ByteBuffer b = sealed[s].buffer.duplicate();
        b.clear().position(at).limit(at + want);
        source.readFully(offset, b);
        return want;
    }

    /** Sequential reading: fetch and decrypt the next window in the background meanwhile. */
    private void startPrefetch(long from, long n) {
        int other = slot ^ 1;
        try {
            ensure(other, n, true);
        } catch (IOException | RuntimeException e) {
            return; // no memory for it: read on demand
        }
        boolean last = from + n == count;
        prefetch = session.openAsync(handle, from, last, () -> {
            try {
                return fetch(from, n, other, 0);
            } catch (CryptoIOException e) {
                throw e;
            } catch (IOException e) {
                throw PythonSession.innerFailure(path, "reading", e);
            }
        }, sealed[other], plain[other]);
        prefetchFirst = from;
        prefetchSegments = n;
    }

    /** Waits for a prefetch nobody wants (its buffers and the inner stream must be idle before
     *  reuse); ignores its result. */
    private static void settle(PythonCall c) {
        try {
            ReadCounters.call();
            ReadCounters.decrypted(PythonSession.opened(c));
        } catch (IOException | RuntimeException ignored) {
            // nobody asked for those segments
        }
    }

    /** Waits for any prefetch and returns every buffer to the pool. */
    void close() {
        first = -1;
        if (prefetch != null) {
            settle(prefetch);
            prefetch = null;
        }
        for (int i = 0; i < 2; i++) {
            session.buffers.give(sealed[i]);
            session.buffers.give(plain[i]);
            sealed[i] = plain[i] = null;
        }
    }
}

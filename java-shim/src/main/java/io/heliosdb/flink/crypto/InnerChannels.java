package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.ByteBufferReadable;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.util.WrappingProxy;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.channels.WritableByteChannel;

/**
 * What the shim may do with the inner file system's streams beyond the FSData*Stream API.
 *
 * <p>Writing: a channel onto the inner stream's file when that stream is Flink's local one (possibly behind
 * Flink's wrappers), so sealed native buffers go to the kernel as they are, instead of being copied
 * into a byte[] and by the JDK into a malloc'd buffer again: two copies of every byte fewer (or its
 * file descriptor's number, for Python to write to). Found by
 * reflection on {@code LocalDataOutputStream.fos}; any other stream, or a Flink whose class differs,
 * gets {@code null} and the portable byte[] path. The channel shares the stream's file position, so
 * the stream's own getPos/flush/sync/close stay right. JVM property
 * {@code heliosdb.crypto.no-inner-channel=true} turns both off.
 */
final class InnerChannels {

    private static final Class<?> LOCAL;
    private static final Field FOS;
    /** Flink's local file input stream (ByteBufferReadable by pread), or null in a Flink without it. */
    private static final Class<?> LOCAL_IN = load("org.apache.flink.core.fs.local.LocalDataInputStream");
    private static final boolean OFF = Boolean.getBoolean("heliosdb.crypto.no-inner-channel");
    private static final long FD_NUMBER = PrivateFields.offset(FileDescriptor.class, "fd");

    static {
        Class<?> c = null;
        Field f = null;
        try {
            c = Class.forName("org.apache.flink.core.fs.local.LocalDataOutputStream");
            f = c.getDeclaredField("fos");
            if (f.getType() != FileOutputStream.class) {
                f = null;
            } else {
                f.setAccessible(true);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            f = null;
        }
        LOCAL = f == null ? null : c;
        FOS = f;
    }

    private InnerChannels() {
    }

    private static Class<?> load(String name) {
        try {
            return Class.forName(name);
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }

    /**
     * {@code in} as positional reads into native buffers when it is Flink's local file stream (a
     * pread straight into the buffer), else {@code null}. Object store streams also declare
     * ByteBufferReadable, but a positional read there is a ranged GET of its own: a file read
     * window by window cost a request per window (256 MiB from S3: 5x slower than streaming it), so
     * they are read as streams, and a seek to where the stream already is costs nothing.
     */
    static ByteBufferReadable positional(FSDataInputStream in) {
        if (in instanceof LocalReads) {
            return (ByteBufferReadable) in;
        }
        Object s = unwrap(in);
        return in instanceof ByteBufferReadable && s != null && s.getClass() == LOCAL_IN
                ? (ByteBufferReadable) in : null;
    }

    /** An inner stream over local memory or a local file whose positional reads cost no request
     *  (bench/BridgeBench's in-memory stream declares it, to measure the bridge as Flink's local file
     *  system is read). */
    interface LocalReads extends ByteBufferReadable {
    }

    private static Object unwrap(Object s) {
        for (int depth = 0; s instanceof WrappingProxy && depth < 8; depth++) {
            s = ((WrappingProxy<?>) s).getWrappedDelegate();
        }
        return s;
    }

    /** The file channel under {@code out} when it is a local file stream, else {@code null}. */
    static WritableByteChannel writable(FSDataOutputStream out) {
        FileOutputStream fos = local(out);
        return fos == null ? null : fos.getChannel();
    }

    /**
     * The number of the file descriptor under {@code out} when it is a local file stream, else -1:
     * Python writes the sealed segments to it as it seals them ({@link PythonSession#sealWrite}), from
     * the native buffer they were sealed into, on the calling thread, where a Java interrupt stops
     * nothing (a channel would close). Python writes through its own duplicate of the descriptor
     * (the same open file and position), closed when the file is finished or discarded: a descriptor
     * closed under it never sends those bytes to another file.
     */
    static int fd(FSDataOutputStream out) {
        FileOutputStream fos = local(out);
        try {
            return fos == null ? -1 : PrivateFields.getInt(fos.getFD(), FD_NUMBER);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private static FileOutputStream local(FSDataOutputStream out) {
        if (FOS == null || OFF) {
            return null;
        }
        Object s = unwrap(out);
        if (s == null || s.getClass() != LOCAL) {
            return null;
        }
        try {
            return (FileOutputStream) FOS.get(s);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}

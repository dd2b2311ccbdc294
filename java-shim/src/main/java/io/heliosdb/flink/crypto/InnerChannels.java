package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataOutputStream;

import java.io.FileOutputStream;
import java.lang.reflect.Field;
import java.nio.channels.WritableByteChannel;

/**
 * A channel onto the inner stream's file when that stream is Flink's local one, so sealed native
 * buffers go to the kernel without being copied into a byte[] first (and by the JVM into a malloc'd
 * buffer again). Found by reflection on {@code LocalDataOutputStream.fos}; any other stream, or a
 * Flink whose class differs, gets {@code null} and the portable byte[] path. The channel shares the
 * stream's file position, so the stream's own getPos/flush/sync/close stay right.
 */
final class InnerChannels {

    private static final Class<?> LOCAL;
    private static final Field FOS;

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

    /** The file channel under {@code out} when it is a local file stream, else {@code null}. */
    static WritableByteChannel writable(FSDataOutputStream out) {
        if (FOS == null || out.getClass() != LOCAL
                || Boolean.getBoolean("heliosdb.crypto.no-inner-channel")) {
            return null;
        }
        try {
            return ((FileOutputStream) FOS.get(out)).getChannel();
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}

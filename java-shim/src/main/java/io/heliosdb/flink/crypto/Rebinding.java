package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystem.WriteMode;
import org.apache.flink.core.fs.Path;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@link EncryptedFileSystem#rename}: a version 2 header is sealed for its file's binding name
 * (docs/format.md F-24), so a rename that changes that name re-seals the header. Python
 * authenticates the source's header (checked against the source path, as a read would) and returns
 * the header for the destination (same data key, salt and nonce prefix, the new name, a new MAC);
 * the new header and the body bytes, unchanged, are written to the destination, then the source is
 * deleted. Costs a copy of the file. On an inner filesystem that renames atomically (local, HDFS)
 * the copy goes to a temporary name beside the destination first and is renamed into place, so
 * readers never see a partial destination; on object stores (whose renames are copies anyway) it is
 * written to the destination directly. Directories, renames that keep the binding name and version 1
 * files (no name) are inner renames.
 */
final class Rebinding {

    private static final int COPY = 1 << 20;

    private Rebinding() {
    }

    /** The Python session, made only when a rename needs it. */
    interface Sessions {
        PythonSession get() throws IOException;
    }

    static boolean rename(FileSystem inner, boolean atomicRename, Sessions sessions, Path src, Path dst,
                          Path innerSrc, Path innerDst) throws IOException {
        String from = src.toString();
        String to = dst.toString();
        if (BindingName.of(from).equals(BindingName.of(to))) {
            return inner.rename(innerSrc, innerDst);
        }
        FileStatus st;
        try {
            st = inner.getFileStatus(innerSrc);
        } catch (FileNotFoundException e) {
            return false;
        }
        if (st.isDir()) {
            return inner.rename(innerSrc, innerDst);
        }
        byte[] oldHeader;
        try (FSDataInputStream in = inner.open(innerSrc)) {
            oldHeader = SegmentLayout.readHeader(in, from);
        }
        byte[] header = sessions.get().reseal(from, to, oldHeader);
        if (header.length == 0) {
            return inner.rename(innerSrc, innerDst);
        }
        Path target = atomicRename ? temporary(innerDst) : innerDst;
        try (FSDataInputStream in = inner.open(innerSrc);
             FSDataOutputStream out = inner.create(target, WriteMode.OVERWRITE)) {
            out.write(header);
            in.seek(oldHeader.length);
            copy(in, out, st.getLen() - oldHeader.length, from);
        } catch (IOException | RuntimeException e) {
            inner.delete(target, false);
            throw e;
        }
        if (atomicRename && !inner.rename(target, innerDst)) {
            inner.delete(target, false);
            return false;
        }
        inner.delete(innerSrc, false);
        return true;
    }

    private static void copy(FSDataInputStream in, FSDataOutputStream out, long n, String path) throws IOException {
        byte[] buf = new byte[(int) Math.min(COPY, Math.max(1, n))];
        while (n > 0) {
            int r = in.read(buf, 0, (int) Math.min(buf.length, n));
            if (r < 0) {
                throw new IOException(Printable.shown(path) + ": changed while being renamed (shorter than when it was listed)");
            }
            out.write(buf, 0, r);
            n -= r;
        }
    }

    private static Path temporary(Path dst) {
        return new Path(dst.getParent(), "." + dst.getName() + ".hfc-tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
    }
}

package io.heliosdb.flink.crypto;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The encrypted schemes, one factory class each (ServiceLoader needs a no-argument constructor),
 * listed in META-INF/services/org.apache.flink.core.fs.FileSystemFactory. GENERATED from
 * heliosdb_flink_crypto/flink/__init__.py SCHEMES by
 * {@code python -m heliosdb_flink_crypto.flink.java_mirror}: do not edit by hand.
 */
public final class Schemes {
    private Schemes() {
    }

    /** Every encrypted scheme, in SCHEMES order. */
    public static final List<String> NAMES = Collections.unmodifiableList(Arrays.asList(
            "enc+file",
            "enc+s3",
            "enc+s3a",
            "enc+s3p",
            "enc+gs",
            "enc+hdfs",
            "enc+abfss"));

    /** {@code enc+file://} over Flink's {@code file://} file system. */
    public static final class EncFile extends EncryptedFileSystemFactory {
        public EncFile() {
            super("enc+file");
        }
    }

    /** {@code enc+s3://} over Flink's {@code s3://} file system. */
    public static final class EncS3 extends EncryptedFileSystemFactory {
        public EncS3() {
            super("enc+s3");
        }
    }

    /** {@code enc+s3a://} over Flink's {@code s3a://} file system. */
    public static final class EncS3a extends EncryptedFileSystemFactory {
        public EncS3a() {
            super("enc+s3a");
        }
    }

    /** {@code enc+s3p://} over Flink's {@code s3p://} file system. */
    public static final class EncS3p extends EncryptedFileSystemFactory {
        public EncS3p() {
            super("enc+s3p");
        }
    }

    /** {@code enc+gs://} over Flink's {@code gs://} file system. */
    public static final class EncGs extends EncryptedFileSystemFactory {
        public EncGs() {
            super("enc+gs");
        }
    }

    /** {@code enc+hdfs://} over Flink's {@code hdfs://} file system. */
    public static final class EncHdfs extends EncryptedFileSystemFactory {
        public EncHdfs() {
            super("enc+hdfs");
        }
    }

    /** {@code enc+abfss://} over Flink's {@code abfss://} file system. */
    public static final class EncAbfss extends EncryptedFileSystemFactory {
        public EncAbfss() {
            super("enc+abfss");
        }
    }
}

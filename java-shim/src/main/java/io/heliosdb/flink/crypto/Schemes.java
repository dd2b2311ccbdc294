package io.heliosdb.flink.crypto;

/**
 * The encrypted schemes, one factory class each (ServiceLoader needs a no-argument constructor):
 * listed in META-INF/services/org.apache.flink.core.fs.FileSystemFactory.
 */
public final class Schemes {
    private Schemes() {
    }

    /** {@code enc+file://} over the local file system. */
    public static final class EncFile extends EncryptedFileSystemFactory {
        public EncFile() {
            super("enc+file");
        }
    }

    /** {@code enc+s3://} over whichever S3 plugin serves {@code s3://}. */
    public static final class EncS3 extends EncryptedFileSystemFactory {
        public EncS3() {
            super("enc+s3");
        }
    }

    /** {@code enc+s3a://} over flink-s3-fs-hadoop. */
    public static final class EncS3a extends EncryptedFileSystemFactory {
        public EncS3a() {
            super("enc+s3a");
        }
    }

    /** {@code enc+s3p://} over flink-s3-fs-presto. */
    public static final class EncS3p extends EncryptedFileSystemFactory {
        public EncS3p() {
            super("enc+s3p");
        }
    }

    /** {@code enc+gs://} over flink-gs-fs-hadoop. */
    public static final class EncGs extends EncryptedFileSystemFactory {
        public EncGs() {
            super("enc+gs");
        }
    }

    /** {@code enc+hdfs://} over Hadoop's HDFS. */
    public static final class EncHdfs extends EncryptedFileSystemFactory {
        public EncHdfs() {
            super("enc+hdfs");
        }
    }

    /** {@code enc+abfss://} over flink-azure-fs-hadoop. */
    public static final class EncAbfss extends EncryptedFileSystemFactory {
        public EncAbfss() {
            super("enc+abfss");
        }
    }
}

package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FSDataOutputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.FileSystem.WriteMode;
import org.apache.flink.core.fs.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Python's errors reach Java callers (and Flink's logs) as exception types through the real bridge:
 * an authentication failure, a KMS outage and a bad option are told apart without reading messages.
 */
class TypedErrorsITCase {

    @TempDir
    static java.nio.file.Path dir;

    static EncryptedFileSystem fs(Map<String, String> conf) throws IOException {
        return EncryptedFileSystem.of("enc+file", FileSystem.getLocalFileSystem(), URI.create("enc+file:///"), conf);
    }

    static Path path(String name) {
        return new Path("enc+file://" + dir.resolve(name).toAbsolutePath());
    }

    static boolean fromPython(Throwable e) {
        return e.getCause() != null && e.getCause().getClass().getName().startsWith("pemja.");
    }

    @Test
    void aTamperedFileIsAnAuthenticationException() throws Exception {
        EncryptedFileSystem fs = fs(TestSupport.conf(TestSupport.keyring(Files.createDirectories(dir.resolve("auth"))), "64"));
        try (FSDataOutputStream out = fs.create(path("tampered"), WriteMode.OVERWRITE)) {
            out.write(TestSupport.data(300, 1));
        }
        byte[] b = Files.readAllBytes(dir.resolve("tampered"));
        b[b.length - 40] ^= 1;
        Files.write(dir.resolve("tampered"), b);
        IOException e = assertThrows(IOException.class, () -> {
            try (FSDataInputStream in = fs.open(path("tampered"))) {
                in.readAllBytes();
            }
        });
        AuthenticationException a = assertInstanceOf(AuthenticationException.class, e, e.toString());
        assertFalse(a instanceof MisplacedFileException);
        assertEquals("AuthenticationError", a.kind());
        assertTrue(fromPython(a), "Python's verdict, through pemja");
        assertEquals("AuthenticationError: " + path("tampered") + ": authentication failed (file tampered, truncated or wrong key)", a.getMessage());
    }

    @Test
    void aHostileFileNameReachesTheMessageEscapedOnOneLine() throws Exception {
        EncryptedFileSystem fs = fs(TestSupport.conf(TestSupport.keyring(Files.createDirectories(dir.resolve("hostile"))), "64"));
        String name = "forged\n2026-12-05 12:00:00,000 INFO  checkpoint 7 completed\u001b[2J";
        try (FSDataOutputStream out = fs.create(path(name), WriteMode.OVERWRITE)) {
            out.write(TestSupport.data(300, 2));
        }
        byte[] b = Files.readAllBytes(dir.resolve(name));
        b[b.length - 40] ^= 1;
        Files.write(dir.resolve(name), b);
        IOException e = assertThrows(IOException.class, () -> {
            try (FSDataInputStream in = fs.open(path(name))) {
                in.readAllBytes();
            }
        });
        AuthenticationException a = assertInstanceOf(AuthenticationException.class, e, e.toString());
        assertTrue(fromPython(a), "Python's verdict, its message naming the file");
        assertEquals("AuthenticationError: " + Printable.shown(path(name).toString())
                + ": authentication failed (file tampered, truncated or wrong key)", a.getMessage());
        assertFalse(a.getMessage().contains("\n") || a.getMessage().contains("\u001b"), "no raw newline or escape");
        assertTrue(a.getMessage().contains("forged\\n2026-12-05"), a.getMessage());
    }

    @Test
    void anUnreachableKmsIsAKmsUnavailableExceptionNamingTheFile() throws Exception {
        Assumptions.assumeTrue(hasBoto3(), "the AWS SDK (boto3) is not installed in " + TestSupport.python());
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort(); // nothing listens there once closed
        }
        Map<String, String> conf = TestSupport.conf("aws-kms://alias/checkpoints?region=us-east-1", "64");
        conf.put("heliosdb.crypto.kms.aws.endpoint", "http://127.0.0.1:" + closed);
        conf.put("heliosdb.crypto.kms.aws.access-key-id", "AKIDEXAMPLE");
        conf.put("heliosdb.crypto.kms.aws.secret-access-key", "not-a-secret");
        conf.put("heliosdb.crypto.kms.aws.max-attempts", "1");
        IOException e = assertThrows(IOException.class, () -> fs(conf).create(path("kms-down"), WriteMode.OVERWRITE));
        KmsUnavailableException k = assertInstanceOf(KmsUnavailableException.class, e, e.toString());
        assertEquals("KmsUnavailableError", k.kind());
        assertTrue(fromPython(k));
        assertTrue(k.getMessage().startsWith("KmsUnavailableError: " + path("kms-down") + ": aws-kms generate_data_key with key 'alias/checkpoints' failed"), k.getMessage());
        assertFalse(Files.exists(dir.resolve("kms-down")));
    }

    @Test
    void aBadOptionIsAConfigExceptionAndAMissingKeyringAKmsException() throws Exception {
        String keyring = TestSupport.keyring(Files.createDirectories(dir.resolve("config")));
        IOException e = assertThrows(IOException.class,
                () -> fs(TestSupport.conf(keyring, "not-a-size")).create(path("never"), WriteMode.OVERWRITE));
        ConfigException c = assertInstanceOf(ConfigException.class, e, e.toString());
        assertTrue(c.getMessage().startsWith("ConfigError: heliosdb.crypto.segment-size: "), c.getMessage());

        String gone = "local://" + dir.resolve("no-such-keyring.json").toAbsolutePath();
        IOException d = assertThrows(IOException.class,
                () -> fs(TestSupport.conf(gone, "64")).create(path("orphan"), WriteMode.OVERWRITE));
        KmsException k = assertInstanceOf(KmsException.class, d, d.toString());
        assertFalse(k instanceof KmsUnavailableException, "a keyring that is not there is denied, not down");
        assertEquals("KmsAccessDeniedError", k.kind());
    }

    static boolean hasBoto3() {
        try {
            TestSupport.runPython("import boto3");
            return true;
        } catch (Exception e) {
            return false;
        }
    }
}

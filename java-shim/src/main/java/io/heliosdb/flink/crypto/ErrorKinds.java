package io.heliosdb.flink.crypto;

/**
 * Python error class -> shim exception class, GENERATED from heliosdb_flink_crypto's error tree by
 * {@code python -m heliosdb_flink_crypto.flink.java_mirror}: do not edit by hand.
 * tests/test_errors_mirror.py checks it against the error tree. A class not listed (another of the package's errors,
 * a ValueError, an OSError) becomes the base {@link CryptoIOException}; the kind is always Python's
 * class name.
 */
final class ErrorKinds {
    private ErrorKinds() {
    }

    static CryptoIOException of(String kind, String message) {
        switch (kind) {
            case "AuthenticationError":
                return new AuthenticationException(kind, message);
            case "ConfigError":
                return new ConfigException(kind, message);
            case "FormatError":
            case "MetadataFormatError":
                return new FormatException(kind, message);
            case "KeyAccessError":
                return new KeyAccessException(kind, message);
            case "KmsAccessDeniedError":
            case "KmsError":
            case "KmsInvalidCiphertextError":
                return new KmsException(kind, message);
            case "KmsUnavailableError":
                return new KmsUnavailableException(kind, message);
            case "MisplacedFileError":
                return new MisplacedFileException(kind, message);
            case "TenantMismatchError":
            case "TenantRestoreError":
                return new TenantMismatchException(kind, message);
            default:
                return new CryptoIOException(kind, message);
        }
    }
}

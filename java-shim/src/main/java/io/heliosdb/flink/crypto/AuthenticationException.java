package io.heliosdb.flink.crypto;

/** The file failed authentication: tampered, truncated, spliced or the wrong key; never says which check failed (Python: {@code AuthenticationError}, and its subclasses without a class of their own). */
public class AuthenticationException extends CryptoIOException {
    private static final long serialVersionUID = 1L;

    public AuthenticationException(String kind, String message) {
        super(kind, message);
    }
}

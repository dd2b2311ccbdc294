package io.heliosdb.flink.crypto;

/** No configured key provider could unwrap the file's data key (Python: {@code KeyAccessError}, and its subclasses without a class of their own). */
public class KeyAccessException extends CryptoIOException {
    private static final long serialVersionUID = 1L;

    public KeyAccessException(String kind, String message) {
        super(kind, message);
    }
}

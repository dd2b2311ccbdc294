package io.heliosdb.flink.crypto;

/** A key provider failed (denied, refused the wrapped key, ...); names the provider, key and operation (Python: {@code KmsError}, and its subclasses without a class of their own). */
public class KmsException extends CryptoIOException {
    private static final long serialVersionUID = 1L;

    public KmsException(String kind, String message) {
        super(kind, message);
    }
}

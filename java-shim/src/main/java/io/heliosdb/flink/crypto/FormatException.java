package io.heliosdb.flink.crypto;

/** The bytes are not a well-formed encrypted file (bad magic, a length over its maximum, cut inside the header) (Python: {@code FormatError}, and its subclasses without a class of their own). */
public class FormatException extends CryptoIOException {
    private static final long serialVersionUID = 1L;

    public FormatException(String kind, String message) {
        super(kind, message);
    }
}

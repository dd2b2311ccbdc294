package io.heliosdb.flink.crypto;

/** Transient: the key provider was throttled, timed out or could not be reached (retrying may succeed) (Python: {@code KmsUnavailableError}, and its subclasses without a class of their own). */
public class KmsUnavailableException extends KmsException {
    private static final long serialVersionUID = 1L;

    public KmsUnavailableException(String kind, String message) {
        super(kind, message);
    }
}

package io.heliosdb.flink.crypto;

/** The file authenticated but was sealed for another place: swapped in, rolled back or renamed outside the encrypted filesystem (Python: {@code MisplacedFileError}, and its subclasses without a class of their own). */
public class MisplacedFileException extends AuthenticationException {
    private static final long serialVersionUID = 1L;

    public MisplacedFileException(String kind, String message) {
        super(kind, message);
    }
}

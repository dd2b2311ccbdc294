package io.heliosdb.flink.crypto;

import java.io.IOException;

/**
 * A failure reported by the Python engine (authentication failed, no key, KMS down, bad option) or
 * found by the shim while framing a file. The message names the file or the option key and never
 * carries key material. {@link #kind()} is the error class as Python names it
 * ({@code AuthenticationError}, {@code MisplacedFileError}, {@code FormatError}, ...): the same
 * verdict on both sides of the bridge. The Java class says the same thing as a type
 * ({@link AuthenticationException}, {@link KmsUnavailableException}, ...: {@link ErrorKinds}); this
 * base class stands for the others (an unexpected Python error keeps its class name as the kind).
 */
public class CryptoIOException extends IOException {
    private static final long serialVersionUID = 1L;

    static final String FORMAT = "FormatError";
    static final String AUTHENTICATION = "AuthenticationError";

    private final String kind;

    /** {@code message} is shown escaped ({@link Printable}): it quotes paths and header fields. */
    public CryptoIOException(String kind, String message) {
        super(Printable.shown(message));
        this.kind = kind;
    }

    /** A Python error as {@link PythonErrors#pythonMessage} renders it ({@code Class: message}), typed by its class. */
    public static CryptoIOException fromPython(String message) {
        return ErrorKinds.of(kindOf(message), message);
    }

    /** The framing of {@code path} is broken (Python: FormatError). */
    static FormatException format(String path, String what) {
        return new FormatException(FORMAT, path + ": " + what);
    }

    /** The opaque authentication failure (Python: AuthenticationError), e.g. a file shorter than its length said. */
    static AuthenticationException authentication(String path) {
        return new AuthenticationException(AUTHENTICATION, path + ": authentication failed (file tampered, truncated or wrong key)");
    }

    /** Python's error class name, e.g. {@code MisplacedFileError}; "" if unknown. */
    public String kind() {
        return kind;
    }

    private static String kindOf(String message) {
        int colon = message.indexOf(':');
        String head = colon > 0 ? message.substring(0, colon) : "";
        return head.matches("[A-Za-z_][A-Za-z0-9_]*") ? head : "";
    }
}

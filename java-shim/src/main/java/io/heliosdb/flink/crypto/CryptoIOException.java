package io.heliosdb.flink.crypto;

import java.io.IOException;

/**
 * A failure reported by the Python engine (authentication failed, no key, KMS down, bad option).
 * The message names the file or the option key and never carries key material.
 */
public class CryptoIOException extends IOException {
    private static final long serialVersionUID = 1L;

    public CryptoIOException(String message) {
        super(message);
    }
}

package io.heliosdb.flink.crypto;

/** A setting is missing or wrong; the message names the option key (Python: {@code ConfigError}, and its subclasses without a class of their own). */
public class ConfigException extends CryptoIOException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String kind, String message) {
        super(kind, message);
    }
}

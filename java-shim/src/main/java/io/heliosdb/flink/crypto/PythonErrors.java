package io.heliosdb.flink.crypto;

import java.io.IOException;

/**
 * How a failure of a pemja call reaches Java code, the same for both jars: a Python exception becomes
 * the {@link CryptoIOException} subclass of its class ({@link ErrorKinds}, generated from
 * {@code errors.py}'s tree) with Python's message, {@code Class: message}, escaped ({@link Printable});
 * an IOException stays as it is; anything else is wrapped, naming it.
 */
public final class PythonErrors {
    private PythonErrors() {
    }

    /** {@code t} (a pemja call's failure) as the IOException callers see. */
    public static IOException translate(Throwable t) {
        String m = String.valueOf(t.getMessage());
        if (t.getClass().getName().startsWith("pemja.") || m.startsWith("<class '")) {
            CryptoIOException e = CryptoIOException.fromPython(pythonMessage(m));
            e.initCause(t);
            return e;
        }
        if (t instanceof IOException) {
            return (IOException) t;
        }
        return new IOException("heliosdb crypto: " + Printable.shown(String.valueOf(t)), t);
    }

    /** {@code <class 'heliosdb_flink_crypto.errors.AuthenticationError'>: msg} -> {@code AuthenticationError: msg}. */
    public static String pythonMessage(String m) {
        if (m.startsWith("<class '")) {
            int end = m.indexOf("'>");
            if (end > 0) {
                String cls = m.substring(8, end);
                cls = cls.substring(cls.lastIndexOf('.') + 1);
                String rest = m.substring(end + 2);
                if (rest.startsWith(":")) {
                    rest = rest.substring(1);
                }
                return cls + ":" + rest;
            }
        }
        return m;
    }
}

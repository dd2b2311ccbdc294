package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/** How a pemja call's failure is typed, without a Python (TypedErrorsITCase: through the real bridge). */
class TypedErrorsTest {

    @Test
    void pythonErrorsOutsideTheTreeKeepTheirNameAndJavaErrorsStayAsTheyAre() {
        IOException v = PythonErrors.translate(new RuntimeException("<class 'builtins.ValueError'>: unknown operation 'x'"));
        assertEquals(CryptoIOException.class, v.getClass());
        assertEquals("ValueError", ((CryptoIOException) v).kind());
        assertEquals("ValueError: unknown operation 'x'", v.getMessage());
        IOException io = new IOException("kept");
        assertEquals(io, PythonErrors.translate(io));
        IOException other = PythonErrors.translate(new IllegalStateException("boom"));
        assertEquals("heliosdb crypto: java.lang.IllegalStateException: boom", other.getMessage());
        assertInstanceOf(FormatException.class, CryptoIOException.format("/p", "bad magic"));
        assertInstanceOf(AuthenticationException.class, CryptoIOException.authentication("/p"));
    }
}

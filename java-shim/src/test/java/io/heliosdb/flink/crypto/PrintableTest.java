package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

/** Untrusted text in messages Flink logs: escaped as Python's text.shown escapes it, nothing else touched. */
class PrintableTest {

    @Test
    void everyCharacterThatIsNotPrintableIsEscapedAsPythonWritesIt() {
        assertEquals("a\\nb\\rc\\td", Printable.shown("a\nb\rc\td"));
        assertEquals("\\x1b]0;owned\\x07", Printable.shown("\u001b]0;owned\u0007"));  // a terminal title
        assertEquals("\\x7f\\x85\\xa0", Printable.shown("\u007f\u0085\u00a0"));  // DEL, NEL, no-break space
        assertEquals("abc\\u202edcba", Printable.shown("abc\u202edcba"));  // bidirectional override
        assertEquals("x\\u2028y\\u2029z", Printable.shown("x\u2028y\u2029z"));  // line and paragraph separators
        assertEquals("\\U000e0001", Printable.shown(new String(Character.toChars(0xE0001))));  // a tag
        assertEquals("\\ud800", Printable.shown("\ud800"));  // a lone surrogate
        assertEquals("null", Printable.shown(null));
    }

    @Test
    void printableTextIsLeftAsItIs() {
        String path = "s3://bucket/checkpoints/job-1/chk-7/état 日本 \uD83D\uDE00.sst";
        assertSame(path, Printable.shown(path));
    }

    @Test
    void aTypedErrorsMessageIsOneEscapedLineKeepingItsKind() {
        CryptoIOException e = CryptoIOException.fromPython("AuthenticationError: /ckpt/x\n2026-12-05 INFO forged record: authentication failed");
        assertEquals("AuthenticationError", e.kind());
        assertEquals("AuthenticationError: /ckpt/x\\n2026-12-05 INFO forged record: authentication failed", e.getMessage());
        assertFalse(PythonErrors.translate(new IllegalStateException("a\u001b[2Jb")).getMessage().contains("\u001b"));
        IOException inner = new IOException("disk full");
        assertEquals("/ckpt/a\\nb: writing the inner file failed: disk full",
                PythonSession.innerFailure("/ckpt/a\nb", "writing", inner).getMessage());
    }
}

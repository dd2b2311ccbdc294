package io.heliosdb.flink.crypto;

/**
 * Untrusted text made safe for a log line, as Python's {@code text.shown} makes it for the CLI and
 * Python's log records: file names from a listing and header fields quoted in error messages are
 * chosen by whoever could write to storage, and Flink writes exception messages to its logs as they
 * are. Raw, a newline would forge a log record and a terminal escape would act on whoever reads the
 * log in a terminal. Every character Python does not call printable (controls, format characters
 * such as bidirectional overrides, line and paragraph separators, surrogates, unassigned and
 * private-use characters, spaces other than U+0020) is written as Python's {@code ascii()} writes
 * it: {@code \n}, {@code \x1b}, a backslash, {@code u} and four hex digits for a bidirectional
 * override, {@code \U000e0001}.
 */
public final class Printable {
    private Printable() {
    }

    /** {@code text} with every non-printable character escaped; {@code "null"} for null. */
    public static String shown(String text) {
        if (text == null) {
            return "null";
        }
        int i = 0;
        while (i < text.length()) {
            int c = text.codePointAt(i);
            if (!printable(c)) {
                break;
            }
            i += Character.charCount(c);
        }
        if (i == text.length()) {
            return text;
        }
        StringBuilder b = new StringBuilder(text.length() + 16).append(text, 0, i);
        while (i < text.length()) {
            int c = text.codePointAt(i);
            if (printable(c)) {
                b.appendCodePoint(c);
            } else {
                escape(b, c);
            }
            i += Character.charCount(c);
        }
        return b.toString();
    }

    static boolean printable(int c) {
        if (c == ' ') {
            return true;
        }
        switch (Character.getType(c)) {
            case Character.CONTROL:
            case Character.FORMAT:
            case Character.SURROGATE:
            case Character.PRIVATE_USE:
            case Character.UNASSIGNED:
            case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR:
            case Character.SPACE_SEPARATOR:
                return false;
            default:
                return true;
        }
    }

    private static void escape(StringBuilder b, int c) {
        switch (c) {
            case '\n':
                b.append("\\n");
                return;
            case '\r':
                b.append("\\r");
                return;
            case '\t':
                b.append("\\t");
                return;
            default:
                b.append(c < 0x100 ? String.format("\\x%02x", c)
                        : c < 0x10000 ? String.format("\\u%04x", c) : String.format("\\U%08x", c));
        }
    }
}

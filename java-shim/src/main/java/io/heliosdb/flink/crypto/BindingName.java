package io.heliosdb.flink.crypto;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The binding name of a path (docs/format.md rule F-24), the Java twin of format/binding.py: scheme
 * and authority dropped, the rest split into components (empty and {@code .} dropped, {@code ..}
 * removes the one before); the name is the last component, with its parent folder prefixed for
 * {@code _metadata} and the grandparent too when that parent is {@code chk-<n>}. Both sides check
 * the table in tests/vectors/binding-names.json. The shim uses it to decide whether a rename must
 * re-seal the file's header; Python computes the name it seals and checks.
 */
final class BindingName {

    private static final Pattern SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*:");
    private static final Pattern CHECKPOINT = Pattern.compile("chk-[0-9]+");
    private static final String METADATA = "_metadata";

    private BindingName() {
    }

    /** The binding name of {@code path} (a Flink path's string form, or a plain path); "" for none. */
    static String of(String path) {
        List<String> parts = components(path);
        if (parts.isEmpty()) {
            return "";
        }
        int n = parts.size();
        String name = parts.get(n - 1);
        if (name.equals(METADATA) && n >= 2) {
            name = parts.get(n - 2) + "/" + name;
            if (CHECKPOINT.matcher(parts.get(n - 2)).matches() && n >= 3) {
                name = parts.get(n - 3) + "/" + name;
            }
        }
        return name;
    }

    private static List<String> components(String path) {
        String s = path;
        java.util.regex.Matcher m = SCHEME.matcher(s);
        if (m.lookingAt()) {
            s = s.substring(m.end());
            if (s.startsWith("//")) {
                int slash = s.indexOf('/', 2);
                s = slash < 0 ? "" : s.substring(slash + 1);
            }
        }
        List<String> parts = new ArrayList<>();
        int start = 0;
        while (start <= s.length()) {
            int end = s.indexOf('/', start);
            if (end < 0) {
                end = s.length();
            }
            String c = s.substring(start, end);
            if (c.equals("..")) {
                if (!parts.isEmpty()) {
                    parts.remove(parts.size() - 1);
                }
            } else if (!c.isEmpty() && !c.equals(".")) {
                parts.add(c);
            }
            start = end + 1;
        }
        return parts;
    }
}

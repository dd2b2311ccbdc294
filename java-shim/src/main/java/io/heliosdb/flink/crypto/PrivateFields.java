package io.heliosdb.flink.crypto;

import java.lang.reflect.Field;
import java.lang.reflect.Method;

/**
 * Reads of the JDK's private fields the shim needs (a direct buffer's native address, a file
 * descriptor's number) without {@code --add-opens}: through {@code sun.misc.Unsafe} (module
 * jdk.unsupported, open to everyone) at the field's offset, as Netty does. Where that is unavailable
 * every read says so ({@code -1}), and the callers take their portable path.
 */
final class PrivateFields {

    private static final Object UNSAFE;
    private static final Method OFFSET;
    private static final Method GET_LONG;
    private static final Method GET_INT;

    static {
        Object unsafe = null;
        Method offset = null;
        Method getLong = null;
        Method getInt = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            offset = c.getMethod("objectFieldOffset", Field.class);
            getLong = c.getMethod("getLong", Object.class, long.class);
            getInt = c.getMethod("getInt", Object.class, long.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            unsafe = null;
        }
        UNSAFE = unsafe;
        OFFSET = offset;
        GET_LONG = getLong;
        GET_INT = getInt;
    }

    private PrivateFields() {
    }

    /** Where {@code owner}'s field {@code name} lies in its objects, or -1 when it cannot be read. */
    static long offset(Class<?> owner, String name) {
        if (UNSAFE == null) {
            return -1;
        }
        try {
            return (long) OFFSET.invoke(UNSAFE, owner.getDeclaredField(name));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return -1;
        }
    }

    /** The long at {@code offset} (from {@link #offset}) in {@code o}; -1 when it cannot be read. */
    static long getLong(Object o, long offset) {
        return read(GET_LONG, o, offset).longValue();
    }

    /** The int at {@code offset} (from {@link #offset}) in {@code o}; -1 when it cannot be read. */
    static int getInt(Object o, long offset) {
        return read(GET_INT, o, offset).intValue();
    }

    private static Number read(Method get, Object o, long offset) {
        try {
            return offset < 0 ? -1 : (Number) get.invoke(UNSAFE, o, offset);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return -1;
        }
    }
}

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * How JavaPeer writes bytes into one tab-separated field, and reads them back.
 *
 * <p>Keys, values and headers are arbitrary bytes that may be null, so a field is
 * percent-escaped: ASCII letters, digits and {@code - . _ : / ! * + @} stand for themselves,
 * every other byte is {@code %XX} (two upper-case hex digits), and a field of exactly
 * {@code ~} is null ({@code ~} itself is always escaped, so an empty field is the empty
 * byte string and never null). Tabs, newlines, commas and {@code =} are therefore always
 * escaped, which keeps header lists ({@code k=v,k=v}) and lines unambiguous.
 * tests/common/java.rs implements the same rules.
 */
final class Field {
    private Field() {}

    /** The marker of a null field. */
    static final String NULL = "~";

    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    static boolean isPlain(int b) {
        return (b >= 'a' && b <= 'z')
                || (b >= 'A' && b <= 'Z')
                || (b >= '0' && b <= '9')
                || "-._:/!*+@".indexOf(b) >= 0;
    }

    static String encode(byte[] bytes) {
        if (bytes == null) {
            return NULL;
        }
        StringBuilder out = new StringBuilder(bytes.length);
        for (byte raw : bytes) {
            int b = raw & 0xff;
            if (isPlain(b)) {
                out.append((char) b);
            } else {
                out.append('%').append(HEX[b >> 4]).append(HEX[b & 15]);
            }
        }
        return out.toString();
    }

    static String encode(String text) {
        return encode(text == null ? null : text.getBytes(StandardCharsets.UTF_8));
    }

    /** The bytes of a field; throws on a malformed escape so a bad test line fails loudly. */
    static byte[] decode(String field) {
        if (field.equals(NULL)) {
            return null;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(field.length());
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '%') {
                if (i + 3 > field.length()) {
                    throw new IllegalArgumentException("truncated escape in field `" + field + "`");
                }
                int hi = Character.digit(field.charAt(i + 1), 16);
                int lo = Character.digit(field.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw new IllegalArgumentException("bad escape in field `" + field + "`");
                }
                out.write(hi * 16 + lo);
                i += 2;
            } else if (isPlain(c)) {
                out.write(c);
            } else {
                throw new IllegalArgumentException(
                        "unescaped character `" + c + "` in field `" + field + "`");
            }
        }
        return out.toByteArray();
    }

    static String decodeString(String field) {
        byte[] bytes = decode(field);
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }
}

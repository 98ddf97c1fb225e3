package hodlflow.sqlauth;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The login check of {@code hodlflow serve-sql}: Spark's Thrift server
 * ({@code hive.server2.authentication=CUSTOM},
 * {@code hive.server2.custom.authentication.class=hodlflow.sqlauth.PasswordFileAuthenticator})
 * calls {@link #Authenticate} with the user name and password of every JDBC/ODBC connection.
 *
 * <p>The password file is named by the JVM system property {@value #FILE_PROPERTY}
 * ({@code --hiveconf} sets it: the Thrift server makes each {@code --hiveconf} key a system
 * property, while the configuration it hands this class is a fresh HiveConf that holds no
 * custom key). It is read on every login, so users added or removed by
 * {@code hodlflow serve-sql-user} count at once. One line per user, written by
 * {@code hodlflow serve-sql-user add} (lib/hodlflow/sqlauth.py):
 *
 * <pre>NAME:pbkdf2-sha256:ITERATIONS:SALT:HASH</pre>
 *
 * with SALT and HASH in standard base64 and HASH = PBKDF2-HMAC-SHA256(UTF-8 password, SALT,
 * ITERATIONS, 32 bytes). Blank lines and lines starting with '#' are ignored. A malformed line
 * refuses every login (the file is not what hodlflow wrote; better no access than a guess).
 *
 * <p>The password is never logged nor put in a message; the hash is compared in constant time;
 * an unknown user costs the same PBKDF2 work as a known one (no user-name probing by timing).
 */
public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
  public static final String FILE_PROPERTY = "hodlflow.serve.password_file";
  static final String SCHEME = "pbkdf2-sha256";
  static final int HASH_BYTES = 32;
  // Verified when the user is unknown, so that the answer takes as long as for a known user.
  private static final byte[] DUMMY_SALT = new byte[16];
  private static final int DUMMY_ITERATIONS = 600_000;

  private final String path;

  /** The password file named by the system property {@value #FILE_PROPERTY}. */
  public PasswordFileAuthenticator() {
    this(System.getProperty(FILE_PROPERTY));
  }

  PasswordFileAuthenticator(String path) {
    this.path = path;
  }

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    if (path == null || path.isEmpty()) {
      throw new AuthenticationException(
          "hodlflow: no password file: the system property " + FILE_PROPERTY + " is not set");
    }
    user = fromSaslBytes(user);
    password = fromSaslBytes(password);
    Entry entry = find(user);
    boolean ok;
    if (entry == null) {
      pbkdf2(password == null ? "" : password, DUMMY_SALT, DUMMY_ITERATIONS);
      ok = false;
    } else {
      byte[] got = pbkdf2(password == null ? "" : password, entry.salt, entry.iterations);
      ok = MessageDigest.isEqual(got, entry.hash) && password != null && !password.isEmpty();
    }
    if (!ok) {
      throw new AuthenticationException(
          "hodlflow: wrong user name or password (user '" + user + "', password file " + path
              + ")");
    }
  }

  private static final class Entry {
    final int iterations;
    final byte[] salt;
    final byte[] hash;

    Entry(int iterations, byte[] salt, byte[] hash) {
      this.iterations = iterations;
      this.salt = salt;
      this.hash = hash;
    }
  }

  /** The entry of {@code user}, or null; AuthenticationException when the file is unusable. */
  private Entry find(String user) throws AuthenticationException {
    List<String> lines;
    try {
      lines = Files.readAllLines(Paths.get(path), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new AuthenticationException(
          "hodlflow: cannot read the password file " + path + ": " + e);
    }
    Entry found = null;
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] parts = line.split(":", -1);
      Entry entry = parse(parts);
      if (entry == null) {
        throw new AuthenticationException(
            "hodlflow: the password file " + path + " line " + (i + 1) + " is not "
                + "NAME:" + SCHEME + ":ITERATIONS:SALT:HASH (write it with `hodlflow "
                + "serve-sql-user add`)");
      }
      if (parts[0].equals(user)) {
        found = entry;
      }
    }
    return found;
  }

  private static Entry parse(String[] parts) {
    if (parts.length != 5 || parts[0].isEmpty() || !parts[1].equals(SCHEME)) {
      return null;
    }
    try {
      int iterations = Integer.parseInt(parts[2]);
      byte[] salt = Base64.getDecoder().decode(parts[3]);
      byte[] hash = Base64.getDecoder().decode(parts[4]);
      if (iterations < 1 || salt.length == 0 || hash.length != HASH_BYTES) {
        return null;
      }
      return new Entry(iterations, salt, hash);
    } catch (IllegalArgumentException e) { // NumberFormatException too
      return null;
    }
  }

  /**
   * The text a client sent. The Thrift server's PLAIN SASL server (PlainSaslServer) turns each
   * byte of the login message into one char as {@code (char) b} of a signed byte: 0x00-0x7F
   * stay, 0x80-0xFF become U+FF80-U+FFFF. Clients send UTF-8 (RFC 4616; the JDBC driver's PLAIN
   * client does). Undo that, so that a password such as "Pässwort" matches the hash of its
   * UTF-8 bytes (seen refused before). Chars U+0080-U+00FF are taken as ISO-8859-1 bytes (a
   * server that decodes unsigned bytes); a string that is no such decoding, or whose bytes are
   * not UTF-8, is kept as it is.
   */
  static String fromSaslBytes(String s) {
    if (s == null) {
      return null;
    }
    byte[] bytes = new byte[s.length()];
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c <= 0xFF || c >= 0xFF80) {
        bytes[i] = (byte) c;
      } else {
        return s;
      }
    }
    try {
      return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      return s;
    }
  }

  /** The chars PlainSaslServer makes of the bytes {@code b} (one signed byte each). */
  static String asSaslServerDecodes(byte[] b) {
    StringBuilder sb = new StringBuilder();
    for (byte x : b) {
      sb.append((char) x);
    }
    return sb.toString();
  }

  /** PBKDF2-HMAC-SHA256 of the password's UTF-8 bytes (how the JDK encodes PBEKeySpec's chars). */
  static byte[] pbkdf2(String password, byte[] salt, int iterations) {
    PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, HASH_BYTES * 8);
    try {
      return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec)
          .getEncoded();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("PBKDF2WithHmacSHA256 is not available", e);
    } finally {
      spec.clearPassword();
    }
  }

  /**
   * {@code java -cp JAR:THRIFTSERVER_JAR hodlflow.sqlauth.PasswordFileAuthenticator FILE USER}
   * with the password on standard input (one line, UTF-8): exit 0 and "accepted" when this
   * class lets USER in, 1 and the refusal otherwise. For checking a password file by hand and
   * for tests. The line's bytes become chars as the Thrift server makes them of a login.
   */
  public static void main(String[] args) throws IOException {
    if (args.length != 2) {
      System.err.println("usage: PasswordFileAuthenticator PASSWORD_FILE USER < password");
      System.exit(2);
    }
    byte[] input = System.in.readAllBytes();
    int end = 0;
    while (end < input.length && input[end] != '\n') {
      end++;
    }
    String password = asSaslServerDecodes(Arrays.copyOf(input, end));
    try {
      new PasswordFileAuthenticator(args[0]).Authenticate(args[1], password);
      System.out.println("accepted");
    } catch (AuthenticationException e) {
      System.out.println("refused: " + e.getMessage());
      System.exit(1);
    }
  }
}

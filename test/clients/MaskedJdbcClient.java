// Reads every customers column through pgJDBC (server-side named statements, binary transfer),
// for the masking driver test: masked values must decode like any other value.
// Usage: java -cp <classes>:/usr/share/java/postgresql.jar MaskedJdbcClient <jdbc-url> <user> <password>
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.util.Properties;

public final class MaskedJdbcClient {
  private MaskedJdbcClient() {}

  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", args[1]);
    p.setProperty("password", args[2]);
    try (Connection conn = DriverManager.getConnection(args[0], p)) {
      for (int round = 1; round <= 3; round++) {
        try (PreparedStatement ps = conn.prepareStatement("SELECT id, full_name, email, ssn, card_number, salary, birth_date, external_id FROM customers WHERE id <= ? ORDER BY id")) {
          ps.setInt(1, 3);
          try (ResultSet rs = ps.executeQuery()) {
            ResultSetMetaData md = rs.getMetaData();
            while (rs.next()) {
              StringBuilder line = new StringBuilder("round ").append(round).append(':');
              for (int i = 1; i <= md.getColumnCount(); i++) line.append(" | ").append(rs.getString(i));
              System.out.println(line);
            }
          }
        }
      }
    }
  }
}

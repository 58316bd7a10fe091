// pgJDBC scenarios for warden's relay tests (test/integration/pg-jdbc.test.ts).
//
// Usage: java -cp <classes>:/usr/share/java/postgresql.jar PgJdbcClient <jdbc-url> <user> <password>
// Runs the same scenarios against whatever URL it is given (direct or through warden) and prints
// plain text lines, so the test can compare the two runs exactly. The URL carries
// prepareThreshold=1&binaryTransfer=true, so statements are named server-side from the first
// execution and results come back in binary for the types pgJDBC reads that way.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class PgJdbcClient {
  private PgJdbcClient() {}

  /** getString, except bytea: with binaryTransfer pgJDBC's getString gives "[B@…" for it, so print the bytes. */
  private static String cell(ResultSet rs, ResultSetMetaData md, int i) throws SQLException {
    if (!"bytea".equals(md.getColumnTypeName(i))) return rs.getString(i);
    byte[] b = rs.getBytes(i);
    if (b == null) return null;
    StringBuilder hex = new StringBuilder("\\x");
    for (byte x : b) hex.append(String.format("%02x", x));
    return hex.toString();
  }

  private static void printRows(String label, ResultSet rs) throws SQLException {
    ResultSetMetaData md = rs.getMetaData();
    int n = md.getColumnCount();
    StringBuilder head = new StringBuilder(label).append(" columns:");
    for (int i = 1; i <= n; i++) head.append(' ').append(md.getColumnName(i)).append('/').append(md.getColumnTypeName(i));
    System.out.println(head);
    int count = 0;
    while (rs.next()) {
      StringBuilder line = new StringBuilder(label).append(" row:");
      for (int i = 1; i <= n; i++) line.append(" | ").append(cell(rs, md, i));
      System.out.println(line);
      count++;
    }
    System.out.println(label + " count: " + count);
  }

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      // 1. A PreparedStatement executed several times: Parse S_n once, then Bind/Execute with
      //    binary parameters and mixed binary/text result formats.
      try (PreparedStatement ps = conn.prepareStatement(
          "SELECT id, full_name, ssn, card_number, salary, birth_date, created_at, last_login, is_active, avatar, external_id, score, rank, big"
              + " FROM customers WHERE id <= ? AND full_name <> ? ORDER BY id")) {
        for (int limit : new int[] {2, 3, 16}) {
          ps.setInt(1, limit);
          ps.setString(2, "nobody");
          try (ResultSet rs = ps.executeQuery()) {
            printRows("prepared(" + limit + ")", rs);
          }
        }
      }
      try (PreparedStatement ps = conn.prepareStatement("SELECT ?::numeric * 2 AS d, ?::bigint + 1 AS b, ?::date AS dt, ?::text IS NULL AS n")) {
        ps.setBigDecimal(1, new java.math.BigDecimal("1000.51"));
        ps.setLong(2, 9007199254740992L);
        ps.setDate(3, java.sql.Date.valueOf("1999-12-31"));
        ps.setNull(4, java.sql.Types.VARCHAR);
        try (ResultSet rs = ps.executeQuery()) {
          printRows("typed-params", rs);
        }
      }

      // Named server-side statements exist (prepareThreshold=1): pgJDBC calls them S_1, S_2, …
      try (Statement st = conn.createStatement();
          ResultSet rs = st.executeQuery("SELECT name, from_sql FROM pg_prepared_statements WHERE name LIKE 'S\\_%' ORDER BY name")) {
        printRows("server-prepared", rs);
      }

      // 2. executeBatch inside a transaction, rolled back.
      conn.setAutoCommit(false);
      try (PreparedStatement ps = conn.prepareStatement(
          "INSERT INTO customers (full_name, email, ssn, card_number, salary) VALUES (?, ?, ?, ?, ?)")) {
        for (int i = 1; i <= 3; i++) {
          ps.setString(1, "JDBC Batch " + i);
          ps.setString(2, "jdbc.batch" + i + "@example.com");
          ps.setString(3, "900-77-000" + i);
          ps.setString(4, "4111111111111111");
          ps.setBigDecimal(5, new java.math.BigDecimal("1000.5" + i));
          ps.addBatch();
        }
        int[] counts = ps.executeBatch();
        System.out.println("batch counts: " + java.util.Arrays.toString(counts));
      }
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM customers WHERE email LIKE 'jdbc.batch%'")) {
        printRows("in-tx", rs);
      }
      conn.rollback();
      conn.setAutoCommit(true);
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM customers")) {
        printRows("after-rollback", rs);
      }

      // 3. An error with SQLState, and the connection goes on.
      try (Statement st = conn.createStatement()) {
        st.executeUpdate("INSERT INTO customers (full_name, email) VALUES ('Dup', 'alice.testperson1@example.com')");
        System.out.println("error: none");
      } catch (SQLException e) {
        System.out.println("error: " + e.getSQLState() + " " + e.getMessage().replace('\n', ' '));
      }

      // 4. DatabaseMetaData as DBeaver asks for it.
      DatabaseMetaData md = conn.getMetaData();
      System.out.println("product: " + md.getDatabaseProductName() + " " + md.getDatabaseMajorVersion());
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"})) {
        while (rs.next()) System.out.println("table: " + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
      }
      try (ResultSet rs = md.getColumns(null, "public", "customers", "%")) {
        while (rs.next()) {
          System.out.println("column: " + rs.getInt("ORDINAL_POSITION") + " " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME")
              + " size=" + rs.getInt("COLUMN_SIZE") + " digits=" + rs.getInt("DECIMAL_DIGITS") + " nullable=" + rs.getInt("NULLABLE")
              + " default=" + rs.getString("COLUMN_DEF") + " autoinc=" + rs.getString("IS_AUTOINCREMENT"));
        }
      }
      try (ResultSet rs = md.getPrimaryKeys(null, "public", "customers")) {
        while (rs.next()) System.out.println("pk: " + rs.getString("COLUMN_NAME") + " " + rs.getString("PK_NAME"));
      }
      try (ResultSet rs = md.getIndexInfo(null, "public", "customers", false, false)) {
        while (rs.next()) System.out.println("index: " + rs.getString("INDEX_NAME") + " " + rs.getString("COLUMN_NAME") + " unique=" + !rs.getBoolean("NON_UNIQUE"));
      }

      // 5. Every customers column as a string.
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT * FROM customers ORDER BY id")) {
        printRows("all", rs);
      }
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SHOW application_name")) {
        printRows("app", rs);
      }
    }
  }
}

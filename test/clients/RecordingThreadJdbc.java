// pgJDBC scenario for the recording thread (test/integration/recording-thread-clients.test.ts).
//
// Usage: java -cp <classes>:/usr/share/java/postgresql.jar RecordingThreadJdbc <jdbc-url> <user> <password>
// Prints plain text lines. The URL sets prepareThreshold and binaryTransfer: a statement executed
// past the threshold becomes a named server-side statement; a fetch size runs a portal in steps
// (Execute with a row limit, PortalSuspended).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class RecordingThreadJdbc {
  private RecordingThreadJdbc() {}

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      try (PreparedStatement ps = conn.prepareStatement("SELECT id, full_name, salary FROM customers WHERE id = ?")) {
        for (int i = 1; i <= 6; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) System.out.println("prepared " + rs.getInt(1) + " " + rs.getString(2) + " " + rs.getBigDecimal(3));
          }
        }
      }
      try (Statement st = conn.createStatement()) {
        st.execute("CREATE TEMP TABLE jt (id int, name text, at timestamptz)");
      }
      try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jt VALUES (?, ?, now())")) {
        for (int i = 0; i < 40; i++) {
          ps.setInt(1, i);
          ps.setString(2, "name " + i);
          ps.addBatch();
        }
        System.out.println("batch " + ps.executeBatch().length);
      }
      conn.setAutoCommit(false);
      try (PreparedStatement ps = conn.prepareStatement("SELECT n, md5(n::text) FROM generate_series(1, 1000) AS n")) {
        ps.setFetchSize(64);
        long sum = 0;
        int rows = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            sum += rs.getLong(1);
            rows++;
          }
        }
        System.out.println("fetched " + rows + " " + sum);
      }
      try (Statement st = conn.createStatement()) {
        st.executeQuery("SELECT 1/0");
      } catch (SQLException e) {
        System.out.println("error " + e.getSQLState());
      }
      conn.rollback();
      try {
        org.postgresql.largeobject.LargeObjectManager lom = conn.unwrap(org.postgresql.PGConnection.class).getLargeObjectAPI();
        long oid = lom.createLO();
        System.out.println("large object " + (oid != 0));
      } catch (SQLException e) {
        System.out.println("large object " + e.getSQLState() + " " + e.getMessage());
      }
      conn.rollback();
      conn.setAutoCommit(true);
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*), sum(id) FROM jt")) {
        while (rs.next()) System.out.println("count " + rs.getLong(1) + " " + rs.getLong(2));
      }
    }
  }
}

// pgJDBC against statements warden holds for approval (test/integration/pg-approvals-clients.test.ts).
//
// Usage: java -cp <classes>:/usr/share/java/postgresql.jar HeldJdbcClient <jdbc-url> <user> <password> <table>
// The URL carries prepareThreshold=1, so the INSERT is a named server-side statement (S_n) from its
// first execution and later executions send only Bind/Execute. Every INSERT into <table> is held
// by warden's rules; the test decides each request through the admin API while this program
// waits: a request whose parameters hold a note starting with "ok-" is approved, "no-" is denied.
// Each step prints one line, "<step>: ok <result>" or "<step>: error <SQLState> <message>", so
// the test can assert exactly what the driver reported.
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Arrays;
import java.util.Properties;

public final class HeldJdbcClient {
  private HeldJdbcClient() {}

  private interface Step {
    String run() throws SQLException;
  }

  private static String oneLine(String s) {
    return s == null ? "" : s.replace('\n', ' ');
  }

  private static void step(String label, Step step) {
    try {
      System.out.println(label + ": ok " + step.run());
    } catch (BatchUpdateException e) {
      SQLException next = e.getNextException();
      System.out.println(label + ": error " + e.getSQLState() + " " + oneLine(e.getMessage())
          + (next != null ? " | next " + next.getSQLState() + " " + oneLine(next.getMessage()) : "")
          + " | counts " + Arrays.toString(e.getUpdateCounts()));
    } catch (SQLException e) {
      System.out.println(label + ": error " + e.getSQLState() + " " + oneLine(e.getMessage()));
    }
    System.out.flush();
  }

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    String table = args[3];
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table + " (id, note) VALUES (?, ?)")) {
        // 1. Held, approved: the first execution (Parse S_1, Bind, Describe, Execute, Sync).
        step("prepared-approved", () -> {
          ps.setInt(1, 1);
          ps.setString(2, "ok-prepared");
          return "count " + ps.executeUpdate();
        });
        // 2. Held again (no grant), denied: the named statement re-executed (Bind/Execute only).
        step("prepared-denied", () -> {
          ps.setInt(1, 2);
          ps.setString(2, "no-prepared");
          return "count " + ps.executeUpdate();
        });
        // 3. executeBatch, approved: one request for the batch's first Execute; the approval
        //    covers the statement's further Executes up to the batch's Sync.
        step("batch-approved", () -> {
          for (int id = 10; id <= 12; id++) {
            ps.setInt(1, id);
            ps.setString(2, "ok-batch-" + id);
            ps.addBatch();
          }
          return "counts " + Arrays.toString(ps.executeBatch());
        });
        // 4. executeBatch, denied: nothing of the batch runs.
        step("batch-denied", () -> {
          for (int id = 20; id <= 22; id++) {
            ps.setInt(1, id);
            ps.setString(2, "no-batch-" + id);
            ps.addBatch();
          }
          return "counts " + Arrays.toString(ps.executeBatch());
        });
      }
      // 5. The session goes on: the named statements pgJDBC created, and what the table holds.
      step("server-prepared", () -> {
        try (Statement st = conn.createStatement();
            ResultSet rs = st.executeQuery("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'S\\_%' AND statement LIKE 'INSERT INTO %'")) {
          rs.next();
          return "insert statements " + rs.getInt(1);
        }
      });
      step("rows", () -> {
        StringBuilder out = new StringBuilder();
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT id, note FROM " + table + " ORDER BY id")) {
          while (rs.next()) out.append(out.length() > 0 ? ", " : "").append(rs.getInt(1)).append('=').append(rs.getString(2));
        }
        return out.toString();
      });
    }
  }
}

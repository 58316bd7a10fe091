// jTDS 1.3.1 (TDS 7.1) against the SQL Server stand-in, directly or through warden: the shared
// TDS scenario, one JSON line per step on stdout, for test/integration/standin-clients.test.ts
// to compare with what node-postgres reads from the same PostgreSQL rows.
//
//   java -cp /usr/share/java/jtds.jar:<classes> JtdsClient <host> <port> <user> <password> <ssl>
//
// <ssl> is jTDS's ssl property: off, request, require.
// Values are printed as jTDS returns them: getString() for text and numbers, hex for binary,
// true/false for bit, null for NULL.

import java.math.BigDecimal;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.sql.Types;

public class JtdsClient {
  public static void main(String[] args) throws Exception {
    Class.forName("net.sourceforge.jtds.jdbc.Driver");
    String url = "jdbc:jtds:sqlserver://" + args[0] + ":" + args[1] + "/" + (args.length > 5 ? args[5] : "shop") + ";ssl=" + args[4]
        + ";prepareSQL=3;socketTimeout=60;loginTimeout=20";
    try (Connection c = DriverManager.getConnection(url, args[2], args[3])) {
      Statement st = c.createStatement();

      emit("select_all", "\"rows\":" + rows(st.executeQuery("SELECT * FROM customers ORDER BY id")));

      StringBuilder sets = new StringBuilder("[");
      boolean isResult = st.execute(
          "SELECT id, full_name, email FROM customers WHERE id <= 3 ORDER BY id; "
              + "SELECT COUNT(*) AS n, SUM(salary) AS total_salary, MAX(balance) AS max_balance FROM customers");
      int n = 0;
      while (true) {
        if (isResult) {
          if (n++ > 0) sets.append(',');
          sets.append(rows(st.getResultSet()));
        } else if (st.getUpdateCount() == -1) {
          break;
        }
        isResult = st.getMoreResults();
      }
      emit("two_results", "\"sets\":" + sets.append(']'));

      emit("divide_by_zero", error(st, "SELECT 1/0 AS boom"));
      emit("invalid_object", error(st, "SELECT * FROM no_such_table"));

      st.execute("PRINT 'hello from print'");
      SQLWarning w = st.getWarnings();
      emit("print", "\"message\":" + str(w == null ? null : w.getMessage()));
      st.clearWarnings();

      c.setAutoCommit(false);
      int inserted = st.executeUpdate(
          "INSERT INTO customers (full_name, email) VALUES (N'Rolled Back', 'rolled-back-jtds@example.com')");
      c.rollback();
      c.setAutoCommit(true);
      ResultSet after = st.executeQuery(
          "SELECT COUNT(*) AS n FROM customers WHERE email = 'rolled-back-jtds@example.com'");
      after.next();
      emit("rollback", "\"inserted\":" + inserted + ",\"after\":" + after.getInt(1));

      CallableStatement exec = c.prepareCall("{call sp_executesql(?, ?, ?, ?, ?)}");
      exec.setString(1, "SET @cnt = (SELECT COUNT(*) FROM customers WHERE salary > @min); "
          + "SET @label = N'over ' + CAST(@min AS nvarchar(20))");
      exec.setString(2, "@min decimal(12, 2), @cnt int OUTPUT, @label nvarchar(4000) OUTPUT");
      exec.setBigDecimal(3, new BigDecimal("100000.50"));
      exec.registerOutParameter(4, Types.INTEGER);
      exec.registerOutParameter(5, Types.VARCHAR);
      exec.execute();
      emit("executesql_output", "\"cnt\":" + exec.getInt(4) + ",\"label\":" + str(exec.getString(5)));

      CallableStatement query = c.prepareCall("{call sp_executesql(?, ?, ?, ?)}");
      query.setString(1, "SELECT id, full_name, ssn, salary FROM customers WHERE id = @id OR full_name = @name ORDER BY id");
      query.setString(2, "@id int, @name nvarchar(40)");
      query.setInt(3, 2);
      query.setString(4, "Hana 花子 Dummy");
      emit("executesql_rows", "\"rows\":" + rows(query.executeQuery()));

      CallableStatement proc = c.prepareCall("{? = call dbo.count_active(?, ?)}");
      proc.registerOutParameter(1, Types.INTEGER);
      proc.setShort(2, (short) 1000);
      proc.registerOutParameter(3, Types.INTEGER);
      proc.execute();
      emit("procedure", "\"status\":" + proc.getInt(1) + ",\"cnt\":" + proc.getInt(3));

      PreparedStatement ps = c.prepareStatement("SELECT id, full_name, email FROM customers WHERE id <= ? ORDER BY id");
      ps.setInt(1, 3);
      String first = rows(ps.executeQuery());
      ps.setInt(1, 1);
      emit("prepared", "\"first\":" + first + ",\"second\":" + rows(ps.executeQuery()));
      ps.close();

      emit("large", "\"rows\":" + rows(st.executeQuery(
          "SELECT REPLICATE(CAST(N'ab' AS nvarchar(max)), 50000) AS long_text, notes FROM customers WHERE id = 2")));

      final Statement slow = c.createStatement();
      Thread canceller = new Thread(() -> {
        try {
          Thread.sleep(700);
          slow.cancel();
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      });
      canceller.start();
      long t0 = System.nanoTime();
      String outcome;
      try {
        slow.executeQuery("SELECT 1 AS slept FROM (SELECT pg_sleep(30) AS x) s");
        outcome = "\"cancelled\":false";
      } catch (SQLException e) {
        outcome = "\"cancelled\":true,\"sqlstate\":" + str(e.getSQLState());
      }
      canceller.join();
      long ms = (System.nanoTime() - t0) / 1_000_000;
      ResultSet again = st.executeQuery("SELECT 1 AS after_cancel");
      again.next();
      emit("cancel", outcome + ",\"ms\":" + ms + ",\"after\":" + again.getInt(1));
    }
  }

  static String error(Statement st, String sql) {
    try {
      st.executeQuery(sql);
      return "\"code\":null";
    } catch (SQLException e) {
      return "\"code\":" + e.getErrorCode() + ",\"message\":" + str(e.getMessage());
    }
  }

  static String rows(ResultSet rs) throws SQLException {
    ResultSetMetaData md = rs.getMetaData();
    StringBuilder sb = new StringBuilder("{\"columns\":[");
    for (int i = 1; i <= md.getColumnCount(); i++) {
      if (i > 1) sb.append(',');
      sb.append(str(md.getColumnName(i)));
    }
    sb.append("],\"rows\":[");
    int r = 0;
    while (rs.next()) {
      if (r++ > 0) sb.append(',');
      sb.append('[');
      for (int i = 1; i <= md.getColumnCount(); i++) {
        if (i > 1) sb.append(',');
        sb.append(value(rs, i, md.getColumnType(i)));
      }
      sb.append(']');
    }
    return sb.append("]}").toString();
  }

  static String value(ResultSet rs, int i, int type) throws SQLException {
    switch (type) {
      case Types.BIT:
      case Types.BOOLEAN: {
        boolean b = rs.getBoolean(i);
        return rs.wasNull() ? "null" : Boolean.toString(b);
      }
      case Types.BINARY:
      case Types.VARBINARY:
      case Types.LONGVARBINARY:
      case Types.BLOB: {
        byte[] bytes = rs.getBytes(i);
        if (bytes == null) return "null";
        StringBuilder hex = new StringBuilder();
        for (byte x : bytes) hex.append(String.format("%02x", x));
        return str(hex.toString());
      }
      default:
        return str(rs.getString(i));
    }
  }

  static void emit(String step, String body) {
    System.out.println("{\"step\":" + str(step) + "," + body + "}");
    System.out.flush();
  }

  static String str(String s) {
    if (s == null) return "null";
    StringBuilder sb = new StringBuilder("\"");
    for (int k = 0; k < s.length(); k++) {
      char ch = s.charAt(k);
      switch (ch) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        case '\r': sb.append("\\r"); break;
        case '\t': sb.append("\\t"); break;
        default:
          if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
          else sb.append(ch);
      }
    }
    return sb.append('"').toString();
  }
}

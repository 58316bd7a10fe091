// jTDS 1.3.1 (TDS 7.1) sending one statement that warden holds for approval: the statement
// blocks until an approver decides; then its rows (or its error) and the warnings it got (warden's
// INFO) are printed as one JSON line, for test/integration/tds-approvals.test.ts.
//
//   java -cp /usr/share/java/jtds.jar:<classes> JtdsHeld <host> <port> <user> <password> <sql>

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;

public class JtdsHeld {
  public static void main(String[] args) throws Exception {
    Class.forName("net.sourceforge.jtds.jdbc.Driver");
    String url = "jdbc:jtds:sqlserver://" + args[0] + ":" + args[1] + "/shop;ssl=require;socketTimeout=60;loginTimeout=20";
    try (Connection c = DriverManager.getConnection(url, args[2], args[3])) {
      Statement st = c.createStatement();
      StringBuilder out = new StringBuilder("{");
      try {
        ResultSet rs = st.executeQuery(args[4]);
        int cols = rs.getMetaData().getColumnCount();
        out.append("\"rows\":[");
        int n = 0;
        while (rs.next()) {
          if (n++ > 0) out.append(',');
          out.append('[');
          for (int i = 1; i <= cols; i++) {
            if (i > 1) out.append(',');
            out.append(str(rs.getString(i)));
          }
          out.append(']');
        }
        out.append("],");
      } catch (SQLException e) {
        out.append("\"error\":{\"number\":").append(e.getErrorCode()).append(",\"message\":").append(str(e.getMessage())).append("},");
      }
      out.append("\"warnings\":[");
      int n = 0;
      for (SQLWarning w = st.getWarnings(); w != null; w = w.getNextWarning()) {
        if (n++ > 0) out.append(',');
        out.append(str(w.getErrorCode() + " " + w.getMessage()));
      }
      out.append("],");
      ResultSet after = st.executeQuery("SELECT 42");
      after.next();
      out.append("\"after\":").append(after.getInt(1)).append('}');
      System.out.println(out);
    }
  }

  private static String str(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }
}

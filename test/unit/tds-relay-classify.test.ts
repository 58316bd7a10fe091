// The T-SQL classifier: statement splitting without semicolons, kinds, tables and their access,
// the flags policy reads, dynamic SQL, what it refuses to understand, and that warden's own
// statement rules evaluate its output as they do PostgreSQL's.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Classification, StatementInfo } from '../../src/sql/types.js';
import { classifyProcedure, classifyTsql } from '../../src/tds/classify.js';
import { createStatementPolicy } from '../../src/policy/statement-rules.js';
import type { Principal } from '../../src/identity/types.js';

function ok(sql: string): readonly StatementInfo[] {
  const c = classifyTsql(sql);
  if (!c.ok) throw new Error(`not understood: ${c.error}`);
  return c.statements;
}

const kinds = (sql: string): string[] => ok(sql).map((s) => s.kind);
const rels = (s: StatementInfo): string[] => s.relations.map((r) => `${[r.catalog, r.schema, r.name].filter((p) => p !== undefined).join('.')}:${r.access}`).sort();

describe('splitting a batch into statements', () => {
  it('needs no semicolons', () => {
    expect(kinds('SELECT 1 UPDATE t SET a = 1 DELETE FROM u')).toEqual(['select', 'update', 'delete']);
    expect(kinds('SET NOCOUNT ON SELECT * FROM t')).toEqual(['set', 'select']);
    expect(kinds('SET NOCOUNT ON; SELECT 1;;')).toEqual(['set', 'select']);
    expect(kinds('BEGIN TRAN; UPDATE t SET a = 1 WHERE id = 2; COMMIT')).toEqual(['transaction', 'update', 'transaction']);
  });

  it('keeps clauses that start with statement keywords inside their statement', () => {
    expect(kinds('INSERT INTO t (a) SELECT a FROM u')).toEqual(['insert']);
    expect(kinds('SELECT a FROM t UNION ALL SELECT b FROM u')).toEqual(['select']);
    expect(kinds("SELECT CASE WHEN a = 1 THEN 'x' ELSE 'y' END AS c FROM t")).toEqual(['select']);
    expect(kinds('SELECT a FROM t ORDER BY a OFFSET 10 ROWS FETCH NEXT 5 ROWS ONLY')).toEqual(['select']);
    expect(kinds('SELECT * FROM t WITH (NOLOCK) OPTION (RECOMPILE)')).toEqual(['select']);
    expect(kinds('MERGE t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id);')).toEqual(['merge']);
    expect(kinds('ALTER TABLE t DROP CONSTRAINT c')).toEqual(['alter']);
    expect(kinds('CREATE TABLE t (id int REFERENCES u ON DELETE CASCADE) GRANT SELECT ON t TO r')).toEqual(['create', 'grant']);
    expect(kinds('DROP TABLE IF EXISTS dbo.t')).toEqual(['drop']);
    expect(kinds('DECLARE c CURSOR FOR SELECT a FROM t FOR UPDATE OF a')).toEqual(['declare_cursor']);
    expect(kinds("RAISERROR('x', 16, 1) WITH NOWAIT")).toEqual(['other']);
  });

  it('does not let one statement swallow the next', () => {
    expect(kinds('ALTER TABLE t DROP CONSTRAINT c DROP TABLE x')).toEqual(['alter', 'drop']);
    expect(kinds("INSERT INTO t VALUES (1) EXEC xp_cmdshell 'dir'")).toEqual(['insert', 'call']);
    expect(kinds('GRANT SELECT ON t TO r DELETE FROM t')).toEqual(['grant', 'delete']);
    expect(kinds("UPDATE t SET a = 1 WHERE id = 1 SET @x = 2")).toEqual(['update', 'set']);
    expect(kinds("IF EXISTS (SELECT 1 FROM t) DELETE FROM t WHERE a = 1 ELSE PRINT 'none'")).toEqual(['other', 'delete', 'other', 'other']);
  });

  it('runs a CREATE PROCEDURE body to the end of the batch, as SQL Server does', () => {
    const [st, ...rest] = ok("CREATE PROCEDURE dbo.p AS BEGIN EXEC xp_cmdshell 'x' SELECT * FROM t END");
    expect(rest).toEqual([]);
    expect(st!.kind).toBe('create');
    expect(st!.commandTag).toBe('CREATE PROCEDURE');
    expect(st!.ddl).toEqual({ objectType: 'procedure', objects: ['dbo.p'] });
    expect(st!.dangerousFunctions).toContain('xp_cmdshell');
  });

  it('does not see keywords inside strings, comments and bracketed names', () => {
    const [st, ...rest] = ok("SELECT 'DELETE FROM t' AS [update], N'x''y' -- DROP TABLE x\n /* UPDATE u /* nested */ SET a = 1 */ FROM [select]");
    expect(rest).toEqual([]);
    expect(st!.readOnly).toBe(true);
    expect(rels(st!)).toEqual(['select:read']);
  });
});

describe('what each statement touches', () => {
  it('names tables with their access', () => {
    const [sel] = ok('SELECT c.id, o.total FROM dbo.customers AS c JOIN sales.orders o ON o.cid = c.id, shop..audit a');
    expect(rels(sel!)).toEqual(['dbo.customers:read', 'sales.orders:read', 'shop..audit:read'].map((x) => x.replace('..', '.')).sort());
    expect(rels(ok('INSERT INTO t (a) SELECT a FROM u')[0]!)).toEqual(['t:insert', 'u:read']);
    expect(rels(ok('UPDATE TOP (5) dbo.t SET a = 1 WHERE id = 3')[0]!)).toEqual(['dbo.t:update']);
    expect(rels(ok('DELETE c FROM customers c JOIN orders o ON o.cid = c.id WHERE o.total > 5')[0]!)).toEqual(
      ['c:delete', 'customers:delete', 'customers:read', 'orders:delete', 'orders:read'],
    );
    expect(rels(ok('TRUNCATE TABLE dbo.t')[0]!)).toEqual(['dbo.t:truncate']);
    expect(rels(ok("UPDATETEXT dbo.customers.notes @p 0 NULL 'x'")[0]!)).toEqual(['dbo.customers:update']);
    expect(rels(ok('READTEXT customers.notes @p 0 10')[0]!)).toEqual(['customers:read']);
    // a table's triggers (an audit trigger, say) switched off: DDL on that table
    expect(rels(ok('DISABLE TRIGGER audit_trg, other_trg ON dbo.customers')[0]!)).toEqual(['dbo.customers:ddl']);
    expect(rels(ok('ENABLE TRIGGER ALL ON customers')[0]!)).toEqual(['customers:ddl']);
    expect(rels(ok('DISABLE TRIGGER ALL ON DATABASE')[0]!)).toEqual([]);
    expect(rels(ok('INSERT BULK customers (id int) WITH (TABLOCK)')[0]!)).toEqual(['customers:insert']);
    // RECEIVE takes its messages off the queue
    expect(rels(ok('RECEIVE TOP (1) * FROM dbo.requests_q')[0]!)).toEqual(['dbo.requests_q:delete', 'dbo.requests_q:read']);
    expect(rels(ok('WAITFOR (RECEIVE TOP (1) * FROM dbo.requests_q), TIMEOUT 1000')[0]!)).toEqual(['dbo.requests_q:delete', 'dbo.requests_q:read']);
    expect(rels(ok('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE;')[0]!)).toEqual(['s:read', 't:delete']);
  });

  it('reads through CTEs and subqueries, and a DML on a CTE reaches the tables behind it', () => {
    const [del] = ok('WITH c AS (SELECT * FROM customers WHERE a = 1) DELETE FROM c');
    expect(del!.kind).toBe('delete');
    expect(rels(del!)).toEqual(['customers:delete', 'customers:read']);
    expect(rels(ok('SELECT * FROM (SELECT a FROM t) x WHERE EXISTS (SELECT 1 FROM u)')[0]!)).toEqual(['t:read', 'u:read']);
  });

  it('reads table hints, with or without WITH, and counts locking ones as FOR UPDATE', () => {
    // Without WITH (deprecated, still run by SQL Server) the hint is no function call: the table is read.
    expect(rels(ok('SELECT * FROM customers (NOLOCK)')[0]!)).toEqual(['customers:read']);
    expect(ok('SELECT * FROM customers (NOLOCK)')[0]!.readOnly).toBe(true);
    for (const sql of ['SELECT * FROM customers WITH (UPDLOCK, ROWLOCK) WHERE id = 1', 'SELECT * FROM customers (TABLOCKX)', 'SELECT c.id FROM orders o JOIN customers c WITH (XLOCK, HOLDLOCK) ON c.id = o.cid']) {
      const [st] = ok(sql);
      expect(st!.readOnly).toBe(false);
      expect(rels(st!)).toContain('customers:lock');
    }
    expect(ok('SELECT * FROM customers OPTION (TABLE HINT(customers, XLOCK))')[0]!.readOnly).toBe(false);
    expect(rels(ok('SELECT * FROM dbo.fn(1) f')[0]!)).toEqual([]);
    expect(rels(ok('SELECT * FROM customers c (XLOCK)')[0]!)).toEqual(['customers:lock', 'customers:read']);
  });

  it('names the first table of a parenthesised join', () => {
    expect(rels(ok('SELECT * FROM (customers c JOIN orders o ON o.cid = c.id)')[0]!)).toEqual(['customers:read', 'orders:read']);
    expect(rels(ok('SELECT * FROM ((customers))')[0]!)).toEqual(['customers:read']);
    expect(rels(ok('DELETE c FROM (customers c JOIN orders o ON o.cid = c.id) WHERE o.id = 1')[0]!)).toContain('customers:delete');
    expect(rels(ok('SELECT * FROM (VALUES (1)) v(a)')[0]!)).toEqual([]);
  });

  it('treats SELECT INTO as creating a table', () => {
    const [st] = ok('SELECT name INTO #t FROM customers');
    expect(st!.kind).toBe('create');
    expect(st!.readOnly).toBe(false);
    expect(rels(st!)).toEqual(['#t:insert', 'customers:read']);
  });

  it('flags UPDATE and DELETE without a WHERE that reads a column', () => {
    expect(ok('DELETE FROM t')[0]!.flags.noWhere).toBe(true);
    expect(ok('DELETE FROM t WHERE 1 = 1')[0]!.flags.noWhere).toBe(true);
    expect(ok('UPDATE t SET a = 1 WHERE id = @id')[0]!.flags.noWhere).toBe(false);
    expect(ok('DELETE FROM t WHERE CURRENT OF c')[0]!.flags.noWhere).toBe(false);
  });

  it('knows built-in functions from others', () => {
    expect(ok('SELECT COUNT(*), MAX(a), ISNULL(b, 0), CAST(c AS varchar(10)) FROM t')[0]!.readOnly).toBe(true);
    const [udf] = ok('SELECT dbo.fn(1)');
    expect(udf!.readOnly).toBe(false);
    expect(udf!.functions).toEqual(['dbo.fn']);
  });
});

describe('flags and dangerous routines', () => {
  it('sees shell commands, server configuration and files on the server', () => {
    const [cmd] = ok("EXEC master..xp_cmdshell 'dir'");
    expect(cmd!.kind).toBe('call');
    expect(cmd!.flags.copyProgram).toBe(true);
    expect(cmd!.dangerousFunctions).toEqual(['master..xp_cmdshell']);
    const [cfg, rec] = ok("EXEC sp_configure 'show advanced options', 1; RECONFIGURE");
    expect(cfg!.flags.alterSystem).toBe(true);
    expect(rec!.kind).toBe('alter_system');
    const [bulk] = ok("BULK INSERT dbo.t FROM 'c:\\data.csv' WITH (FIELDTERMINATOR = ',')");
    expect(bulk!.kind).toBe('copy');
    expect(bulk!.flags.copyFromFile).toBe(true);
    expect(bulk!.copy).toEqual({ direction: 'from', endpoint: 'file', target: 'c:\\data.csv' });
    const [orow] = ok("SELECT * FROM OPENROWSET(BULK 'c:\\x.txt', SINGLE_CLOB) AS x");
    expect(orow!.flags.copyFromFile).toBe(true);
    expect(orow!.dangerousFunctions).toEqual(['OPENROWSET']);
    expect(ok("BACKUP DATABASE shop TO DISK = 'x.bak'")[0]!.flags.copyToFile).toBe(true);
    expect(ok('SHUTDOWN WITH NOWAIT')[0]!.dangerousFunctions).toEqual(['SHUTDOWN']);
    expect(ok("EXEC sp_set_session_context @key = N'tenant_id', @value = 42")[0]!.dangerousFunctions).toEqual(['sp_set_session_context']);
    expect(ok('SELECT * FROM sys.fn_dblog(NULL, NULL)')[0]!.dangerousFunctions).toEqual(['sys.fn_dblog']);
    expect(ok("SELECT * FROM sys.fn_get_audit_file('c:\\audit\\*.sqlaudit', DEFAULT, DEFAULT)")[0]!.dangerousFunctions).toEqual(['sys.fn_get_audit_file']);
    expect(ok('SELECT * FROM srv.shop.dbo.t')[0]!.dangerousFunctions).toEqual(['linked server']);
  });

  it('sees privilege changes and identity changes', () => {
    expect(ok('GRANT SELECT ON dbo.customers TO agent')[0]).toMatchObject({ kind: 'grant', flags: { privilegeChange: true } });
    expect(ok('DENY DELETE ON t TO u')[0]).toMatchObject({ kind: 'revoke', commandTag: 'DENY', flags: { privilegeChange: true } });
    expect(ok("CREATE LOGIN x WITH PASSWORD = 'p'")[0]).toMatchObject({ kind: 'role', flags: { privilegeChange: true } });
    expect(ok('ALTER ROLE db_owner ADD MEMBER u')[0]).toMatchObject({ kind: 'role', flags: { privilegeChange: true } });
    expect(ok("EXEC sp_addrolemember 'db_owner', 'u'")[0]!.flags.privilegeChange).toBe(true);
    expect(ok('USE master')[0]).toMatchObject({ kind: 'set', flags: { sessionEscape: true }, targetName: 'MASTER' });
    expect(ok("EXECUTE AS USER = 'dbo'")[0]).toMatchObject({ kind: 'set_role', flags: { sessionEscape: true } });
    expect(ok('REVERT')[0]!.flags.sessionEscape).toBe(true);
    expect(ok("EXEC sp_changeobjectowner 't', 'u'")[0]!.flags.privilegeChange).toBe(true);
    expect(ok("EXEC ('SELECT 1') AS LOGIN = 'sa'")[0]).toMatchObject({ kind: 'do', flags: { sessionEscape: true } });
    expect(ok("EXECUTE ('SELECT 1') AS USER = 'dbo'")[0]!.flags.sessionEscape).toBe(true);
    expect(ok('SELECT 1 -- windows line end\r\nSELECT 2').map((s) => s.kind)).toEqual(['select', 'select']);
    expect(ok('CREATE PROCEDURE p WITH EXECUTE AS OWNER AS SELECT 1')[0]!.flags.privilegeChange).toBe(true);
  });

  it('does not take opening an encryption key for opening a cursor: it is not read-only', () => {
    for (const sql of ["OPEN SYMMETRIC KEY ssn_key DECRYPTION BY CERTIFICATE ssn_cert", "OPEN MASTER KEY DECRYPTION BY PASSWORD = 'p'"]) {
      const [st] = ok(sql);
      expect(st).toMatchObject({ kind: 'other', readOnly: false });
    }
    expect(ok('OPEN c')[0]).toMatchObject({ kind: 'fetch', readOnly: true });
  });

  it('marks transaction control', () => {
    const st = ok('BEGIN TRANSACTION t1 SAVE TRAN s1 ROLLBACK TRAN s1 COMMIT');
    expect(st.map((s) => s.flags.transactionControl)).toEqual(['begin', 'savepoint', 'rollback', 'commit']);
  });
});

describe('system procedures that change the schema', () => {
  it('gives them the kind of the DDL they run', () => {
    expect(ok("EXEC sp_rename 'dbo.customers', 'c2'")[0]).toMatchObject({ kind: 'alter', readOnly: false });
    expect(ok("EXEC sys.sp_addtype 'ssn', 'char(11)'")[0]!.kind).toBe('create');
    expect((classifyProcedure('sp_rename') as Extract<Classification, { ok: true }>).statements[0]!.kind).toBe('alter');
    expect(classifyTsql("INSERT INTO t EXEC sp_rename 'a', 'b'")).toMatchObject({ ok: false });
  });

  it('keeps their string arguments in the fingerprint: a grant to rename one table is not one to rename any', () => {
    const fp = (sql: string): string => ok(sql)[0]!.fingerprint;
    expect(fp("EXEC sp_rename 'orders_tmp', 'orders_old'")).not.toBe(fp("EXEC sp_rename 'customers', 'orders_old'"));
    expect(fp("EXEC sp_rename 'orders_tmp', 'orders_old'")).toBe(fp("exec SP_RENAME 'Orders_Tmp', 'orders_old'"));
    // An ordinary procedure's arguments are values, as in a WHERE clause.
    expect(fp("EXEC dbo.archive 'a', 1")).toBe(fp("EXEC dbo.archive 'b', 2"));
  });

  it('does not let CREATE SCHEMA carry other statements, which SQL Server runs after its elements', () => {
    expect(ok('CREATE SCHEMA s AUTHORIZATION dbo')[0]!.kind).toBe('create');
    expect(classifyTsql('CREATE SCHEMA s; DELETE FROM customers')).toMatchObject({ ok: false, error: expect.stringMatching(/CREATE SCHEMA followed by other statements/) });
    expect(classifyTsql('CREATE SCHEMA s CREATE TABLE t (a int) GRANT SELECT ON t TO x')).toMatchObject({ ok: false });
  });
});

describe('dynamic SQL', () => {
  it('classifies literal dynamic SQL, and refuses what is built at run time', () => {
    const st = ok("EXEC('DROP TABLE x')");
    expect(st.map((s) => s.kind)).toEqual(['do', 'drop']);
    expect(st[0]!.flags.doBlock).toBe(true);
    const sp = ok("EXEC sp_executesql N'SELECT * FROM t WHERE id = @id', N'@id int', @id = 1");
    expect(sp.map((s) => s.kind)).toEqual(['do', 'select']);
    expect(rels(sp[1]!)).toEqual(['t:read']);
    expect(classifyTsql('EXEC (@sql)')).toMatchObject({ ok: false });
    expect(classifyTsql("DECLARE @s nvarchar(100) = N'x'; EXEC sp_executesql @s")).toMatchObject({ ok: false });
    expect(classifyTsql('EXEC @proc')).toMatchObject({ ok: false });
    // sp_sqlexec (legacy, undocumented) runs its string too.
    expect(kinds("EXEC sp_sqlexec 'DELETE FROM t'")).toEqual(['do', 'delete']);
    expect(classifyTsql('EXEC sp_sqlexec @s')).toMatchObject({ ok: false });
  });
});

describe('WHERE clauses that filter nothing (noWhere), as SQL Server runs them', () => {
  const noWhere = (sql: string): boolean => ok(sql)[0]!.flags.noWhere;

  it('flags a MERGE that updates or deletes rows no column picks', () => {
    // ON 1 = 1 matches every target row; NOT MATCHED BY SOURCE is every row an empty source lacks.
    expect(noWhere('MERGE t USING s ON 1 = 1 WHEN MATCHED THEN DELETE;')).toBe(true);
    expect(noWhere('MERGE INTO t AS x USING (SELECT a FROM u JOIN v ON u.id = v.id) AS s ON 1 = 1 WHEN MATCHED THEN UPDATE SET a = s.a;')).toBe(true);
    expect(noWhere('MERGE t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED BY SOURCE THEN DELETE;')).toBe(true);
    expect(noWhere('MERGE t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = CASE WHEN s.a > 0 THEN 1 ELSE 2 END;')).toBe(false);
    expect(noWhere('MERGE t USING s ON t.id = s.id WHEN NOT MATCHED BY TARGET THEN INSERT (id) VALUES (s.id);')).toBe(false);
    expect(noWhere('MERGE t USING s ON 1 = 1 WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id);')).toBe(false);
  });

  it('looks only at the statement\'s own WHERE, not a subquery\'s or another CTE\'s', () => {
    // Every customer gets the new email: the WHERE belongs to the subquery.
    expect(noWhere("UPDATE customers SET email = (SELECT 'x' FROM u WHERE u.id = 1)")).toBe(true);
    expect(noWhere("UPDATE customers SET email = (SELECT 'x' FROM u WHERE u.id = 1) WHERE id = 3")).toBe(false);
    expect(noWhere('WITH c AS (SELECT * FROM u WHERE a = 1) DELETE FROM t')).toBe(true);
    // A DML through a CTE is filtered by the CTE's own WHERE.
    expect(noWhere('WITH c AS (SELECT TOP 100 * FROM t WHERE a = 1) DELETE FROM c')).toBe(false);
    expect(noWhere('WITH c AS (SELECT TOP 100 * FROM t) DELETE FROM c')).toBe(true);
    expect(noWhere('WITH c AS (SELECT * FROM t WHERE a = 1 UNION ALL SELECT * FROM t) DELETE FROM c')).toBe(true);
  });

  it.each([
    // no column read: every row is written
    ['DELETE FROM t WHERE (SELECT 1) = 1', true],
    ['DELETE FROM t WHERE EXISTS (SELECT 1)', true],
    ['DELETE FROM t WHERE EXISTS (SELECT 1 x)', true],
    ['DELETE FROM t WHERE EXISTS (SELECT 1 FROM dbo.u AS x WITH (NOLOCK))', true],
    ['DELETE FROM t WHERE CURRENT_TIMESTAMP > 0', true],
    ["DELETE FROM t WHERE 1 = 1 AND CURRENT_USER = 'dbo'", true],
    ['DELETE FROM t WHERE SYSTEM_USER = SYSTEM_USER', true],
    ['DELETE FROM t WHERE CAST(1 AS int) = 1', true],
    ['DELETE FROM t WHERE CAST(1 AS dbo.udt) = 1', true],
    ["DELETE FROM t WHERE CONVERT(varchar(10), 1) = '1'", true],
    ["DELETE FROM t WHERE DATEADD(day, 1, GETDATE()) > '2000-01-01'", true],
    ["DELETE FROM t WHERE 'a' COLLATE Latin1_General_BIN = 'a'", true],
    ["UPDATE t SET a = 1 WHERE GETDATE() AT TIME ZONE 'UTC' > '2000-01-01'", true],
    ['DELETE FROM t WHERE 1 = 1 OPTION (MAXDOP 1)', true],
    ["DELETE FROM t WHERE TRIM(LEADING 'x' FROM 'xy') = 'y'", true],
    ["DELETE FROM t WHERE PARSE('1' AS int USING 'en-US') = 1", true],
    // a column read
    ['DELETE FROM t WHERE id = 1', false],
    ['DELETE FROM t WHERE [id] = 1', false],
    ['DELETE FROM t WHERE CONVERT(int, code) = 1', false],
    ['DELETE FROM t WHERE DATEADD(day, 1, created) > GETDATE()', false],
    ["DELETE FROM t WHERE name COLLATE Latin1_General_BIN = 'a'", false],
    ['DELETE FROM t WHERE IDENTITYCOL = 5', false],
    ['DELETE FROM t WHERE id IN (SELECT id FROM u)', false],
    ['DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)', false],
    ['DELETE FROM t OUTPUT deleted.id INTO log (id) WHERE id = 1', false],
    ['DELETE c FROM customers c JOIN orders o ON o.cid = c.id WHERE o.total > 5', false],
  ] as [string, boolean][])('%s: noWhere %s', (sql, expected) => {
    expect(noWhere(sql)).toBe(expected);
  });
});

describe('what it does not understand', () => {
  it.each([
    ["SELECT 'unterminated", /unterminated string/],
    ['SELECT [x', /unterminated bracketed name/],
    ['SELECT 1 /* open', /unterminated comment/],
    ['SELECT 1\nGO\nSELECT 2', /GO/],
    ['SELECT {fn NOW()}', /ODBC/],
    ['SELECT (1', /parentheses/],
    ['SELECT 1; FROB x', /unknown statement/],
    // SQL Server may end a -- comment at a bare CR (or NEL, U+2028): the DROP would run unseen.
    ['SELECT 1 -- note\rDROP TABLE t', /line break other than LF \(U\+000D\)/],
    ['SELECT 1 -- note\u2028DROP TABLE t', /line break other than LF/],
    // Zero-width and other odd characters between or inside words.
    ['DR\u200bOP TABLE t', /unexpected character U\+200B/],
    ['SELECT 1\u3000DROP TABLE t', /unexpected character U\+3000/],
    ['SELECT 1 ` x', /unexpected character U\+0060/],
  ])('%s', (sql, reason) => {
    const c = classifyTsql(sql);
    expect(c.ok).toBe(false);
    expect((c as { error: string }).error).toMatch(reason);
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const c = classifyTsql(s);
        expect(typeof c.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.constantFrom('SELECT', 'FROM', 't', '(', ')', ',', "'x'", 'EXEC', 'WITH', 'AS', 'CASE', 'END', 'UPDATE', 'SET', '=', '1', ';', '[a]', 'INTO', 'DELETE', 'BEGIN', 'IF', 'ELSE', '.', '@v'), { maxLength: 30 }), (words) => {
        const c = classifyTsql(words.join(' '));
        expect(typeof c.ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('identity of a statement', () => {
  it('gives one fingerprint to texts that differ in literals only, and shows them normalized', () => {
    const [a] = ok('SELECT * FROM t WHERE id = 1');
    const [b] = ok("select *  from T where ID = 2");
    const [c] = ok('SELECT * FROM t WHERE id > 1');
    expect(a!.fingerprint).toBe(b!.fingerprint);
    expect(a!.fingerprint).not.toBe(c!.fingerprint);
    expect(a!.normalized).toBe('SELECT * FROM t WHERE id = $1');
    expect(classifyTsql('SELECT 1')).toBe(classifyTsql('SELECT 1'));
  });

  it('classifies an RPC procedure call as an EXEC of it', () => {
    const c = classifyProcedure('dbo.count_active') as Extract<Classification, { ok: true }>;
    expect(c.statements[0]).toMatchObject({ kind: 'call', functions: ['dbo.count_active'], readOnly: false });
    expect((classifyProcedure('sp_tables') as Extract<Classification, { ok: true }>).statements[0]!.readOnly).toBe(true);
    expect((classifyProcedure('[master]..[xp_cmdshell]') as Extract<Classification, { ok: true }>).statements[0]!.flags.copyProgram).toBe(true);
    expect((classifyProcedure('"dbo"."count_active"') as Extract<Classification, { ok: true }>).statements[0]!.functions).toEqual(['dbo.count_active']);
  });

  it('does not read an RPC procedure name the server might read otherwise, and folds names as a lenient collation would', () => {
    // Not plain multi-part names: warden cannot tell what the server resolves them to.
    for (const name of ['odd name]; DROP TABLE x --', 'sys . sp_executesql', ' sp_executesql', 'sp_executesql;1', 'a.b.c.d.e', 'x.', 'ｘｐ＿ｃｍｄｓｈｅｌｌ']) {
      expect(classifyProcedure(name)).toMatchObject({ ok: false, error: expect.stringMatching(/is not a name warden can read/) });
    }
    // Trailing spaces, full-width letters and accents may still find the procedure on the server.
    for (const name of ['[xp_cmdshell ]', '[ｘｐ＿ｃｍｄｓｈｅｌｌ]', 'xp_cmdshéll']) {
      const c = classifyProcedure(name) as Extract<Classification, { ok: true }>;
      expect(c.statements[0]!.flags.copyProgram).toBe(true);
    }
    expect(ok("EXEC [sp_executesql ] N'DROP TABLE x'").map((s) => s.kind)).toEqual(['do', 'drop']);
  });

  it('starts a batch that names a procedure without EXEC as a call', () => {
    expect(ok('sp_who')[0]).toMatchObject({ kind: 'call', readOnly: true });
    expect(ok("dbo.count_active @min_rank = 3")[0]!.kind).toBe('call');
  });
});

describe('statement rules over T-SQL', () => {
  const principal: Principal = {
    name: 'agent', issuerName: 'dev', issuer: 'x', subject: 's', subjectClaim: 'azp', roles: [], groups: [], groupsOverage: false, audience: 'a',
  };
  const ctx = { principal, target: 'shop', protocol: 'tds' as const };
  const policy = createStatementPolicy([
    { name: 'no-shell', match: { dangerousFunctions: true }, action: 'deny', message: 'no shell' },
    { name: 'no-delete', match: { kinds: ['delete', 'truncate'] }, action: 'deny' },
    { name: 'grants', match: { flags: ['privilege_change'] }, action: 'hold' },
    { name: 'read-customers', match: { relations: ['dbo.customers'], access: ['read'] }, action: 'allow' },
  ]);

  it('evaluates the classifier output like PostgreSQL statements', () => {
    expect(policy.evaluate(ctx, classifyTsql("EXEC xp_cmdshell 'whoami'"))).toMatchObject({ action: 'deny', rule: 'no-shell' });
    expect(policy.evaluate(ctx, classifyTsql('SELECT 1 DELETE FROM dbo.customers'))).toMatchObject({ action: 'deny', rule: 'no-delete' });
    expect(policy.evaluate(ctx, classifyTsql('GRANT SELECT ON t TO x'))).toMatchObject({ action: 'hold', rule: 'grants' });
    expect(policy.evaluate(ctx, classifyTsql('SELECT * FROM dbo.customers'))).toMatchObject({ action: 'allow', rule: 'read-customers' });
    expect(policy.evaluate(ctx, classifyTsql('EXEC (@sql)'))).toMatchObject({ action: 'hold', rule: 'unparseable' });
    expect(policy.evaluate(ctx, classifyTsql("EXEC('TRUNCATE TABLE t')"))).toMatchObject({ action: 'deny', rule: 'no-delete' });
  });
});

// The stand-in's pure parts: T-SQL lexing, statement splitting and translation, declared types,
// value conversion between PostgreSQL text and TDS, the encryption negotiation table, and the
// DONE rules of a reply.

import { beforeAll, describe, expect, it } from 'vitest';
import { DATA_TYPE, DONE_STATUS, ENCRYPTION, TDS_VERSION, decodeTokens } from '../../protocols/tds/index.js';
import { compileBatch, parseParameterDeclarations } from '../../fixtures/sqlserver-standin/engine/compile.js';
import { SqlServerError } from '../../fixtures/sqlserver-standin/engine/errors.js';
import { CUR_CMD, Reply } from '../../fixtures/sqlserver-standin/engine/reply.js';
import { sqlTypeOfPgColumn, typeInfoFor, valueFromPg, valueToPg } from '../../fixtures/sqlserver-standin/engine/values.js';
import { negotiatePacketSize, negotiateTdsVersion } from '../../fixtures/sqlserver-standin/session/login.js';
import { negotiateEncryption } from '../../fixtures/sqlserver-standin/session/prelogin.js';
import { LexError, lex } from '../../fixtures/sqlserver-standin/tsql/lexer.js';
import { splitStatements } from '../../fixtures/sqlserver-standin/tsql/split.js';
import { type TranslateContext, TranslateError, translate } from '../../fixtures/sqlserver-standin/tsql/translate.js';
import { type SqlType, readSqlType } from '../../fixtures/sqlserver-standin/tsql/types.js';
import { initSqlParser } from '../../src/sql/parser.js';

const VARS: Record<string, SqlType> = {
  '@id': { name: 'int' },
  '@name': { name: 'nvarchar', length: 13 },
  '@min': { name: 'decimal', precision: 12, scale: 2 },
};

const ctx: TranslateContext = {
  variable: (n) => (VARS[n] ? { type: VARS[n] } : undefined),
  booleanColumns: new Set(['is_active']),
  constants: { version: 'V', serverName: 'S', database: 'shop', login: 'sa', language: 'us_english', spid: 51 },
};

const statements = (sql: string): string[] => splitStatements(sql, lex(sql)).map((s) => s.text);
const tr = (sql: string): string => translate(splitStatements(sql, lex(sql))[0]!.tokens, ctx).sql;

describe('T-SQL lexer', () => {
  it('reads N-strings, brackets, variables and system variables', () => {
    const kinds = lex("SELECT N'it''s', [a]]b], @x, @@ROWCOUNT, 0x0A, 1.5e3").filter((t) => t.kind !== 'space');
    expect(kinds.map((t) => [t.kind, t.value ?? t.text])).toEqual([
      ['word', 'SELECT'], ['string', "it's"], ['op', ','], ['quoted', 'a]b'], ['op', ','], ['var', '@x'], ['op', ','],
      ['sysvar', '@@ROWCOUNT'], ['op', ','], ['binary', '0x0A'], ['op', ','], ['number', '1.5e3'],
    ]);
  });

  it('refuses an unclosed quote with SQL Server error 105', () => {
    expect(() => lex("SELECT 'open")).toThrow(LexError);
    try {
      lex("SELECT 'open");
    } catch (err) {
      expect((err as LexError).number).toBe(105);
    }
  });
});

describe('statement splitting', () => {
  it('splits on semicolons and on statement keywords without them', () => {
    expect(statements('set ansi_nulls on\nset textsize 2147483647\nSELECT @@MAX_PRECISION\r\nSET NOCOUNT ON')).toEqual([
      'set ansi_nulls on', 'set textsize 2147483647', 'SELECT @@MAX_PRECISION', 'SET NOCOUNT ON',
    ]);
    expect(statements("BEGIN TRANSACTION; INSERT INTO t (a) VALUES (N'x'); ROLLBACK TRANSACTION")).toHaveLength(3);
  });

  it('keeps UNION SELECT, INSERT ... SELECT, UPDATE ... SET, CTEs and subqueries together', () => {
    expect(statements('SELECT 1 UNION ALL SELECT 2')).toHaveLength(1);
    expect(statements('INSERT INTO t (a) SELECT a FROM u')).toHaveLength(1);
    expect(statements('INSERT INTO t VALUES (1) SELECT 2')).toHaveLength(2);
    expect(statements('UPDATE t SET a = 1 WHERE b = 2 SET NOCOUNT ON')).toEqual(['UPDATE t SET a = 1 WHERE b = 2', 'SET NOCOUNT ON']);
    expect(statements('WITH c AS (SELECT 1 AS x) SELECT x FROM c SELECT 2')).toHaveLength(2);
    expect(statements('SELECT * FROM t WITH (NOLOCK) WHERE a IN (SELECT b FROM u)')).toHaveLength(1);
  });

  it('does not glue a statement to SET ... ON before it', () => {
    expect(statements('SET NOCOUNT ON\nSELECT 1\nSET XACT_ABORT ON\nDELETE FROM t\nSET ANSI_NULLS ON\nEXEC p')).toHaveLength(6);
    expect(statements('ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (b) ON DELETE CASCADE')).toHaveLength(1);
  });

  it('splits IF from its body and ELSE from its own', () => {
    expect(statements('IF @@TRANCOUNT > 0 ROLLBACK TRAN ELSE SELECT 1')).toEqual(['IF @@TRANCOUNT > 0', 'ROLLBACK TRAN', 'ELSE', 'SELECT 1']);
  });
});

describe('translation to PostgreSQL', () => {
  it('turns TOP into LIMIT per query level', () => {
    expect(tr('SELECT TOP 3 id FROM customers ORDER BY id')).toBe('SELECT id FROM customers ORDER BY id LIMIT 3');
    expect(tr('SELECT 1 AS x FROM (SELECT TOP (1) a FROM t) s')).toBe('SELECT 1 AS "x" FROM (SELECT a FROM t LIMIT (1)) s');
  });

  it('rewrites names, literals, variables and system variables', () => {
    expect(tr("SELECT [Full_Name] AS [Full Name] FROM shop.dbo.[Customers] WHERE full_name = N'x' AND id = @id")).toBe(
      'SELECT "full_name" AS "Full Name" FROM "customers" WHERE full_name = \'x\' AND id = ($1::integer)',
    );
    const r = translate(lex('SELECT @@ROWCOUNT, @@SPID, @id, @id').filter((t) => t.kind !== 'space'), ctx);
    expect(r.sql).toBe('SELECT ($1::integer) AS "?column?", CAST(51 AS smallint) AS "?column?", ($2::integer) AS "?column?", ($2::integer) AS "?column?"');
    expect(r.binds).toEqual([{ kind: 'sys', name: 'ROWCOUNT' }, { kind: 'var', name: '@id' }]);
  });

  it('maps the common functions', () => {
    expect(tr('SELECT ISNULL(email, N\'-\') AS e, LEN(full_name) AS l, GETDATE() AS now, COUNT(*) AS n FROM customers')).toBe(
      "SELECT COALESCE(email, '-') AS \"e\", length(rtrim(CAST(full_name AS text))) AS \"l\", LOCALTIMESTAMP(3) AS \"now\", CAST(count(*) AS integer) AS \"n\" FROM customers",
    );
    expect(tr("SELECT CAST(notes AS NVARCHAR(MAX)) AS n, CONVERT(varchar(10), id) AS c, CHARINDEX('a', full_name) AS p FROM customers")).toBe(
      "SELECT CAST(notes AS text) AS \"n\", CAST(id AS varchar(10)) AS \"c\", strpos(full_name, 'a') AS \"p\" FROM customers",
    );
  });

  it('concatenates with || when an operand is text, and compares bit columns with booleans', () => {
    expect(tr("SELECT N'over ' + CAST(@min AS nvarchar(20)) AS label")).toBe(
      "SELECT 'over ' || CAST(($1::numeric(12,2)) AS varchar(20)) AS \"label\"",
    );
    expect(tr('SELECT id + 1 AS n FROM customers WHERE is_active = 1 AND 0 = is_active')).toBe(
      'SELECT id + 1 AS "n" FROM customers WHERE is_active = true AND false = is_active',
    );
  });

  it('names columns as SQL Server does: alias = expr, and no name for bare expressions', () => {
    expect(tr('SELECT n = COUNT(*), id, c.full_name, 1 + 1, @@VERSION v FROM customers c')).toBe(
      'SELECT CAST(count(*) AS integer) AS "n", id, c.full_name, 1 + 1 AS "?column?", CAST(\'V\' AS text) AS "v" FROM customers c',
    );
  });

  it('refuses undeclared variables (137) and unbalanced parentheses (102)', () => {
    expect(() => tr('SELECT @nope')).toThrow(TranslateError);
    expect(() => tr('SELECT (1')).toThrow("Incorrect syntax near '('.");
  });
});

describe('declared types', () => {
  it('reads sp_executesql parameter declarations', () => {
    expect(parseParameterDeclarations('@min decimal(12, 2), @cnt int OUTPUT, @label nvarchar(4000) OUT, @b varbinary(max)')).toEqual([
      { name: '@min', type: { name: 'decimal', precision: 12, scale: 2 }, output: false },
      { name: '@cnt', type: { name: 'int' }, output: true },
      { name: '@label', type: { name: 'nvarchar', length: 4000 }, output: true },
      { name: '@b', type: { name: 'varbinary', length: 'max' }, output: false },
    ]);
  });

  it('refuses impossible lengths and unknown types', () => {
    expect(() => readSqlType(lex('nvarchar(5000)').filter((t) => t.kind !== 'space'), 0)).toThrow(/exceeds the maximum/);
    expect(() => parseParameterDeclarations('@x geography')).toThrow(SqlServerError);
  });
});

describe('compiling a batch', () => {
  beforeAll(() => initSqlParser());

  const compile = (sql: string): ReturnType<typeof compileBatch> => compileBatch(sql, { ...ctx, variables: new Map() });

  it('classifies what the stand-in runs itself', () => {
    expect(
      compile("DECLARE @c int = 1\nSET @c = @c + 1\nSELECT @c = COUNT(*) FROM customers\nPRINT 'x'\nSET NOCOUNT ON\nEXEC dbo.count_active 1000, @c OUTPUT\nRETURN").map((c) => c.kind),
    ).toEqual(['declare', 'assign', 'assign', 'print', 'set-option', 'exec', 'return']);
  });

  it('fails the whole batch at compile time on a syntax error anywhere', () => {
    expect(() => compile('SELECT 1; SELEC 2')).toThrow("Incorrect syntax near 'SELEC'.");
    expect(() => compile('SELECT 1; SELECT FROM WHERE')).toThrow(/Incorrect syntax near/);
  });
});

describe('values between PostgreSQL and TDS', () => {
  const v74 = TDS_VERSION.V7_4;
  const v71 = TDS_VERSION.V7_1_REV1;

  it('types PostgreSQL columns as SQL Server types', () => {
    expect(sqlTypeOfPgColumn(1700, ((12 << 16) | 2) + 4, [])).toEqual({ name: 'decimal', precision: 12, scale: 2 });
    expect(sqlTypeOfPgColumn(1700, -1, ['1.5', '-20.125', null])).toEqual({ name: 'decimal', precision: 38, scale: 3 });
    expect(sqlTypeOfPgColumn(1700, -1, ['NaN'])).toEqual({ name: 'nvarchar', length: 'max' });
    expect(sqlTypeOfPgColumn(1043, 104, ['x'])).toEqual({ name: 'nvarchar', length: 100 });
    expect(sqlTypeOfPgColumn(1043, 7, ['😀😀😀'])).toEqual({ name: 'nvarchar', length: 6 }); // UTF-16 code units
    expect(sqlTypeOfPgColumn(25, -1, [])).toEqual({ name: 'nvarchar', length: 'max' });
  });

  it('gives TDS 7.1 clients NTEXT/IMAGE for (max) and text for the new date types', () => {
    expect(typeInfoFor({ name: 'nvarchar', length: 'max' }, v74).length).toBe(0xffff);
    expect(typeInfoFor({ name: 'nvarchar', length: 'max' }, v71).type).toBe(DATA_TYPE.NTEXT);
    expect(typeInfoFor({ name: 'varbinary', length: 'max' }, v71).type).toBe(DATA_TYPE.IMAGE);
    expect(typeInfoFor({ name: 'datetime2', scale: 7 }, v71)).toMatchObject({ type: DATA_TYPE.NVARCHAR, length: 54 });
    expect(valueFromPg({ name: 'datetime2', scale: 7 }, '2024-01-01 00:00:00.062907', v71)).toBe('2024-01-01 00:00:00.0629070');
    expect(valueFromPg({ name: 'datetimeoffset', scale: 7 }, '2025-01-10 00:15:30.123457+00', v71)).toBe('2025-01-10 00:15:30.1234570 +00:00');
  });

  it('converts exactly: microseconds, offsets, big integers, bytea', () => {
    expect(valueFromPg({ name: 'datetime2', scale: 7 }, '2024-01-01 00:00:00.062907', v74)).toEqual({ kind: 'datetime2', days: 738885, ticks: 629070 });
    expect(valueFromPg({ name: 'datetimeoffset', scale: 7 }, '2025-01-01 01:30:00+05:30', v74)).toEqual({
      kind: 'datetimeoffset', days: 739250, ticks: 20 * 3600 * 10_000_000, offsetMinutes: 330,
    });
    expect(valueFromPg({ name: 'bigint' }, '9007199254740993', v74)).toBe(9007199254740993n);
    expect(valueFromPg({ name: 'varbinary', length: 'max' }, '\\x89504e', v74)).toEqual(Buffer.from('89504e', 'hex'));
    expect(valueToPg({ kind: 'datetime2', days: 738885, ticks: 629070 })).toBe('2024-01-01T00:00:00.0629070');
    expect(valueToPg(true)).toBe('true');
  });
});

describe('negotiation', () => {
  it('follows the PRELOGIN encryption table', () => {
    const { ENCRYPT_OFF: OFF, ENCRYPT_ON: ON, ENCRYPT_NOT_SUP: NOT_SUP, ENCRYPT_REQ: REQ } = ENCRYPTION;
    expect(negotiateEncryption(OFF, 'available')).toEqual({ response: OFF, mode: 'login-only' });
    expect(negotiateEncryption(OFF, 'required')).toEqual({ response: REQ, mode: 'full' });
    expect(negotiateEncryption(ON, 'available')).toEqual({ response: ON, mode: 'full' });
    expect(negotiateEncryption(NOT_SUP, 'available')).toEqual({ response: NOT_SUP, mode: 'none' });
    expect(negotiateEncryption(NOT_SUP, 'required')).toEqual({ response: REQ, mode: 'refused' });
    expect(negotiateEncryption(ON, 'not-supported')).toEqual({ response: NOT_SUP, mode: 'none' });
  });

  it('speaks up to TDS 7.4 and announces packet size 0 as 4096', () => {
    expect(negotiateTdsVersion(TDS_VERSION.V7_1_REV1)).toBe(TDS_VERSION.V7_1_REV1);
    expect(negotiateTdsVersion(TDS_VERSION.V7_3B)).toBe(TDS_VERSION.V7_3B);
    expect(negotiateTdsVersion(TDS_VERSION.V8_0)).toBe(TDS_VERSION.V8_0);
    expect(negotiatePacketSize(0)).toEqual({ size: 4096, announce: true });
    expect(negotiatePacketSize(8000)).toEqual({ size: 8000, announce: false });
    expect(negotiatePacketSize(100)).toEqual({ size: 512, announce: true });
  });
});

describe('a reply', () => {
  it('clears DONE_MORE on the last DONE only and keeps DONE_COUNT off after an error', () => {
    const r = new Reply(TDS_VERSION.V7_4, () => false);
    r.done('DONE', CUR_CMD.SELECT, 3);
    r.error(8134, 16, 1, 'Divide by zero error encountered.', { serverName: 'S', procName: '', lineNumber: 1 });
    r.done('DONE', CUR_CMD.SELECT, 0);
    const tokens = decodeTokens(r.finish(), { tdsVersion: TDS_VERSION.V7_4 });
    expect(tokens.map((t) => (t.kind === 'DONE' ? [t.status, Number(t.rowCount)] : t.kind))).toEqual([
      [DONE_STATUS.MORE | DONE_STATUS.COUNT, 3],
      'ERROR',
      [DONE_STATUS.ERROR, 0],
    ]);
  });

  it('under NOCOUNT sends no counts and no DONEINPROC for statements other than SELECT', () => {
    const r = new Reply(TDS_VERSION.V7_4, () => true);
    r.done('DONEINPROC', CUR_CMD.INSERT, 1);
    r.done('DONEINPROC', CUR_CMD.SELECT, 2);
    r.done('DONEPROC', CUR_CMD.EXECUTE);
    const tokens = decodeTokens(r.finish(), { tdsVersion: TDS_VERSION.V7_4 });
    expect(tokens.map((t) => (t.kind === 'DONEINPROC' || t.kind === 'DONEPROC' ? [t.kind, t.status] : t.kind))).toEqual([
      ['DONEINPROC', DONE_STATUS.MORE],
      ['DONEPROC', DONE_STATUS.FINAL],
    ]);
  });
});

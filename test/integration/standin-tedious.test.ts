// tedious 19 (TDS 7.4) straight against the SQL Server stand-in, with encrypt false, true (TLS in
// PRELOGIN packets) and 'strict' (TDS 8.0: TLS first, certificate verified): the shared scenario,
// every answer compared with what node-postgres reads from the same PostgreSQL rows. Then the
// behaviours only tedious drives easily: login failures, access tokens, error scopes, NOCOUNT,
// Transaction Manager requests, RESETCONNECTION.

import { Request, TYPES } from 'tedious';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CUSTOMER_COLUMNS,
  CUSTOMER_KINDS,
  LOGIN,
  SCENARIO,
  type StandInHarness,
  comparableRows,
  expectedRows,
  pgRows,
  pgScalar,
  runningStandInQueries,
  startStandIn,
  superuserUrl,
  waitFor,
} from './standin-support.js';
import { type TediousSession, tedious } from './standin-tedious-client.js';

let h: StandInHarness;

beforeAll(async () => {
  h = await startStandIn('tedious', { acceptAccessToken: (t) => t === 'good-token' });
});

afterAll(async () => {
  await h?.stop();
});

describe.each([
  { label: 'encrypt: false', encrypt: false },
  { label: 'encrypt: true (TLS inside PRELOGIN)', encrypt: true },
  { label: "encrypt: 'strict' (TDS 8.0)", encrypt: 'strict' },
] as const)('tedious, $label', ({ encrypt }) => {
  let c: TediousSession;

  beforeAll(async () => {
    c = await tedious({ port: h.port, encrypt, ca: h.standin.certificate! });
  });

  afterAll(async () => {
    await c?.close();
  });

  it('SELECT * FROM customers returns every row and column as PostgreSQL has them', async () => {
    const r = await c.batch(SCENARIO.selectAll);
    expect(r.error).toBeUndefined();
    expect(r.sets).toHaveLength(1);
    expect(r.sets[0]!.columns).toEqual(CUSTOMER_COLUMNS);
    const want = expectedRows('tedious', CUSTOMER_KINDS, await pgRows(h.pgUrl, SCENARIO.selectAll));
    expect(comparableRows(CUSTOMER_KINDS, r.sets[0]!.rows)).toEqual(want);
  });

  it('a batch of two SELECTs gives two result sets', async () => {
    const r = await c.batch(SCENARIO.twoResults);
    expect(r.sets.map((s) => s.columns)).toEqual([['id', 'full_name', 'email'], ['n', 'total_salary', 'max_balance']]);
    const first = await pgRows(h.pgUrl, SCENARIO.twoResultsPg[0]);
    const second = await pgRows(h.pgUrl, SCENARIO.twoResultsPg[1]);
    expect(comparableRows(['int', 'text', 'text'], r.sets[0]!.rows)).toEqual(expectedRows('tedious', ['int', 'text', 'text'], first));
    expect(comparableRows(['int', 'numeric', 'numeric'], r.sets[1]!.rows)).toEqual(expectedRows('tedious', ['int', 'numeric', 'numeric'], second));
  });

  it('errors come back with SQL Server numbers and the session goes on', async () => {
    const zero = await c.batch(SCENARIO.divideByZero);
    expect(zero.error).toEqual({ number: 8134, message: 'Divide by zero error encountered.' });
    const missing = await c.batch(SCENARIO.invalidObject);
    expect(missing.error).toEqual({ number: 208, message: "Invalid object name 'no_such_table'." });
    expect((await c.batch('SELECT 1 AS still_here')).sets[0]!.rows).toEqual([[1]]);
  });

  it('PRINT arrives as an INFO message', async () => {
    const r = await c.batch(SCENARIO.print);
    expect(r.error).toBeUndefined();
    expect(r.infos).toContainEqual({ number: 0, message: 'hello from print' });
  });

  it('a transaction rolled back leaves no row, through TransMgr requests and through T-SQL', async () => {
    await new Promise<void>((resolve, reject) => c.connection.beginTransaction((err) => (err ? reject(err) : resolve()), 'tx1'));
    const ins = await c.batch(`INSERT INTO customers (full_name, email) VALUES (N'Rolled Back', '${SCENARIO.rollbackEmail}')`);
    expect(ins.error).toBeUndefined();
    expect(ins.rowCount).toBe(1);
    await new Promise<void>((resolve, reject) => c.connection.rollbackTransaction((err) => (err ? reject(err) : resolve())));
    const tsql = await c.batch(
      `BEGIN TRANSACTION; INSERT INTO customers (full_name, email) VALUES (N'Also Rolled Back', '${SCENARIO.rollbackEmail}'); ROLLBACK TRANSACTION`,
    );
    expect(tsql.error).toBeUndefined();
    expect(await pgRows(h.pgUrl, 'SELECT count(*) FROM customers WHERE email = $1', [SCENARIO.rollbackEmail])).toEqual([['0']]);
  });

  it('sp_executesql with typed parameters and OUTPUT parameters', async () => {
    const o = SCENARIO.executeSqlOutput;
    const r = await c.execSql(o.statement, [
      { name: 'min', type: 'Decimal', value: Number(o.min), options: { precision: 12, scale: 2 } },
      { name: 'cnt', type: 'Int', value: null, output: true },
      { name: 'label', type: 'NVarChar', value: null, output: true, options: { length: 4000 } },
    ]);
    expect(r.error).toBeUndefined();
    expect(r.outputs).toEqual({ cnt: Number(await pgScalar(h.pgUrl, o.pg)), label: `over ${o.min}` });
    const q = SCENARIO.executeSqlRows;
    const rows = await c.execSql(q.statement, [
      { name: 'id', type: 'Int', value: q.id },
      { name: 'name', type: 'NVarChar', value: q.name },
    ]);
    const kinds = ['int', 'text', 'text', 'numeric'] as const;
    expect(comparableRows(kinds, rows.sets[0]!.rows)).toEqual(expectedRows('tedious', kinds, await pgRows(h.pgUrl, q.pg)));
  });

  it('the stored procedure dbo.count_active returns 7 and its OUTPUT parameter', async () => {
    const r = await c.procedure('dbo.count_active', [
      { name: 'min_rank', type: 'SmallInt', value: SCENARIO.procedure.minRank },
      { name: 'cnt', type: 'Int', value: null, output: true },
    ]);
    expect(r.error).toBeUndefined();
    expect(r.returnStatus).toBe(SCENARIO.procedure.status);
    expect(r.outputs).toEqual({ cnt: Number(await pgScalar(h.pgUrl, SCENARIO.procedure.pg)) });
  });

  it('sp_prepare once, sp_execute twice, sp_unprepare', async () => {
    const request = new Request('SELECT id, full_name, email FROM customers WHERE id <= @n ORDER BY id', () => undefined);
    request.addParameter('n', TYPES.Int);
    await new Promise<void>((resolve, reject) => {
      request.once('prepared', () => resolve());
      request.once('error', reject);
      c.connection.prepare(request);
    });
    for (const n of [3, 1]) {
      const rows: unknown[][] = [];
      await new Promise<void>((resolve, reject) => {
        const onRow = (cols: { value: unknown }[]): void => void rows.push(cols.map((x) => x.value));
        request.on('row', onRow);
        (request as unknown as { callback: (err?: Error) => void }).callback = (err) => {
          request.off('row', onRow);
          if (err) reject(err);
          else resolve();
        };
        c.connection.execute(request, { n });
      });
      expect(rows).toEqual(expectedRows('tedious', ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.prepared.pg(n))));
    }
    await new Promise<void>((resolve, reject) => {
      (request as unknown as { callback: (err?: Error) => void }).callback = (err) => (err ? reject(err) : resolve());
      c.connection.unprepare(request);
    });
  });

  it('a large nvarchar(max) value arrives whole', async () => {
    const r = await c.batch(SCENARIO.large);
    expect(r.sets[0]!.rows).toEqual(await pgRows(h.pgUrl, SCENARIO.largePg));
    expect((r.sets[0]!.rows[0]![0] as string).length).toBe(100_000);
  });

  it('cancel (ATTENTION) stops the running pg_sleep in PostgreSQL and the session goes on', async () => {
    const started = Date.now();
    const pending = c.batch(SCENARIO.sleep);
    await waitFor(async () => (await runningStandInQueries('standin_tedious')).some((q) => q.includes('pg_sleep')));
    c.connection.cancel();
    const r = await pending;
    expect(r.error?.message).toMatch(/Canceled/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await waitFor(async () => !(await runningStandInQueries('standin_tedious')).some((q) => q.includes('pg_sleep')))).toBe(true);
    expect((await c.batch('SELECT 1 AS after_cancel')).sets[0]!.rows).toEqual([[1]]);
  });
});

describe('tedious: types', () => {
  it('PostgreSQL types arrive as their TDS types, values and NULLs alike', async () => {
    const c = await tedious({ port: h.port, encrypt: false });
    const r = await c.batch(
      "SELECT CAST(7 AS smallint) AS i2, 7 AS i4, CAST(7 AS bigint) AS i8, CAST(1 AS bit) AS b, CAST(12.34 AS decimal(10, 2)) AS dec, " +
        "CAST(1.5 AS real) AS f4, CAST(1.5 AS float) AS f8, N'ü' AS nv, CAST('ab' AS char(3)) AS ch, CAST(N'x' AS nvarchar(max)) AS nmax, " +
        "CAST(0x0102 AS varbinary(max)) AS bin, CAST('2024-02-29' AS date) AS d, CAST('12:34:56.123456' AS time) AS t, " +
        "CAST('2024-02-29 10:11:12.345678' AS datetime2) AS dt2, CAST('2024-02-29 10:00:00 +05:30' AS datetimeoffset) AS dto, " +
        "CAST('3d9c1724-11e2-4b8f-ab0d-549b6f03675a' AS uniqueidentifier) AS g",
    );
    expect(r.error).toBeUndefined();
    const types = ['IntN', 'IntN', 'IntN', 'BitN', 'DecimalN', 'FloatN', 'FloatN', 'NVarChar', 'NChar', 'NVarChar', 'VarBinary', 'Date', 'Time', 'DateTime2', 'DateTimeOffset', 'UniqueIdentifier'];
    expect(r.sets[0]!.types).toEqual(types);
    expect(r.sets[0]!.rows[0]!.map((v) => (v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('hex') : v))).toEqual([
      7, 7, '7', true, 12.34, 1.5, 1.5, 'ü', 'ab ', 'x', '0102', '2024-02-29T00:00:00.000Z', '1970-01-01T12:34:56.123Z',
      '2024-02-29T10:11:12.345Z', '2024-02-29T04:30:00.000Z', '3D9C1724-11E2-4B8F-AB0D-549B6F03675A',
    ]);
    const nulls = await c.batch(
      'SELECT CAST(NULL AS int) AS a, CAST(NULL AS bit) AS b, CAST(NULL AS decimal(5, 1)) AS c, CAST(NULL AS float) AS d, ' +
        'CAST(NULL AS nvarchar(10)) AS e, CAST(NULL AS nvarchar(max)) AS f, CAST(NULL AS varbinary(max)) AS g, CAST(NULL AS date) AS h, ' +
        'CAST(NULL AS time) AS i, CAST(NULL AS datetime2) AS j, CAST(NULL AS datetimeoffset) AS k, CAST(NULL AS uniqueidentifier) AS l',
    );
    expect(nulls.sets[0]!.rows).toEqual([new Array(12).fill(null)]);
    await c.close();
  });
});

describe('tedious: logins', () => {
  it('a wrong password is error 18456 and no session', async () => {
    await expect(tedious({ port: h.port, encrypt: false, password: 'wrong' })).rejects.toThrow(`Login failed for user '${LOGIN.user}'.`);
  });

  it('an unknown login is error 18456', async () => {
    await expect(tedious({ port: h.port, encrypt: false, user: 'nobody' })).rejects.toThrow("Login failed for user 'nobody'.");
  });

  it('an access token (FEDAUTH) the callback accepts logs in over TLS; others are refused', async () => {
    const c = await tedious({ port: h.port, encrypt: true, token: 'good-token' });
    expect((await c.batch('SELECT 1 AS via_token')).sets[0]!.rows).toEqual([[1]]);
    await c.close();
    await expect(tedious({ port: h.port, encrypt: true, token: 'bad-token' })).rejects.toThrow(/Login failed/);
    await expect(tedious({ port: h.port, encrypt: false, token: 'good-token' })).rejects.toThrow(/Login failed/);
  });
});

describe('tedious: batch semantics', () => {
  let c: TediousSession;

  beforeAll(async () => {
    c = await tedious({ port: h.port, encrypt: false });
  });

  afterAll(async () => {
    await c?.close();
  });

  it('a duplicate key ends only its statement; the batch goes on', async () => {
    const r = await c.batch("INSERT INTO customers (id, full_name) VALUES (1, N'Duplicate'); SELECT 2 AS after_error");
    expect(r.error?.number).toBe(2627);
    expect(r.error?.message).toMatch(/^Violation of PRIMARY KEY constraint 'customers_pkey'\. .*The duplicate key value is \(1\)\.$/);
    expect(r.sets.map((s) => s.rows)).toEqual([[[2]]]);
  });

  it('an unknown table ends the batch', async () => {
    const r = await c.batch('SELECT * FROM no_such_table; SELECT 2 AS never');
    expect(r.error?.number).toBe(208);
    expect(r.sets).toEqual([]);
  });

  it('a syntax error anywhere means nothing in the batch runs', async () => {
    const r = await c.batch("INSERT INTO customers (full_name) VALUES (N'Never'); SELEC 2");
    expect(r.error?.number).toBe(102);
    expect(await pgRows(h.pgUrl, "SELECT count(*) FROM customers WHERE full_name = 'Never'")).toEqual([['0']]);
  });

  it('inside a transaction a failed statement leaves the transaction usable', async () => {
    const r = await c.batch(
      "BEGIN TRAN; INSERT INTO customers (id, full_name) VALUES (1, N'Duplicate'); SELECT @@TRANCOUNT AS trancount; COMMIT",
    );
    expect(r.error?.number).toBe(2627);
    expect(r.sets[0]!.rows).toEqual([[1]]);
  });

  it('SET NOCOUNT ON drops the row counts', async () => {
    expect((await c.batch('SELECT id FROM customers WHERE id <= 2')).rowCount).toBe(2);
    await c.batch('SET NOCOUNT ON');
    const r = await c.batch('SELECT id FROM customers WHERE id <= 2');
    expect(r.sets[0]!.rows).toHaveLength(2);
    expect(r.rowCount).toBe(0); // tedious adds up only the DONE tokens that carry a count
    await c.batch('SET NOCOUNT OFF');
  });

  it('variables, @@ROWCOUNT, TOP and bracketed names translate', async () => {
    const r = await c.batch(
      'DECLARE @n int = 2\nSELECT TOP (@n) [id], [full_name] FROM [dbo].[customers] ORDER BY [id]\nSELECT @@ROWCOUNT AS rc, ISNULL(NULL, N\'x\') + N\'y\' AS s, LEN(N\'abc  \') AS l',
    );
    expect(r.error).toBeUndefined();
    expect(r.sets.map((s) => s.rows)).toEqual([[[1, 'Alice Testperson'], [2, 'Bob Example']], [[2, 'xy', 3]]]);
  });

  it('when PostgreSQL ends the session\'s connection, the client gets a severity-20 error and the session ends', async () => {
    const victim = await tedious({ port: h.port, encrypt: false });
    const spid = (await victim.batch('SELECT @@SPID AS spid')).sets[0]!.rows[0]![0] as number;
    const app = `sqlserver-standin spid ${spid}`;
    await pgRows(superuserUrl(), 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
    // pg_terminate_backend only signals: wait until the backend is gone (and its FATAL sent) so the
    // next batch meets a dead connection, not one still finishing.
    for (let i = 0; i < 100; i++) {
      const left = await pgRows(superuserUrl(), 'SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [app]);
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    victim.connection.on('error', () => undefined); // tedious reports the closed socket too
    const ended = new Promise<void>((resolve) => victim.connection.once('end', () => resolve()));
    const r = await victim.batch('SELECT 1 AS never');
    expect(r.error?.message).toMatch(/lost its PostgreSQL connection/);
    await ended;
  });

  it('RESETCONNECTION undoes session options', async () => {
    await c.batch('SET NOCOUNT ON');
    await new Promise<void>((resolve, reject) => c.connection.reset((err) => (err ? reject(err) : resolve())));
    expect((await c.batch('SELECT id FROM customers WHERE id <= 2')).rowCount).toBe(2);
  });
});

// FreeTDS `tsql` (TDS 7.4) straight against the SQL Server stand-in, with encryption off
// (ENCRYPT_NOT_SUP), request (FreeTDS's default: login-only TLS) and require (TLS for the whole
// session): the shared scenario as T-SQL batches (tsql sends no RPCs, so sp_executesql, the
// procedure and sp_prepare/sp_execute go through EXEC), each result compared with what
// node-postgres reads from the same rows. tsql prints dates to the minute ("Sep  7 1953
// 12:00AM") and floats with 17 digits; the comparison reads them the same way.
// tsql cannot send ATTENTION: on its query timeout it closes the connection, and the stand-in
// must then cancel the PostgreSQL query itself.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import {
  CUSTOMER_COLUMNS,
  CUSTOMER_KINDS,
  LOGIN,
  SCENARIO,
  type StandInHarness,
  type ValueKind,
  comparableRows,
  expectedRows,
  pgRows,
  pgScalar,
  runningStandInQueries,
  startStandIn,
  waitFor,
} from './standin-support.js';

const skip = missingClient('tsql');

interface TsqlOutput {
  code: number | null;
  /** Result sets: header line split on tabs, then the rows. */
  sets: { columns: string[]; rows: string[][] }[];
  stderr: string;
}

describe.skipIf(skip)('FreeTDS tsql (TDS 7.4) against the stand-in', () => {
  let h: StandInHarness;
  let dir: string;

  beforeAll(async () => {
    h = await startStandIn('tsql');
    dir = mkdtempSync(join(tmpdir(), 'standin-tsql-'));
    const server = (name: string, encryption: string, extra = ''): string =>
      `[${name}]\n\thost = 127.0.0.1\n\tport = ${h.port}\n\ttds version = 7.4\n\tencryption = ${encryption}\n${extra}`;
    writeFileSync(
      join(dir, 'freetds.conf'),
      [
        server('off', 'off'),
        server('request', 'request'),
        server('require', 'require'),
        server('impatient', 'off', '\ttimeout = 1\n'),
      ].join(''),
    );
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `sql` as one batch; `headers` are the first columns of the result sets to expect. */
  async function tsql(server: string, sql: string, headers: readonly string[]): Promise<TsqlOutput> {
    const r = await run(findClient('tsql')!, ['-S', server, '-U', LOGIN.user, '-P', LOGIN.password, '-D', 'shop', '-o', 'fq'], {
      env: { FREETDSCONF: join(dir, 'freetds.conf') },
      input: `${sql}\ngo\n`,
      timeoutMs: 60_000,
    });
    const sets: TsqlOutput['sets'] = [];
    for (const line of r.stdout.split('\n')) {
      if (line === '') continue;
      const fields = line.split('\t');
      // A header line: its first field names a column (no data value here equals a column name).
      if (headers.includes(fields[0]!)) {
        sets.push({ columns: fields, rows: [] });
      } else {
        sets[sets.length - 1]?.rows.push(fields);
      }
    }
    return { code: r.code, sets, stderr: r.stderr };
  }

  const compare = (rows: string[][], kinds: readonly ValueKind[], expected: (string | null)[][]): void => {
    expect(comparableRows(kinds, rows)).toEqual(expectedRows('tsql', kinds, expected));
  };

  describe.each(['off', 'request', 'require'])('encryption = %s', (server) => {
    it('SELECT * FROM customers returns every row and column as PostgreSQL has them', async () => {
      const r = await tsql(server, SCENARIO.selectAll, ['id']);
      expect(r.sets).toHaveLength(1);
      expect(r.sets[0]!.columns).toEqual(CUSTOMER_COLUMNS);
      compare(r.sets[0]!.rows, CUSTOMER_KINDS, await pgRows(h.pgUrl, SCENARIO.selectAll));
    });

    it('a batch of two SELECTs gives two result sets', async () => {
      const r = await tsql(server, SCENARIO.twoResults, ['id', 'n']);
      expect(r.sets.map((s) => s.columns)).toEqual([['id', 'full_name', 'email'], ['n', 'total_salary', 'max_balance']]);
      compare(r.sets[0]!.rows, ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.twoResultsPg[0]));
      compare(r.sets[1]!.rows, ['int', 'numeric', 'numeric'], await pgRows(h.pgUrl, SCENARIO.twoResultsPg[1]));
    });

    it('errors show SQL Server numbers; PRINT shows its text', async () => {
      const r = await tsql(server, `${SCENARIO.divideByZero}\n${SCENARIO.print}`, []);
      expect(r.stderr).toContain('Msg 8134 (severity 16, state 1) from WARDEN-STANDIN Line 1:\n\t"Divide by zero error encountered."');
      expect(r.stderr).toContain('hello from print');
      const missing = await tsql(server, SCENARIO.invalidObject, []);
      expect(missing.stderr).toContain(`Msg 208 (severity 16, state 1) from WARDEN-STANDIN Line 1:\n\t"Invalid object name 'no_such_table'."`);
    });

    it('a transaction rolled back leaves no row', async () => {
      const r = await tsql(
        server,
        `BEGIN TRAN\nINSERT INTO customers (full_name, email) VALUES (N'Rolled Back', '${SCENARIO.rollbackEmail}')\nROLLBACK\n` +
          `SELECT COUNT(*) AS n FROM customers WHERE email = '${SCENARIO.rollbackEmail}'`,
        ['n'],
      );
      expect(r.sets[0]!.rows).toEqual([['0']]);
    });

    it('EXEC sp_executesql with typed parameters and OUTPUT parameters, and with rows', async () => {
      const o = SCENARIO.executeSqlOutput;
      const r = await tsql(
        server,
        `DECLARE @c int, @l nvarchar(4000)\n` +
          `EXEC sp_executesql N'${o.statement.replaceAll("'", "''")}', N'${o.params}', @min = ${o.min}, @cnt = @c OUTPUT, @label = @l OUTPUT\n` +
          `SELECT @c AS cnt, @l AS label`,
        ['cnt'],
      );
      expect(r.sets[0]!.rows).toEqual([[await pgScalar(h.pgUrl, o.pg), `over ${o.min}`]]);
      const q = SCENARIO.executeSqlRows;
      const rows = await tsql(server, `EXEC sp_executesql N'${q.statement}', N'${q.params}', @id = ${q.id}, @name = N'${q.name}'`, ['id']);
      compare(rows.sets[0]!.rows, ['int', 'text', 'text', 'numeric'], await pgRows(h.pgUrl, q.pg));
    });

    it('EXEC dbo.count_active returns 7 and its OUTPUT parameter', async () => {
      const r = await tsql(
        server,
        `DECLARE @r int, @c int\nEXEC @r = dbo.count_active @min_rank = ${SCENARIO.procedure.minRank}, @cnt = @c OUTPUT\nSELECT @r AS status, @c AS cnt`,
        ['status'],
      );
      expect(r.sets[0]!.rows).toEqual([[String(SCENARIO.procedure.status), await pgScalar(h.pgUrl, SCENARIO.procedure.pg)]]);
    });

    it('sp_prepare once, sp_execute twice, sp_unprepare', async () => {
      const r = await tsql(
        server,
        "DECLARE @h int\nEXEC sp_prepare @h OUTPUT, N'@P0 int', N'SELECT id, full_name, email FROM customers WHERE id <= @P0 ORDER BY id'\n" +
          'EXEC sp_execute @h, 3\nEXEC sp_execute @h, 1\nEXEC sp_unprepare @h',
        ['id'],
      );
      // sp_prepare answers with the statement's columns and no rows, then the two executions.
      expect(r.sets).toHaveLength(3);
      expect(r.sets[0]!.rows).toEqual([]);
      compare(r.sets[1]!.rows, ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.prepared.pg(3)));
      compare(r.sets[2]!.rows, ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.prepared.pg(1)));
    });

    it('a large nvarchar(max) value arrives whole', async () => {
      const r = await tsql(server, SCENARIO.large, ['long_text']);
      expect(r.sets[0]!.rows).toEqual(await pgRows(h.pgUrl, SCENARIO.largePg));
    });
  });

  it('when tsql gives up on a pg_sleep query and hangs up, the stand-in cancels the query in PostgreSQL', async () => {
    const started = Date.now();
    const r = await tsql('impatient', SCENARIO.sleep, ['slept']);
    expect(r.stderr).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await waitFor(async () => !(await runningStandInQueries('standin_tsql')).some((q) => q.includes('pg_sleep')))).toBe(true);
    const after = await tsql('off', 'SELECT 1 AS after_cancel', ['after_cancel']);
    expect(after.sets[0]!.rows).toEqual([['1']]);
  });
});

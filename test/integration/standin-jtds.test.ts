// jTDS 1.3.1 (TDS 7.1: no NBCROW, date/datetime2 as NVARCHAR text, nvarchar(max) as NTEXT,
// packet size 0 -> ENVCHANGE 4) straight against the SQL Server stand-in, plaintext and with
// ssl=request (login-only TLS inside PRELOGIN packets) and ssl=require (TLS for the whole
// session): test/clients/tds/JtdsClient.java runs the shared scenario, each step is compared
// with what node-postgres reads from the same rows.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
} from './standin-support.js';

const skip = missingClient('java') || missingClient('javac') || missingClient('jtds');
const SOURCE = fileURLToPath(new URL('../clients/tds/JtdsClient.java', import.meta.url));

interface JtdsSet {
  columns: string[];
  rows: unknown[][];
}

describe.skipIf(skip)('jTDS 1.3.1 (TDS 7.1) against the stand-in', () => {
  let h: StandInHarness;
  let classes: string;

  beforeAll(async () => {
    classes = mkdtempSync(join(tmpdir(), 'standin-jtds-'));
    const javac = await run(findClient('javac')!, ['-encoding', 'UTF-8', '-cp', findClient('jtds')!, '-d', classes, SOURCE], {
      timeoutMs: 120_000,
    });
    expect(javac.code, javac.stderr).toBe(0);
    h = await startStandIn('jtds');
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
    if (classes) rmSync(classes, { recursive: true, force: true });
  });

  describe.each(['off', 'request', 'require'])('ssl=%s', (ssl) => {
    let steps: Map<string, Record<string, unknown>>;

    beforeAll(async () => {
      const r = await run(
        findClient('java')!,
        ['-cp', `${findClient('jtds')!}:${classes}`, 'JtdsClient', '127.0.0.1', String(h.port), LOGIN.user, LOGIN.password, ssl],
        { timeoutMs: 120_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      steps = new Map(
        r.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .map((s) => [s.step as string, s]),
      );
    }, 150_000);

    const set = (step: string, key = 'rows'): JtdsSet => steps.get(step)![key] as JtdsSet;
    const compare = (actual: JtdsSet, kinds: readonly ValueKind[], expected: (string | null)[][]): void => {
      expect(comparableRows(kinds, actual.rows)).toEqual(expectedRows('jtds', kinds, expected));
    };

    it('SELECT * FROM customers returns every row and column as PostgreSQL has them', async () => {
      const s = set('select_all');
      expect(s.columns).toEqual(CUSTOMER_COLUMNS);
      compare(s, CUSTOMER_KINDS, await pgRows(h.pgUrl, SCENARIO.selectAll));
    });

    it('a batch of two SELECTs gives two result sets', async () => {
      const sets = steps.get('two_results')!.sets as JtdsSet[];
      expect(sets.map((s) => s.columns)).toEqual([['id', 'full_name', 'email'], ['n', 'total_salary', 'max_balance']]);
      compare(sets[0]!, ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.twoResultsPg[0]));
      compare(sets[1]!, ['int', 'numeric', 'numeric'], await pgRows(h.pgUrl, SCENARIO.twoResultsPg[1]));
    });

    it('errors carry SQL Server numbers; PRINT is a warning', () => {
      expect(steps.get('divide_by_zero')).toMatchObject({ code: 8134, message: 'Divide by zero error encountered.' });
      expect(steps.get('invalid_object')).toMatchObject({ code: 208, message: "Invalid object name 'no_such_table'." });
      expect(steps.get('print')).toMatchObject({ message: 'hello from print' });
    });

    it('a rolled-back transaction (autocommit off: IMPLICIT_TRANSACTIONS) leaves no row', () => {
      expect(steps.get('rollback')).toMatchObject({ inserted: 1, after: 0 });
    });

    it('sp_executesql by name with OUTPUT parameters and with rows', async () => {
      const o = SCENARIO.executeSqlOutput;
      expect(steps.get('executesql_output')).toMatchObject({ cnt: Number(await pgScalar(h.pgUrl, o.pg)), label: `over ${o.min}` });
      compare(set('executesql_rows'), ['int', 'text', 'text', 'numeric'], await pgRows(h.pgUrl, SCENARIO.executeSqlRows.pg));
    });

    it('{? = call dbo.count_active(?, ?)} returns 7 and the OUTPUT parameter', async () => {
      expect(steps.get('procedure')).toMatchObject({
        status: SCENARIO.procedure.status,
        cnt: Number(await pgScalar(h.pgUrl, SCENARIO.procedure.pg)),
      });
    });

    it('a PreparedStatement runs through sp_prepare / sp_execute', async () => {
      compare(set('prepared', 'first'), ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.prepared.pg(3)));
      compare(set('prepared', 'second'), ['int', 'text', 'text'], await pgRows(h.pgUrl, SCENARIO.prepared.pg(1)));
    });

    it('a large nvarchar(max) value (NTEXT to TDS 7.1) arrives whole', async () => {
      expect(set('large').rows).toEqual(await pgRows(h.pgUrl, SCENARIO.largePg));
    });

    it('Statement.cancel() (ATTENTION) stops the pg_sleep query quickly and the connection goes on', async () => {
      const c = steps.get('cancel')!;
      expect(c).toMatchObject({ cancelled: true, sqlstate: 'HY008', after: 1 });
      expect(c.ms as number).toBeLessThan(10_000);
      expect((await runningStandInQueries('standin_jtds')).filter((q) => q.includes('pg_sleep'))).toEqual([]);
    });
  });
});

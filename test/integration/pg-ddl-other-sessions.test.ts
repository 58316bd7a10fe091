// DDL in one session makes warden read the target's masking catalog again. Other sessions that
// send a statement while it is being read must wait for it (as the DDL session does), not be
// refused with "the catalog of the target is being read again after DDL; retry the statement":
// an application whose startup runs CREATE TABLE IF NOT EXISTS while its pool is busy saw that.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSsnMaskedWarden } from '../helpers/masked-warden.js';
import type { TestWarden } from '../helpers/warden.js';

let w: TestWarden;

beforeAll(async () => {
  w = await startSsnMaskedWarden();
});

afterAll(async () => {
  await w?.stop();
});

it('statements of other sessions wait for the catalog re-read after DDL', async () => {
  const token = await w.token();
  const clients = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
      await c.connect();
      return c;
    }),
  );
  const [ddl, ...others] = clients as [pg.Client, ...pg.Client[]];
  try {
    const failures: string[] = [];
    for (let i = 0; i < 8; i++) {
      await ddl.query(`CREATE TEMP TABLE other_sessions_${i} (x int)`);
      const results = await Promise.allSettled(others.map((c) => c.query('SELECT id, ssn FROM customers WHERE id = $1', [1])));
      for (const r of results) if (r.status === 'rejected') failures.push(String((r.reason as Error).message));
    }
    expect(failures).toEqual([]);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

// A table created in the agent's open transaction is unknown to warden's masking catalog until
// commit. Filling it with literal and parameter values (JDBC batch into a staging temp table,
// an ORM migration that seeds rows) copies no protected value, so it must not be refused as
// "INSERT copies values warden cannot trace"; copying columns into it still is judged as before.
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

it('INSERT … VALUES into a table created in the same transaction', async () => {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query('CREATE TEMP TABLE staging (id int, v text)');
    await c.query("INSERT INTO staging VALUES (1, 'a'), (2, 'b')");
    await c.query('INSERT INTO staging VALUES ($1, $2)', [3, 'c']);
    await c.query('INSERT INTO staging (id, v) VALUES ($1, upper($2))', [4, 'd']);
    // Copying a protected column into it is still refused.
    const err = await c.query('INSERT INTO staging SELECT id, ssn FROM customers').then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('42501');
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
});

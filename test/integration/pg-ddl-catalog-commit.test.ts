// DDL that commits later than its CommandComplete — inside BEGIN … COMMIT (psycopg2's default,
// node-postgres and postgres.js transactions) or through the extended protocol (committed at Sync)
// — must leave warden's masking catalog current once it is committed: the next statement on the
// new table is judged against a catalog that knows it, not refused as "a condition could not be
// traced" until the snapshot ages out a minute later.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSsnMaskedWarden } from '../helpers/masked-warden.js';
import type { TestWarden } from '../helpers/warden.js';

const RUN = `ddlc_${process.pid}_${Math.random().toString(36).slice(2, 6)}`;

let w: TestWarden;
let token: string;

beforeAll(async () => {
  w = await startSsnMaskedWarden(`
transcripts:
  capture: first
`);
  token = await w.token();
});

afterAll(async () => {
  await w?.stop();
});

describe('masking catalog after DDL that commits later', () => {
  it('node-postgres: CREATE TABLE inside BEGIN … COMMIT, then a WHERE on the new table', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    try {
      // The catalog is loaded by the first masked statement.
      await c.query('SELECT id FROM customers WHERE id = 1');
      await c.query('BEGIN');
      await c.query(`CREATE TABLE ${RUN}_a (id int)`);
      await c.query('COMMIT');
      const r = await c.query(`SELECT count(*)::int AS n FROM ${RUN}_a WHERE id < 5`);
      expect(r.rows[0].n).toBe(0);
      await c.query(`DROP TABLE ${RUN}_a`);
    } finally {
      await c.end();
    }
  });

  it('postgres.js: CREATE TABLE through the extended protocol in sql.begin(), then a WHERE on it', async () => {
    const sql = postgres({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca }, max: 1, onnotice: () => undefined, connect_timeout: 5 });
    try {
      await sql`SELECT id FROM customers WHERE id = ${1}`;
      await sql.begin(async (tx) => {
        await tx.unsafe(`CREATE TABLE ${RUN}_b (id int)`);
      });
      const r = await sql.unsafe(`SELECT count(*)::int AS n FROM ${RUN}_b WHERE id < $1`, [5]);
      expect(r[0]?.n).toBe(0);
      await sql.unsafe(`DROP TABLE ${RUN}_b`);
    } finally {
      await sql.end();
    }
  });
});

// A NUL character inside statement text (a JS string with \u0000 passed as SQL): PostgreSQL
// answers the malformed Query or Parse with ERROR 08P01 "invalid message format" and the session
// goes on; warden closed the whole session with a FATAL instead.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { directUrl } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
let token: string;

beforeAll(async () => {
  w = await startTestWarden({ yaml: 'transcripts:\n  capture: first\n' });
  token = await w.token();
});

afterAll(async () => {
  await w?.stop();
});

async function simpleQuery(c: pg.Client): Promise<unknown[]> {
  const err = await c.query("SELECT 'a\u0000b' AS t").then(() => undefined, (e: Error & { code?: string }) => e);
  return [err?.code, (await c.query('SELECT 1 AS one')).rows];
}

it('node-postgres simple Query: the same ERROR as PostgreSQL, and the session goes on', async () => {
  const d = new pg.Client({ connectionString: directUrl() });
  const v = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
  await d.connect();
  await v.connect();
  try {
    const direct = await simpleQuery(d);
    expect(direct).toEqual(['08P01', [{ one: 1 }]]);
    expect(await simpleQuery(v)).toEqual(direct);
  } finally {
    await d.end();
    await v.end();
  }
});

it('postgres.js extended Parse inside a transaction: ERROR 08P01, the transaction fails, the session goes on', async () => {
  const sql = postgres({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca }, max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    const err = await sql.begin(async (tx) => {
      await tx.unsafe('SELECT 1');
      await tx.unsafe("SELECT 'a\u0000b' AS t");
    }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('08P01');
    expect(await sql`SELECT ${2}::int AS two`).toEqual([{ two: 2 }]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

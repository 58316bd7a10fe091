// A statement refused in an extended batch that ends with Flush instead of Sync: postgres.js
// sends Parse + Describe + Flush for a query with parameters whose types it does not know yet, and
// waits for the answer before it sends Bind/Execute/Sync. PostgreSQL sends an error at the Flush;
// warden must too (it used to hold its error back until a Sync that never came: the client hung).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
let token: string;

beforeAll(async () => {
  w = await startTestWarden({
    yaml: `
rules:
  - { name: no-drop, match: { kinds: [drop] }, action: deny, message: no drops }
masking:
  rules:
    - { name: national-ids, columns: [customers.ssn], strategy: partial, options: { keep_last: 4 } }
transcripts:
  capture: first
  fsync: each
`,
  });
  token = await w.token();
});

afterAll(async () => {
  await w?.stop();
});

function client(): postgres.Sql {
  return postgres({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca }, max: 1, onnotice: () => undefined, connect_timeout: 5, idle_timeout: 1 });
}

/** Rejects instead of hanging the test for its whole timeout. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms))]);
}

describe('refusal answered at Flush (postgres.js describe-first)', () => {
  it('a masking refusal of a parameterised query reaches the client, and the session goes on', async () => {
    const sql = client();
    try {
      const err = await within(sql.unsafe('SELECT count(*) FROM customers WHERE ssn LIKE $1', ['9%']).then(() => undefined, (e: unknown) => e));
      expect((err as { code?: string }).code).toBe('42501');
      expect(String((err as Error).message)).toMatch(/national-ids/);
      const r = await within(sql.unsafe('SELECT $1::int + 1 AS n', [41]));
      expect(r[0]?.n).toBe(42);
    } finally {
      await sql.end();
    }
  });

  it('a statement-rule refusal inside sql.begin() fails the transaction as PostgreSQL would', async () => {
    const sql = client();
    try {
      const err = await within(
        sql.begin(async (tx) => {
          await tx.unsafe('SELECT 1 AS one');
          await tx.unsafe('DROP TABLE IF EXISTS flush_nothing_here');
        }).then(() => undefined, (e: unknown) => e),
      );
      expect((err as { code?: string }).code).toBe('42501');
      const r = await within(sql.unsafe('SELECT count(*)::int AS n FROM customers WHERE id = $1', [1]));
      expect(r[0]?.n).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('the transcript has one error result per refusal', async () => {
    const dir = join(w.dataDir, 'transcripts');
    const lines = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { k: string; d: { text?: string; verdict?: string; error?: { code: string }; result?: { error?: { code: string } } } });
    const refused = lines.filter((l) => l.k === 'statement' && l.d.verdict === 'deny');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    const errors = lines.filter((l) => (l.k === 'result' && l.d.error?.code === '42501') || (l.k === 'statement' && l.d.result?.error?.code === '42501'));
    expect(errors.length).toBe(refused.length);
  });
});

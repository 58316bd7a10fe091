// An error that quotes a protected value (a failed cast of a masked column) reaches the agent
// scrubbed ("****"); the transcript must record the message the agent saw, not the clear value
// ("a transcript never holds a value the agent could not see", docs/transcripts.md).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { directUrl } from '../helpers/pg-env.js';
import { startSsnMaskedWarden } from '../helpers/masked-warden.js';
import type { TestWarden } from '../helpers/warden.js';

let w: TestWarden;

beforeAll(async () => {
  w = await startSsnMaskedWarden(`
transcripts:
  capture: all
  fsync: each
`);
});

afterAll(async () => {
  await w?.stop();
});

it('the recorded error is the scrubbed one the agent got', async () => {
  const direct = new pg.Client({ connectionString: directUrl() });
  await direct.connect();
  const ssn = String((await direct.query('SELECT ssn FROM customers WHERE id = 1')).rows[0].ssn).trim();
  await direct.end();
  expect(ssn.length).toBeGreaterThan(4);

  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  const seen: string[] = [];
  try {
    for (const sql of ['SELECT ssn::int FROM customers WHERE id = 1', 'SELECT ssn::int FROM customers WHERE id = $1']) {
      const err = await c.query(sql, sql.includes('$1') ? [1] : undefined).then(() => undefined, (e: Error) => e);
      expect(err).toBeDefined();
      seen.push(err!.message);
      expect(err!.message).not.toContain(ssn);
    }
  } finally {
    await c.end();
  }
  const dir = join(w.dataDir, 'transcripts');
  const text = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
  expect(text).toContain('invalid input syntax for type integer');
  expect(text).not.toContain(ssn);
  for (const m of seen) expect(text).toContain(JSON.stringify(m).slice(1, -1));
});

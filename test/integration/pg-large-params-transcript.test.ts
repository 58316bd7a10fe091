// Bind parameters of several MB (node-postgres: a text value, and a Buffer sent in binary): the
// transcript keeps each cut to its limit with its true full size (fullBytes: it was the size of
// warden's display cut, 16384 for a 6 MB text), cut at a character boundary.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;

beforeAll(async () => {
  w = await startTestWarden({ yaml: 'transcripts:\n  capture: digest\n  fsync: each\n' });
});

afterAll(async () => {
  await w?.stop();
});

it('multi-MB parameters are recorded clipped, with their real size', async () => {
  const text = 'é'.repeat(3 * 1024 * 1024);
  const bin = Buffer.alloc(1024 * 1024, 0xcd);
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  try {
    const r = await c.query('SELECT length($1::text) AS n, length($2::bytea) AS m', [text, bin]);
    expect(r.rows).toEqual([{ n: 3 * 1024 * 1024, m: 1024 * 1024 }]);
  } finally {
    await c.end();
  }
  const dir = join(w.dataDir, 'transcripts');
  const st = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as { k: string; d: { text?: string; params?: { value: string | null; fullBytes?: number }[] } })
    .find((x) => x.k === 'statement' && x.d.text?.includes('length($2::bytea)'));
  const [p1, p2] = st?.d.params ?? [];
  expect(p1?.fullBytes).toBe(Buffer.byteLength(text));
  expect(p2?.fullBytes).toBe(2 + 2 * bin.length);
  for (const p of [p1, p2]) {
    expect(Buffer.byteLength(p?.value ?? '')).toBeLessThanOrEqual(4096);
    expect(p?.value).not.toContain('\ufffd');
  }
});

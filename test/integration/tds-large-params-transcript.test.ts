// tedious sends NVARCHAR(MAX) / VARBINARY(MAX) parameters of several MB (PLP chunks over many
// packets) through warden; the client gets what it gets from the stand-in, and the transcript
// keeps each parameter cut to its limit with its true full size (fullBytes), never a cut
// character (no U+FFFD where a UTF-8 sequence or a surrogate pair was split).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

let h: TdsHarness;

beforeAll(async () => {
  h = await startTdsHarness({ yaml: 'transcripts:\n  capture: all\n  fsync: each\n' });
});

afterAll(async () => {
  await h?.stop();
});

it('multi-MB PLP parameters: results intact, transcript clipped with the real full size', async () => {
  const text = 'é😀'.repeat(600_000); // 1.2 M UTF-16 units, 3.6 MB as UTF-8
  const bin = Buffer.alloc(3 * 1024 * 1024, 0xab);
  const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, ca: h.tw.ca, auth: { password: await h.tw.token() }, packetSize: 32767 }));
  try {
    const r = await query(c, 'SELECT LEN(@s) AS n, DATALENGTH(@b) AS m', [['s', TYPES.NVarChar, text], ['b', TYPES.VarBinary, bin]]);
    expect(r.sets[0]?.rows).toEqual([[1_200_000, 3 * 1024 * 1024]]); // the stand-in's LEN counts code points
  } finally {
    await closeTedious(c);
  }
  const dir = join(h.tw.dataDir, 'transcripts');
  const records = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as { k: string; d: { text?: string; params?: { name?: string; type: string; value: string | null; fullBytes?: number }[] } });
  const st = records.find((r) => r.k === 'statement' && r.d.text?.includes('DATALENGTH(@b)'));
  const params = Object.fromEntries((st?.d.params ?? []).map((p) => [p.name, p]));
  expect(params['@s']?.fullBytes).toBe(Buffer.byteLength(text));
  expect(params['@b']?.fullBytes).toBe(2 + 2 * bin.length);
  for (const p of [params['@s'], params['@b']]) {
    expect(Buffer.byteLength(p?.value ?? '')).toBeLessThanOrEqual(4096);
    expect(p?.value).not.toContain('\ufffd');
  }
  expect(text.startsWith(params['@s']?.value ?? 'x')).toBe(true);
});

// SQL Server's informational messages (PRINT, RAISERROR below class 11: INFO tokens) are part of what
// came back: tedious through warden to the stand-in, and the transcript's result records keep them
// with the statement that sent them.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Request, type Connection } from 'tedious';
import { readStore } from '../../src/audit/reader.js';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { closeTedious, connectTedious, startTdsHarness, tediousConfig, type TdsHarness } from '../helpers/tds.js';

type Rec = TranscriptRecord<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
let h: TdsHarness;
const records: Rec[] = [];
const infos: string[] = [];

const BATCH = "PRINT 'counting customers'; SELECT count(*) AS n FROM customers";

function batch(c: Connection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => c.execSqlBatch(new Request(sql, (err) => (err ? reject(err) : resolve()))));
}

beforeAll(async () => {
  h = await startTdsHarness({
    plaintextTokens: 'loopback',
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'tds-notices' };
    },
  });
  const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
  c.on('infoMessage', (m: { number: number; message: string }) => infos.push(`${m.number} ${m.message}`));
  try {
    await batch(c, BATCH);
  } finally {
    await closeTedious(c);
  }
  await h.tw.warden.close(500);
  for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) records.push(r.record as Rec);
});

afterAll(async () => {
  await h?.stop();
});

it('records a PRINT with the statement that sent it, as tedious got it', () => {
  expect(infos).toContain('0 counting customers');
  const st = records.find((r) => r.k === 'statement' && r.d.text === BATCH);
  expect(st).toBeDefined();
  const results = records.filter((r) => r.k === 'result' && r.sid === st!.sid && r.d.st === st!.d.st).map((r) => r.d);
  expect(results[0]?.notices).toEqual([{ severity: 'INFO', code: '0', message: 'counting customers' }]);
  // The SELECT's result set comes after it, without notices.
  const counted = results.find((d) => d.columns?.[0]?.name === 'n');
  expect(counted).toBeDefined();
  expect(counted).not.toHaveProperty('notices');
});

// `warden replay` of a long session streams its timeline: two passes over the files (which session,
// its summary; then its records one at a time), so memory does not grow with the session. Run here
// with a 64 MB heap on a session of 80,000 records (some 30 MB of transcript, 250 MB as objects).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSession, renderReplayText, replayJson } from '../../src/audit/replay.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { openStore, recordSession, tempDataDir, transcriptsDir } from '../unit/audit-support.js';

let data: { dir: string; cleanup: () => void };

beforeAll(async () => {
  data = tempDataDir();
  const store = await openStore(data.dir, { checkpointEveryRecords: 5000 });
  await (await recordSession(store, 'sess-short-0001', 3)).sessionEnd('client closed');
  const long = await recordSession(store, 'sess-long-00001', 0);
  for (let i = 0; i < 40_000; i++) {
    // As the relays record under fsync: interval, without waiting for each write.
    const st = long.statementNoWait({ text: `SELECT id, email FROM customers WHERE id = ${i}`, classification: { class: 'read', relations: ['public.customers'] }, verdict: 'allow' });
    long.resultNoWait({ statementId: st, columns: [{ name: 'id', type: 'int4', masked: null }], rows: 1, bytes: 8, capture: { mode: 'none' }, tag: 'SELECT 1' });
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  await long.sessionEnd('client closed');
  await (await recordSession(store, 'sess-open-00001', 2)); // never ends
  await store.close();
}, 120_000);
afterAll(() => data?.cleanup());

function cli(args: string[], heapMb: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const main = join(projectRoot(), 'dist/src/cli/main.js');
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, main, ...args, '--data-dir', data.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr }));
  });
}

describe('warden replay of a long session', () => {
  it('prints the text timeline of 80,000 records with a 64 MB heap', async () => {
    const res = await cli(['replay', 'sess-long'], 64);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^session sess-long-00001 /);
    expect(res.stdout.match(/ SELECT 1$/gm)).toHaveLength(40_000);
    expect(res.stdout.trimEnd().split('\n').at(-1)).toMatch(/session end \(client closed\) after 40000 statements$/);
  }, 120_000);

  it('prints the same JSON document as before, streamed, with a 64 MB heap', async () => {
    const res = await cli(['replay', 'sess-long', '--format', 'json'], 64);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const doc = JSON.parse(res.stdout) as { session: { sessionId: string; statements: number }; entries: unknown[]; ended: boolean };
    expect(doc.session).toMatchObject({ sessionId: 'sess-long-00001', statements: 40_000 });
    expect(doc.entries).toHaveLength(80_002);
    expect(doc.ended).toBe(true);
  }, 120_000);

  it('prints exactly what the in-memory replay renders, text and JSON, for short and unfinished sessions', async () => {
    for (const id of ['sess-short-0001', 'sess-open-00001']) {
      const replay = await loadSession(transcriptsDir(data.dir), id);
      expect((await cli(['replay', id], 256)).stdout).toBe(`${renderReplayText(replay)}\n`);
      expect((await cli(['replay', id, '--format', 'json'], 256)).stdout).toBe(`${JSON.stringify(replayJson(replay), null, 2)}\n`);
    }
  }, 60_000);
});

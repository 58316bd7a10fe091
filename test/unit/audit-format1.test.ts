// Stores written in format 1 (ISO `ts`, every member written) still verify and read as they did,
// and read as the same records as the format 2 store the current writer makes of the same sessions.
import { chmodSync, cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FORMAT_VERSION, parseLine } from '../../src/audit/frame.js';
import { readStore, type StoredRecord } from '../../src/audit/reader.js';
import { loadSession } from '../../src/audit/replay.js';
import type { TranscriptStore } from '../../src/audit/recorder.js';
import { openStore, recordQuickStatements, recordScenario, recordSession, SCENARIO, segmentFiles, tempDataDir, transcriptsDir, verifyStore } from './audit-support.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'transcripts-format1');

let old: { dir: string; cleanup: () => void };
let now: { dir: string; cleanup: () => void };
const stores: TranscriptStore[] = [];

beforeEach(() => {
  old = tempDataDir('warden-format1-');
  cpSync(FIXTURE, old.dir, { recursive: true });
  now = tempDataDir('warden-format2-');
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  old.cleanup();
  now.cleanup();
});

async function sessionRecords(dir: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const { record: r } of readStore(transcriptsDir(dir)) as AsyncGenerator<StoredRecord>) {
    if (r.sid === undefined) continue;
    // A result's duration (and so a merged result's ts) is measured, not scripted.
    const { ms: _ms, ...d } = r.d as Record<string, unknown>;
    out.push({ k: r.k, sid: r.sid, ts: r.k === 'result' ? 'measured' : r.ts, d: r.k === 'result' ? d : r.d });
  }
  return out;
}

function openFormats(dir: string): unknown[] {
  return segmentFiles(dir).map((f) => {
    const first = parseLine(Buffer.from(readFileSync(f, 'utf8').split('\n')[0] as string));
    return first.ok ? (first.record.d as { format: number }).format : undefined;
  });
}

describe('a format 1 store', () => {
  it('verifies clean', async () => {
    expect(openFormats(old.dir)).toEqual([1, 1]);
    const report = await verifyStore(old.dir);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.segments.map((s) => s.status)).toEqual(['intact', 'intact']);
  });

  it('reads as the same records as a format 2 store of the same sessions', async () => {
    await recordScenario(now.dir);
    await recordQuickStatements(now.dir);
    expect(openFormats(now.dir)).toEqual([FORMAT_VERSION, FORMAT_VERSION]);
    expect((await verifyStore(now.dir)).findings).toEqual([]);
    const written = segmentFiles(now.dir).map((f) => readFileSync(f, 'utf8'));
    const fixture = segmentFiles(old.dir).map((f) => readFileSync(f, 'utf8'));
    expect(written.join('').length).toBeLessThan(fixture.join('').length);

    const before = await sessionRecords(old.dir);
    expect(before.length).toBeGreaterThan(20);
    expect(await sessionRecords(now.dir)).toEqual(before);
    expect(before).toContainEqual({
      k: 'result',
      sid: SCENARIO.e,
      ts: 'measured',
      d: { st: 1, columns: [{ name: 'abalance', type: 'int4', masked: null, table: 'public.pgbench_accounts' }], rows: 1, bytes: 12, capture: { mode: 'digest', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), rows: 1 }, tag: 'SELECT 1' },
    });
  });

  it('is continued in format 2 by a current writer of the same instance, and the mixed store verifies', async () => {
    chmodSync(join(old.dir, 'keys', 'transcript-ed25519.pem'), 0o600);
    const before = await sessionRecords(old.dir);
    const store = await openStore(old.dir);
    stores.push(store);
    await recordSession(store, 'sess-f-upgraded', 3);
    await stores.pop()?.close();
    expect(openFormats(old.dir)).toEqual([1, 1, FORMAT_VERSION]);
    const report = await verifyStore(old.dir);
    expect(report.findings).toEqual([]);
    expect(report.segments.map((s) => s.status)).toEqual(['intact', 'intact', 'intact']);
    const after = await sessionRecords(old.dir);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).map((r) => (r as { k: string }).k)).toEqual(['session-start', 'statement', 'result', 'statement', 'result', 'statement', 'result']);
  });

  it('replays as before', async () => {
    const replay = await loadSession(transcriptsDir(old.dir), SCENARIO.e);
    expect(replay.entries.map((e) => e.kind)).toEqual(['session-start', 'statement', 'result', 'statement', 'result', 'statement', 'result', 'statement', 'result', 'session-end']);
    expect(replay.entries[1]).toMatchObject({ at: '2026-01-13T07:00:00.000Z' });
  });
});

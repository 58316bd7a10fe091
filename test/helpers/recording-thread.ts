// Transcripts of the recording thread (src/pg/recording/) against the statement flow in line: a
// warden with the thread on or off, and what its transcript says without what legitimately
// differs between two runs of the same script.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import type { TranscriptsConfig, WardenConfig } from '../../src/config/types.js';
import { verifyStore } from '../unit/audit-support.js';
import { startTestWarden, type TestWarden } from './warden.js';

/**
 * A warden recording every PostgreSQL session on the thread (`thread`) or in line, capture `all`
 * unless `transcripts` says otherwise, instance `w1`. Its stop and data directory removal are
 * pushed onto `cleanups`; stop() may also be called by the test (once is enough).
 */
export async function recordingWarden(
  thread: boolean,
  cleanups: (() => Promise<void> | void)[],
  opts: { maxBufferedBytes?: number; transcripts?: Partial<TranscriptsConfig>; mutate?: (config: WardenConfig) => void } = {},
): Promise<TestWarden> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-thread-'));
  const w = await startTestWarden({
    dataDir,
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', recordingThread: thread, instanceId: 'w1', ...opts.transcripts };
      if (opts.maxBufferedBytes) config.sessions.maxBufferedBytes = opts.maxBufferedBytes;
      opts.mutate?.(config);
    },
  });
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= w.stop());
  cleanups.push(stop);
  return { ...w, stop };
}

const KINDS = ['session-start', 'statement', 'result', 'session-end'];

/**
 * What a transcript says of its sessions, without what differs between two runs of the same
 * script: record times and durations, instance, client port, the dev issuer's principal fields.
 * Records are grouped by session (in the order sessions start) and by kind within a session:
 * how a pipeline's statement records interleave with its results' depends on when the server's
 * answers arrived, and so does the interleaving of concurrent sessions.
 */
export async function transcriptOf(dataDir: string): Promise<{ instances: Set<string>; records: unknown[] }> {
  const instances = new Set<string>();
  const bySession = new Map<string, { k: string; d: Record<string, any> }[]>();
  for await (const { record, instance } of readStore(join(dataDir, 'transcripts'))) {
    if (!KINDS.includes(record.k)) continue;
    instances.add(instance);
    const d = structuredClone(record.d) as Record<string, any>;
    delete d.ms;
    delete d.instance;
    if (record.k === 'session-start') {
      delete d.client.port;
      // Each warden has its own dev issuer (its address and the object id it derives).
      delete d.principal.tokenExpiresAt;
      delete d.principal.issuer;
      delete d.principal.objectId;
    }
    const sid = record.sid ?? '';
    let list = bySession.get(sid);
    if (!list) bySession.set(sid, (list = []));
    list.push({ k: record.k, d });
  }
  const records = [...bySession.values()].flatMap((list) => KINDS.flatMap((k) => list.filter((r) => r.k === k)));
  return { instances, records };
}

/** Clients that name statements at random (postgres.js): names become s1, s2 … in order of first use. */
function renameStatements(records: unknown[]): void {
  const names = new Map<string, string>();
  for (const r of records as { d: { name?: string } }[]) {
    const name = r.d.name;
    if (name === undefined) continue;
    const renamed = names.get(name) ?? `s${names.size + 1}`;
    names.set(name, renamed);
    r.d.name = renamed;
  }
}

/**
 * Stops both wardens and expects the thread's transcript (instance w1.rec only) to say what the
 * in-line one (w1 only) says, and its chain to verify. Returns the thread's records.
 */
export async function expectSameTranscripts(inline: TestWarden, threaded: TestWarden, opts: { randomNames?: boolean } = {}): Promise<any[]> {
  await inline.stop();
  await threaded.stop();
  const [ta, tb] = [await transcriptOf(inline.dataDir), await transcriptOf(threaded.dataDir)];
  if (opts.randomNames) for (const t of [ta, tb]) renameStatements(t.records);
  expect(ta.instances).toEqual(new Set(['w1']));
  expect(tb.instances).toEqual(new Set(['w1.rec']));
  expect(tb.records).toEqual(ta.records);
  const report = await verifyStore(threaded.dataDir);
  expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  return tb.records as any[];
}

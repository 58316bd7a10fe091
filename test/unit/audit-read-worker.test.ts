// The admin API's transcript reads run on a worker thread (src/audit/read-worker.ts): the answer is
// the one the same read gives on the calling thread, jobs queue one after another, and a reader's
// errors come back with their class (the API answers 404 / 413 by it).
import { describe, expect, it } from 'vitest';
import { isMainThread } from 'node:worker_threads';
import { TranscriptReadError, TranscriptTooLargeError } from '../../src/audit/errors.js';
import { runReadJob, runReadJobOffThread, type ReadJob } from '../../src/audit/read-worker.js';
import { openStore, recordSession, tempDataDir, transcriptsDir } from './audit-support.js';

async function store(): Promise<{ dir: string; publicKeyFile: string; cleanup: () => void }> {
  const data = tempDataDir();
  const s = await openStore(data.dir);
  await (await recordSession(s, 'sess-worker-0001', 5)).sessionEnd('client closed');
  await (await recordSession(s, 'sess-worker-0002', 2)).sessionEnd('client closed');
  await s.close();
  return { dir: transcriptsDir(data.dir), publicKeyFile: s.publicKeyFile, cleanup: data.cleanup };
}

describe('transcript reads on a worker thread', () => {
  it('answer as the same reads on the calling thread do, one job after another', async () => {
    expect(isMainThread).toBe(true);
    const s = await store();
    try {
      const jobs: ReadJob[] = [
        { op: 'verify', dir: s.dir, publicKeyFile: s.publicKeyFile },
        { op: 'sessions', dir: s.dir, filter: {} },
        { op: 'session', dir: s.dir, id: 'sess-worker-0001', maxRecords: 1000 },
        { op: 'review', dir: s.dir, options: { principal: 'reporting-agent', since: new Date(0), until: new Date(Date.now() + 60_000) }, format: 'html' },
      ];
      // Started together: they queue, and each gets its own answer.
      const off = await Promise.all(jobs.map((j) => runReadJobOffThread(j)));
      const here = await Promise.all(jobs.map((j) => runReadJob(j)));
      // The review says when it was generated: the rest is the same.
      const same = (answers: { body: string; ok: boolean }[]): { body: string; ok: boolean }[] => answers.map((a) => ({ ...a, body: a.body.replace(/generated [^<]*/, 'generated …') }));
      expect(same(off)).toEqual(same(here));
      expect(off[0]!.ok).toBe(true);
      expect(JSON.parse(off[1]!.body).sessions).toHaveLength(2);
      expect(JSON.parse(off[2]!.body).session.sessionId).toBe('sess-worker-0001');
      expect(off[3]!.body).toMatch(/^<!doctype html>/i);
    } finally {
      s.cleanup();
    }
  }, 60_000);

  it('rejects with the reader\'s error class: a missing store, a session over the limit', async () => {
    const s = await store();
    try {
      const missing = await runReadJobOffThread({ op: 'sessions', dir: `${s.dir}/no-such-dir`, filter: {} }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(TranscriptReadError);
      const tooLarge = await runReadJobOffThread({ op: 'session', dir: s.dir, id: 'sess-worker-0001', maxRecords: 3 }).catch((e: unknown) => e);
      expect(tooLarge).toBeInstanceOf(TranscriptTooLargeError);
      expect((tooLarge as TranscriptTooLargeError).limit).toBe(3);
      // The queue goes on after a failed job.
      expect((await runReadJobOffThread({ op: 'verify', dir: s.dir, publicKeyFile: s.publicKeyFile })).ok).toBe(true);
    } finally {
      s.cleanup();
    }
  }, 60_000);
});

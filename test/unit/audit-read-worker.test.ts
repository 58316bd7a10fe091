// The admin API's transcript reads run on a worker thread (src/audit/read-worker.ts): the answer is
// the one the same read gives on the calling thread, jobs queue one after another, and a reader's
// errors come back with their class (the API answers 404 / 413 by it).
import { describe, expect, it } from 'vitest';
import { isMainThread } from 'node:worker_threads';
import { TranscriptReaderMemoryError, TranscriptReadError, TranscriptTooLargeError } from '../../src/audit/errors.js';
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

  it('fails the one read, not the process, when the store does not fit the reader\'s heap', async () => {
    const data = tempDataDir();
    try {
      const st = await openStore(data.dir, { checkpointEveryRecords: 5000 });
      const long = await recordSession(st, 'sess-worker-long', 0);
      for (let i = 0; i < 40_000; i++) {
        const id = long.statementNoWait({ text: `SELECT id, email FROM customers WHERE id = ${i}`, classification: { class: 'read', relations: ['public.customers'] }, verdict: 'allow' } as never);
        long.resultNoWait({ statementId: id, columns: [{ name: 'id', type: 'int4', masked: null }], rows: 1, bytes: 8, capture: { mode: 'none' }, tag: 'SELECT 1' } as never);
        if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
      }
      await long.sessionEnd('client closed');
      await st.close();
      // The timeline of 80,000 records is some 250 MB as objects: more than a 32 MB reader may hold.
      const job: ReadJob = { op: 'session', dir: transcriptsDir(data.dir), id: 'sess-worker-long', maxRecords: 1_000_000 };
      const failed = await runReadJobOffThread(job, { heapMb: 32 }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(TranscriptReaderMemoryError);
      expect((failed as Error).message).toBe('reading these transcripts needs more than the 32 MB the reader may use inside warden');
      // The same read with the default heap answers.
      const answer = await runReadJobOffThread(job);
      expect(JSON.parse(answer.body).entries).toHaveLength(80_002);
    } finally {
      data.cleanup();
    }
  }, 120_000);
});

// The admin API's transcript reads of this instance's files, on a worker thread. Verifying a store,
// building a review or listing sessions parses and hashes every record: seconds of CPU for a large
// store, in stretches of a hundred milliseconds and more between file reads (measured: verifying
// 400,000 records held the event loop for up to 325 ms at a time). On the main thread that time is
// taken from every agent session the instance relays; on a worker it is not.
//
// One job runs at a time, each on a fresh worker that ends with it (its heap goes with it); the
// others wait their turn. A worker's heap is capped (READER_HEAP_MB): a store too large to read
// within it fails the one request (TranscriptReaderMemoryError), not the proxy. The worker answers with the response body already serialized, so a large
// replay is not copied object by object between the threads.
//
// This module is also the worker's entry: loaded on a worker thread, it runs the job it was given.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { TranscriptReaderMemoryError, TranscriptReadError, TranscriptTooLargeError } from './errors.js';
import { loadVerifyKey } from './keys.js';
import { listSessions, type SessionFilter } from './reader.js';
import { loadSession, replayJson } from './replay.js';
import { buildReview, renderReviewHtml, type ReviewOptions } from './review.js';
import { verify } from './verify.js';

export type ReadJob =
  | { op: 'verify'; dir: string; publicKeyFile: string }
  | { op: 'sessions'; dir: string; filter: SessionFilter }
  | { op: 'session'; dir: string; id: string; maxRecords: number }
  | { op: 'review'; dir: string; options: ReviewOptions; format: 'json' | 'html' };

export interface ReadAnswer {
  /** The response body: JSON (with its final newline) or the review's HTML page. */
  body: string;
  /** False for a verify report with errors. */
  ok: boolean;
}

/** Runs a job on the calling thread. */
export async function runReadJob(job: ReadJob): Promise<ReadAnswer> {
  const json = (value: unknown): string => `${JSON.stringify(value)}\n`;
  switch (job.op) {
    case 'verify': {
      const report = await verify(job.dir, { publicKey: await loadVerifyKey(job.publicKeyFile) });
      return { body: json(report), ok: report.ok };
    }
    case 'sessions':
      return { body: json({ sessions: await listSessions(job.dir, job.filter) }), ok: true };
    case 'session':
      return { body: json(replayJson(await loadSession(job.dir, job.id, { maxRecords: job.maxRecords }))), ok: true };
    case 'review': {
      const report = await buildReview(job.dir, job.options);
      return { body: job.format === 'html' ? renderReviewHtml(report) : json(report), ok: true };
    }
  }
}

/** What crosses back from the worker. */
type WorkerReply =
  | { answer: ReadAnswer }
  | { error: { kind: 'too-large' | 'read' | 'other'; message: string; limit?: number } };

/** The most heap a reader thread may use. */
export const READER_HEAP_MB = 1024;

let queue: Promise<unknown> = Promise.resolve();

/** Runs a job on a worker thread, after the jobs before it. Errors keep their transcript error class. */
export function runReadJobOffThread(job: ReadJob, options: { heapMb?: number } = {}): Promise<ReadAnswer> {
  const run = queue.then(() => inWorker(job, options.heapMb ?? READER_HEAP_MB));
  queue = run.catch(() => undefined);
  return run;
}

function inWorker(job: ReadJob, heapMb: number): Promise<ReadAnswer> {
  return new Promise((resolve, reject) => {
    const worker = spawn(job, heapMb);
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      f();
      void worker.terminate();
    };
    worker.once('message', (reply: WorkerReply) => settle(() => ('answer' in reply ? resolve(reply.answer) : reject(rebuild(reply.error)))));
    worker.once('error', (err) => settle(() => reject((err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? new TranscriptReaderMemoryError(heapMb) : err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`the transcript reader thread ended (exit code ${code}) before answering`))));
  });
}

/**
 * The worker runs this module. Built (dist/…/read-worker.js) it is loaded as it is; run from the
 * TypeScript sources (the test suite), the worker first registers tsx to load them.
 */
function spawn(job: ReadJob, heapMb: number): Worker {
  const self = import.meta.url;
  const resourceLimits = { maxOldGenerationSizeMb: heapMb };
  if (!self.endsWith('.ts')) return new Worker(new URL(self), { workerData: job, resourceLimits });
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(self)}); })`;
  return new Worker(code, { eval: true, workerData: job, resourceLimits });
}

function rebuild(e: { kind: 'too-large' | 'read' | 'other'; message: string; limit?: number }): Error {
  if (e.kind === 'too-large') return new TranscriptTooLargeError(e.message, e.limit ?? 0);
  if (e.kind === 'read') return new TranscriptReadError(e.message);
  return new Error(e.message);
}

if (!isMainThread && parentPort && isReadJob(workerData)) {
  const port = parentPort;
  runReadJob(workerData).then(
    (answer) => port.postMessage({ answer } satisfies WorkerReply),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      const error: WorkerReply & { error: unknown } = {
        error:
          e instanceof TranscriptTooLargeError
            ? { kind: 'too-large', message: e.message, limit: e.limit }
            : { kind: e instanceof TranscriptReadError ? 'read' : 'other', message: e.message },
      };
      port.postMessage(error);
    },
  );
}

function isReadJob(v: unknown): v is ReadJob {
  return typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string' && typeof (v as { dir?: unknown }).dir === 'string';
}

// The recording thread: transcripts of the PostgreSQL sessions that no statement rule and no
// masking rule touches, written off the agents' path.
//
// Such a session needs no decision from warden: every byte goes through as it came. Recording it
// in line (the statement flow on the event loop, src/pg/flow/) made warden parse, classify,
// serialize, chain and hash every statement between reading a message and forwarding it. Here
// the relay forwards at once (the pass-through handlers) and hands each chunk it read to a tap,
// which copies it into a batch; every 20 ms (or 256 KiB) the batch goes to a worker thread
// (worker.ts) as a transferred buffer. The worker runs the same statement flow over the same
// bytes, in the same order, with the session's recorder behind it, and writes the records to a
// chain of its own: instance `<instance_id>.rec`, beside the event loop's chain in the same
// directory (readers and `audit verify` take every instance they find).
//
// What this keeps of the in-line guarantees, and what it does not (docs/transcripts.md):
//  - Every record is written; a batch is never dropped. When the worker falls behind by more
//    than `maxPendingBytes`, or a chunk read more than `maxLagMs` ago (default 100 ms) is still not
//    recorded, the sessions that feed it stop being read until it catches up.
//  - The worker runs at background priority, raised while it is behind (priority.ts): recording
//    takes the CPU time the agents' traffic leaves, and is bounded by that lag limit.
//  - Only sessions under fsync `interval` come here (under `each` a statement waits for its
//    record, which needs the record on the event loop).
//  - When the thread's store cannot be written (or the thread dies, or has not answered for
//    `stallMs`: it is stuck), its sessions are closed with a clear error (on_write_error: refuse)
//    and new sessions are recorded in line.
//  - A record is written ~25 ms after its statement was forwarded (up to maxLagMs when the cores
//    are busy) rather than up to 5 ms after it was put in the writer's batch; either way a crash
//    of the process loses the records of that window (fsync `interval`).
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.js';
import type { TranscriptConfig } from '../../audit/config.js';
import type { WriterHealth } from '../../audit/segment-writer.js';
import type { SessionEndInfo, SessionEventInfo, SessionStartInfo } from '../../audit/types.js';
import { MAX_INSTANCE_CHARS, sanitizeInstanceId, THREAD_INSTANCE_SUFFIX } from '../../audit/segment-files.js';
import type { TransactionStatusByte } from '../../../protocols/postgres/codes.js';
import type { PriorityState } from './priority.js';
import type { KeptStatement } from './session-state.js';

/** Entry kinds of a batch: [kind u8][session u32][body length u32][time f64][body]. */
export const ENTRY = { start: 0, client: 1, server: 2, end: 3, event: 4 } as const;
export const ENTRY_HEADER = 17;

/** What the worker needs to know of a session before its first chunk. */
export interface ThreadSessionStart {
  start: SessionStartInfo;
  /** The server's parameters at login (ParameterStatus), for the statement flow's lexing checks. */
  parameters: [string, string][];
  capture: { mode: 'none' | 'digest' | 'first' | 'all'; firstRows: number };
  maxMessageBytes: number;
  /** The transaction status of the server's last ReadyForQuery before relaying began. */
  transactionStatus: TransactionStatusByte;
  /**
   * A wire session's resume point (wire-recording.ts): the named prepared statements then, for a
   * flow that replays the session from there. `parameters` and `transactionStatus` are then those
   * of that point too.
   */
  prepared?: KeptStatement[];
  /** Some named statements of the session were not kept (session-state.ts MAX_KEPT_SQL_CHARS). */
  preparedIncomplete?: true;
}

export interface WorkerInit {
  transcript: TranscriptConfig;
  logLevel: string;
  /** RecordingThreadOptions.maxLagMs: the worker's priority is raised at half of it. */
  maxLagMs: number;
  /** Records are shipped to a shared store: retention keeps what is not shipped yet (0 until told). */
  keepUnshipped: boolean;
}

/** A batch for the worker; `keepFrom`: the lowest seq retention must leave on disk (RecordingThread.keepFromSeq). */
export interface ToWorkerBatch {
  buf: ArrayBuffer;
  offset: number;
  len: number;
  keepFrom?: number;
}

/** What the main thread sends the worker: a batch, the lowest seq to keep on its own, or close. */
export type ToWorker = ToWorkerBatch | { keepFrom: number } | { close: true };

/** How often an idle thread is told what the shared store holds (retention checks once a minute). */
const KEEP_FROM_EVERY_MS = 30_000;

export type FromWorker =
  | { t: 'ready'; health: WriterHealth; keyId: string; publicKeyFile: string; priority: PriorityState }
  | { t: 'failed'; message: string }
  /** A batch was processed; its buffer comes back for the next batch (fresh memory costs page faults). */
  | { t: 'ack'; bytes: number; health: WriterHealth; allowed: number; priority: PriorityState; buf: ArrayBuffer }
  | { t: 'unhealthy'; message: string; code: string | undefined }
  /** The worker lowered its priority again while it had nothing to take (acks carry it otherwise). */
  | { t: 'priority'; priority: PriorityState }
  /** One session's statement flow could not go on (see worker.ts feed): that session is told. */
  | { t: 'stopped'; id: number; message: string }
  | { t: 'closed' };

export interface RecordingThreadOptions {
  transcript: TranscriptConfig;
  logger: Logger;
  logLevel: string;
  /** Bytes handed to the worker and not processed yet, above which sessions stop being read. */
  maxPendingBytes?: number;
  /**
   * How long ago the oldest chunk handed to the worker and not yet recorded may have been read,
   * beyond which sessions stop being read until the worker catches up to half of it
   * (transcripts.recording_thread_max_lag).
   */
  maxLagMs?: number;
  /**
   * How long the worker may go without acknowledging a batch it was handed before it is taken to
   * be stuck and failed (transcripts.recording_thread_stall_timeout): its sessions would otherwise
   * wait for it, paused by the lag limit, for ever.
   */
  stallMs?: number;
  /** How long a batch may wait before it is handed over. */
  flushMs?: number;
  onUnhealthy?(error: { message: string; code: string | undefined }): void;
  /** Statements the thread's flows let through (every statement of its sessions: no rule applies). */
  onAllowed?(n: number): void;
  /** Its records are shipped to a shared store (set keepFromSeq once the shipper runs). */
  keepUnshipped?: boolean;
}

const BATCH_BYTES = 256 * 1024;
/** performance.timeOrigin is a getter: read once. Entry times are ms since the epoch, fractional. */
export const TIME_ORIGIN = performance.timeOrigin;
const DEFAULT_MAX_PENDING = 32 * 1024 * 1024;
const DEFAULT_MAX_LAG_MS = 100;
const DEFAULT_STALL_MS = 30_000;
/**
 * Batches of 20 ms by default (transcripts.recording_thread_batch): the worker handles a
 * pgbench-like load with ~12% less CPU than at 5 ms (its code and data stay warm over more
 * statements). Longer batches gave 5–15% less again in some runs and nothing in others
 * (bench/README.md), and leave records unwritten longer: the default stays short.
 */
const DEFAULT_FLUSH_MS = 20;
const MAX_SPARE = 4;
/** How long close() waits for a failed thread to close its store (a healthy one: six times that). */
const CLOSE_WAIT_MS = 5_000;
/** The most one read of a socket hands over (net.Socket reads 64 KiB at a time). */
const READ_BYTES = 64 * 1024;

/**
 * The instance id of the recording thread's chain, derived from the event loop's: `<id>.rec`.
 * An id too long for that (instance ids have at most 64 characters) keeps its first 51 and a
 * digest of the whole (`<first 51>-<8 hex>.rec`), so ids that differ only at the end still name
 * different chains (a shared store keys chains by instance). No configured id ends in `.rec`
 * (the configuration refuses it), so a thread's chain never takes another instance's id.
 */
export function threadInstanceId(instanceId: string): string {
  const whole = `${instanceId}${THREAD_INSTANCE_SUFFIX}`;
  if (whole.length <= MAX_INSTANCE_CHARS) return sanitizeInstanceId(whole);
  const digest = createHash('sha256').update(instanceId).digest('hex').slice(0, 8);
  const keep = MAX_INSTANCE_CHARS - THREAD_INSTANCE_SUFFIX.length - digest.length - 1;
  return sanitizeInstanceId(`${instanceId.slice(0, keep)}-${digest}${THREAD_INSTANCE_SUFFIX}`);
}

interface Reader {
  pauseReading(): void;
  resumeReading(): void;
}

export class RecordingThread {
  private buf: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
  /** Batch buffers the worker gave back. */
  private readonly spare: Buffer[] = [];
  private len = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  /** Bytes taken from taps and not yet acknowledged by the worker. */
  private pending = 0;
  /** How many times a session stopped being read to let the worker catch up. */
  pauses = 0;
  /** Sessions not being read, in the order they were paused. */
  private readonly paused = new Set<Reader>();
  private resumeTimer: NodeJS.Timeout | undefined;
  private readonly taps = new Map<number, ThreadTap>();
  private lastHealth: WriterHealth;
  private failure: { message: string; code: string | undefined } | undefined;
  private closing: Promise<void> | undefined;
  private exited = false;
  private readonly maxPending: number;
  private readonly maxLagMs: number;
  private readonly flushMs: number;
  /**
   * The lowest seq of the thread's chain that retention must leave on disk: the first not yet
   * shipped to the shared store (the shipper starts after the thread). Told to the worker with
   * each batch.
   */
  keepFromSeq: (() => number | undefined) | undefined;
  private keepFromToldAt = 0;
  /** When the first chunk of the batch being filled was read (performance.now()). */
  private batchStart = 0;
  /** When the first chunk of each batch handed to the worker and not acknowledged was read, oldest first. */
  private readonly inflight: number[] = [];
  private priorityState: PriorityState;
  private readonly stallMs: number;
  /** When the worker last acknowledged a batch, or was handed one with none outstanding (performance.now()). */
  private lastProgress = performance.now();
  /** Checks that a worker with batches outstanding still acknowledges them (see stallMs). */
  private readonly watchdog: NodeJS.Timeout;

  private constructor(
    private readonly worker: Worker,
    ready: Extract<FromWorker, { t: 'ready' }>,
    private readonly opts: RecordingThreadOptions,
  ) {
    this.lastHealth = ready.health;
    this.keyId = ready.keyId;
    this.publicKeyFile = ready.publicKeyFile;
    this.maxPending = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING;
    this.maxLagMs = opts.maxLagMs ?? DEFAULT_MAX_LAG_MS;
    this.priorityState = ready.priority;
    this.flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
    this.stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.watchdog = setInterval(() => {
      this.checkStalled();
      this.tellKeepFrom();
    }, Math.min(1000, Math.max(10, this.stallMs / 4)));
    this.watchdog.unref();
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.fail({ message: `the recording thread failed: ${err.message}`, code: 'ETHREAD' }));
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing) this.fail({ message: `the recording thread exited (code ${code})`, code: 'ETHREAD' });
    });
  }

  readonly keyId: string;
  readonly publicKeyFile: string;

  /** Starts the worker and opens its transcript store (its own instance: threadInstanceId). */
  static async start(opts: RecordingThreadOptions): Promise<RecordingThread> {
    const init: WorkerInit = { transcript: opts.transcript, logLevel: opts.logLevel, maxLagMs: opts.maxLagMs ?? DEFAULT_MAX_LAG_MS, keepUnshipped: opts.keepUnshipped === true };
    const worker = spawnWorker(init);
    const ready = await new Promise<Extract<FromWorker, { t: 'ready' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.t === 'ready') done(() => resolve(m));
        else if (m.t === 'failed') done(() => reject(new Error(m.message)));
      };
      const onError = (err: Error): void => done(() => reject(err));
      const onExit = (code: number): void => done(() => reject(new Error(`the recording thread exited (code ${code}) before it was ready`)));
      const done = (then: () => void): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        then();
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    return new RecordingThread(worker, ready, opts);
  }

  /** False once the thread's store cannot be written or the thread is gone. */
  get healthy(): boolean {
    return this.failure === undefined && this.closing === undefined;
  }

  health(): WriterHealth {
    return this.failure ? { ...this.lastHealth, healthy: false, error: this.failure.message, ...(this.failure.code ? { code: this.failure.code } : {}) } : this.lastHealth;
  }

  /** Bytes taken from sessions that the worker has not processed yet. */
  get pendingBytes(): number {
    return this.pending;
  }

  /** How long ago the oldest chunk handed to the worker and not yet recorded was read (0: none, or the thread failed). */
  get lagMs(): number {
    return this.inflight.length === 0 || this.failure ? 0 : performance.now() - (this.inflight[0] as number);
  }

  /** The worker's scheduling priority (priority.ts), as of its last acknowledgement. */
  get priority(): PriorityState {
    return this.priorityState;
  }

  /** Opens a session's tap. `onFailure` is called if the thread can no longer record it. */
  open(session: ThreadSessionStart, onFailure: (error: { message: string; code: string | undefined }) => void): ThreadTap {
    const id = this.nextId++;
    const tap = new ThreadTap(this, id, onFailure);
    this.taps.set(id, tap);
    this.put(ENTRY.start, id, Buffer.from(JSON.stringify(session)));
    return tap;
  }

  /** Appends one entry to the batch. */
  put(kind: number, id: number, body: Buffer): void {
    const n = ENTRY_HEADER + body.length;
    if (this.len + n > this.buf.length) {
      this.flush();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    }
    const b = this.buf;
    const at = this.len;
    const now = performance.now();
    if (at === 0) this.batchStart = now;
    b[at] = kind;
    b.writeUInt32LE(id, at + 1);
    b.writeUInt32LE(body.length, at + 5);
    b.writeDoubleLE(TIME_ORIGIN + now, at + 9);
    body.copy(b, at + ENTRY_HEADER);
    this.len = at + n;
    this.pending += n;
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /**
   * True when the worker is too far behind (more than maxPendingBytes not processed, or a chunk
   * read more than maxLagMs ago not recorded): every session feeding it stops being read until it
   * catches up (to half of either). All of them, not only the one whose read went over: each
   * would otherwise get one more read in (up to 64 KiB) before its own check, so 50 sessions went
   * 3 MiB past a 256 KiB limit.
   */
  congested(): boolean {
    if (this.pending <= this.maxPending && !this.behind(this.maxLagMs)) return false;
    for (const tap of this.taps.values()) {
      const reader = tap.reader;
      if (!reader || this.paused.has(reader)) continue;
      this.pauses++;
      this.paused.add(reader);
      reader.pauseReading();
    }
    return true;
  }

  /**
   * Lets paused sessions be read again once the worker has caught up to half the limit: as many as
   * the room left can take one read each (at least one), longest paused first, so they do not all
   * read at once and take the backlog past the limit again. The rest follow at the next
   * acknowledgement, or after flushMs if the ones let go had nothing to read.
   */
  private resumeSome(): void {
    if (this.resumeTimer) {
      clearTimeout(this.resumeTimer);
      this.resumeTimer = undefined;
    }
    if (this.paused.size === 0 || this.pending > this.maxPending / 2 || this.behind(this.maxLagMs / 2)) return;
    let room = Math.max(1, Math.floor((this.maxPending - this.pending) / READ_BYTES));
    for (const reader of this.paused) {
      if (room-- <= 0) break;
      this.paused.delete(reader);
      reader.resumeReading();
    }
    if (this.paused.size > 0) this.resumeTimer = setTimeout(() => this.resumeSome(), this.flushMs);
  }

  /** The oldest batch the worker has not acknowledged began more than `ms` ago. */
  private behind(ms: number): boolean {
    return this.lagMs > ms;
  }

  forget(tap: ThreadTap, reader: Reader | undefined): void {
    this.taps.delete(tap.id);
    if (reader) this.paused.delete(reader);
  }

  /**
   * Batches carry what the shared store holds to the worker; without traffic it is told every
   * KEEP_FROM_EVERY_MS, so that retention can go on in an idle thread's chain.
   */
  private tellKeepFrom(): void {
    const now = performance.now();
    if (this.failure || !this.keepFromSeq || now - this.keepFromToldAt < KEEP_FROM_EVERY_MS) return;
    this.keepFromToldAt = now;
    const keepFrom = this.keepFromSeq();
    if (keepFrom !== undefined) this.worker.postMessage({ keepFrom } satisfies ToWorker);
  }

  /** Hands the batch to the worker. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.len === 0 || this.failure) {
      // After a failure nothing more is recorded (the sessions were told): nothing is pending either.
      this.pending -= this.len;
      this.len = 0;
      return;
    }
    const full = this.buf;
    const len = this.len;
    this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.len = 0;
    // The batch's own ArrayBuffer moves to the worker (allocUnsafeSlow: never a shared pool).
    const ab = full.buffer as ArrayBuffer;
    if (this.inflight.length === 0) this.lastProgress = performance.now();
    this.inflight.push(this.batchStart);
    const keepFrom = this.keepFromSeq?.();
    this.worker.postMessage({ buf: ab, offset: full.byteOffset, len, ...(keepFrom === undefined ? {} : { keepFrom }) } satisfies ToWorkerBatch, [ab]);
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'ack':
        this.lastProgress = performance.now();
        this.pending -= m.bytes;
        this.inflight.shift();
        this.lastHealth = m.health;
        this.priorityState = m.priority;
        if (m.buf.byteLength === BATCH_BYTES && this.spare.length < MAX_SPARE) this.spare.push(Buffer.from(m.buf));
        if (m.allowed > 0) this.opts.onAllowed?.(m.allowed);
        this.resumeSome();
        return;
      case 'priority':
        this.priorityState = m.priority;
        return;
      case 'stopped':
        this.taps.get(m.id)?.stopped(m.message);
        return;
      case 'unhealthy':
        this.fail({ message: m.message, code: m.code });
        return;
      default:
        return;
    }
  }

  /**
   * Fails a worker that has had a batch for stallMs without acknowledging any: stuck in a loop, or
   * in a write to a disk that does not answer. It is told to stop; a thread blocked in the kernel
   * stops when the call returns.
   */
  private checkStalled(): void {
    if (this.failure || this.closing || this.inflight.length === 0) return;
    const quiet = performance.now() - this.lastProgress;
    if (quiet < this.stallMs) return;
    this.fail({
      message: `the recording thread has not answered for ${formatSeconds(quiet)} (recording_thread_stall_timeout ${formatSeconds(this.stallMs)}): it is taken to be stuck`,
      code: 'ESTALLED',
    });
    this.worker.terminate().catch(() => undefined);
  }

  private fail(error: { message: string; code: string | undefined }): void {
    if (this.failure) return;
    this.failure = error;
    clearInterval(this.watchdog);
    this.opts.onUnhealthy?.(error);
    // Sessions waiting for the worker would wait forever: let them go (their taps now drop).
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    const readers = [...this.paused];
    this.paused.clear();
    for (const r of readers) r.resumeReading();
    for (const tap of [...this.taps.values()]) tap.failed(error);
  }

  /** Hands over what is left, lets the worker write it and seal its segment, and stops it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.watchdog);
      if (this.resumeTimer) clearTimeout(this.resumeTimer);
      this.resumeTimer = undefined;
      this.flush();
      // A thread whose store failed still closes it (its segment is sealed if the disk lets it),
      // but within CLOSE_WAIT_MS: a store that cannot write must not hold warden's exit. One that
      // has not answered for stallMs is not waited for.
      const stuck = this.failure?.code === 'ESTALLED' || (this.inflight.length > 0 && performance.now() - this.lastProgress >= this.stallMs);
      if (!this.exited && !stuck) {
        await new Promise<void>((resolve) => {
          const onMessage = (m: FromWorker): void => {
            if (m.t === 'closed') finish();
          };
          const timer = setTimeout(() => finish(), this.failure ? CLOSE_WAIT_MS : CLOSE_WAIT_MS * 6);
          const finish = (): void => {
            clearTimeout(timer);
            this.worker.off('message', onMessage);
            this.worker.off('exit', finish);
            resolve();
          };
          this.worker.on('message', onMessage);
          this.worker.on('exit', finish);
          this.worker.postMessage({ close: true });
        });
      }
      // A thread blocked in the kernel (a disk that does not answer) cannot be stopped until the
      // call returns: warden's shutdown does not wait for it. (The process's exit still does:
      // Node.js joins its threads as it exits, and nothing in JavaScript can cut that short.)
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.worker.terminate().then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
      this.worker.unref();
    })();
    return this.closing;
  }
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/**
 * Built (dist/…/worker.js) the worker module is loaded as it is; run from the TypeScript sources
 * (the test suite), the worker first registers tsx to load them.
 */
function spawnWorker(init: WorkerInit): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./worker.js', self), { workerData: init });
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./worker.ts', self).href)}); })`;
  return new Worker(code, { eval: true, workerData: init });
}

/** One session's side of the thread: the relay's onChunk, and the session's end. */
export class ThreadTap {
  private attached: Reader | undefined;
  private done = false;

  constructor(
    private readonly thread: RecordingThread,
    readonly id: number,
    private readonly onFailure: (error: { message: string; code: string | undefined }) => void,
  ) {}

  /** The relay whose reading pauses while the worker catches up. */
  attach(reader: Reader): void {
    this.attached = reader;
  }

  /** The attached relay, while the session is recorded here. */
  get reader(): Reader | undefined {
    return this.done ? undefined : this.attached;
  }

  /** PgRelay's onChunk. */
  readonly chunk = (fromClient: boolean, chunk: Buffer): void => {
    if (this.done) return;
    this.thread.put(fromClient ? ENTRY.client : ENTRY.server, this.id, chunk);
    this.thread.congested();
  };

  /** An event of the session that is not in its bytes (a CancelRequest, which comes on a connection of its own). */
  event(info: SessionEventInfo): void {
    if (this.done) return;
    this.thread.put(ENTRY.event, this.id, Buffer.from(JSON.stringify(info)));
  }

  end(info: SessionEndInfo): void {
    if (this.done) return;
    this.done = true;
    this.thread.put(ENTRY.end, this.id, Buffer.from(JSON.stringify(info)));
    this.thread.forget(this, this.attached);
  }

  /**
   * The thread stopped recording this session (its statement flow could not go on): the session
   * is told, as when the thread fails. Its chunks and its end still go to the thread, which then
   * records the session's end.
   */
  stopped(message: string): void {
    if (this.done) return;
    this.onFailure({ message: `the recording thread stopped recording this session: ${message}`, code: 'ESTOPPED' });
  }

  /** The thread can no longer record: nothing more is taken, and the session is told. */
  failed(error: { message: string; code: string | undefined }): void {
    if (this.done) return;
    this.done = true;
    this.thread.forget(this, this.attached);
    this.onFailure(error);
  }
}

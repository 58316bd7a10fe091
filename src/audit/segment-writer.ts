// The one transcript writer of a warden process: appends records to segment files under
// <dataDir>/transcripts/, chains them by hash, signs checkpoints and seals, rotates segments.
//
// Hot path: `append` serializes the record's data, fixes its place in the chain (`seq`) and its
// time synchronously, in call order, and adds it to the current batch in memory. A record is
// chained (its line encoded and hashed over the previous one) as soon as it and every record
// before it are complete. A record appended open (`appendOpen`) may still gain a member (`extend`): a
// statement whose result arrives before its record is written becomes one record (frame.ts). It
// stays open until its recorder settles it (its result came, or anything else of its session),
// and holds back the records after it meanwhile; writing the batch chains everything. Chaining
// early keeps the batch as bytes rather than as the strings records are built from, which the
// garbage collector would otherwise copy about while they wait for the write.
// Under `each`, all records appended in one turn of the event loop are written with one pwrite
// in a setImmediate callback and share one fdatasync (group commit). Under `interval`, nobody
// waits for the write, so records gather for up to WRITE_DELAY_MS (or BATCH_FLUSH_BYTES) and go
// out in one pwrite: at thousands of statements a second that is a few writes instead of
// thousands. There a statement still open at a write (its result not back yet) is held over to
// the next write, once, with the records behind it, unless anyone waits for one of them: most
// results then join their statements (one line, one hash, fewer bytes) where a write every 5 ms
// would otherwise cut about a sixth of them off under pgbench's load (chainDue). A rotation
// writes and fsyncs the old segment synchronously; it happens once per segment.
//
// Failure: any write, truncate or fsync error makes the writer unhealthy for good. A partially
// written batch is cut back off the file (ftruncate to the last whole batch), so nothing written
// before is damaged; every record not yet acknowledged, and every later append, is rejected with a
// TranscriptWriteError. Recovery is a new writer (a restart), which continues the chain from disk.

import { closeSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { FsyncPolicy } from './config.js';
import { errnoCode, TranscriptWriteError } from './errors.js';
import { findChainTail } from './chain-tail.js';
import { encodedRecordBytes, FORMAT_VERSION, GENESIS_HASH, RECORD_KIND, recordTime, type RecordKind, type RecordTime } from './frame.js';
import { parseHeadFile, writeHeadFile } from './head-file.js';
import { acquireLock, releaseLock } from './instance-lock.js';
import { LineBatch } from './line-batch.js';
import { signMark, verifyMark, type ChainStart, type SignedMark } from './jws.js';
import type { SigningKey } from './keys.js';
import { firstRecordOf, newestOwnMark, planRetention, sealTimeOf, type SegmentEntry } from './retention.js';
import { headFileName, listTranscriptDir, sanitizeInstanceId, segmentFileName, segmentsOf } from './segment-files.js';

/** How often the writer looks for segments past `retentionMs`. */
const RETENTION_CHECK_MS = 60_000;
/** Under fsync `interval`: how long appended records may wait to be written together. */
const WRITE_DELAY_MS = 5;
/** … and how much may gather before it is written at once. */
const BATCH_FLUSH_BYTES = 256 * 1024;

export interface SegmentWriterOptions {
  /** The transcripts directory (created if absent). */
  dir: string;
  instanceId: string;
  key: SigningKey;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /**
   * An fsync that has not returned after this long means the disk stopped answering: the writer
   * fails (ESTALLED), so statements are refused instead of waiting for ever. Default 30 s.
   */
  syncStallMs?: number;
  segmentMaxBytes: number;
  segmentMaxAgeMs: number;
  checkpointEveryRecords: number;
  checkpointIntervalMs: number;
  /** Largest encoded record accepted. */
  recordBytes: number;
  logger?: Logger;
  /** Called after each checkpoint or seal is durable, e.g. to ship it off the host. */
  onCheckpoint?: (mark: SignedMark, jws: string) => void;
  /** Called once, when the writer becomes unhealthy. */
  onUnhealthy?: (error: TranscriptWriteError) => void;
  /**
   * Segments whose records are all older than this are removed, oldest first (never the active
   * one): the chain then begins later, and every mark says where (SignedMark.start). Undefined:
   * kept for ever.
   */
  retentionMs?: number;
  /**
   * The lowest seq that must stay on disk whatever its age (records not yet shipped to the shared
   * store), or undefined for none. Asked before each removal.
   */
  keepFromSeq?: () => number | undefined;
  /**
   * Records to write at the beginning of every segment after the first, right after its `open`
   * record: the sessions still open (TranscriptStore), so that a segment says whose they are even
   * once retention has removed the one that holds their `session-start`.
   */
  carryOver?: () => CarriedRecord[];
  /** Milliseconds since the epoch; tests may pin it. */
  clock?: () => number;
}

/** A carried record's bytes beyond its session id and data (seq, ts, prev, kind, hash; generously). */
const CARRIED_RECORD_OVERHEAD = 200;

/** A record SegmentWriterOptions.carryOver asks for: its kind, session id and data, serialized. */
export interface CarriedRecord {
  kind: RecordKind;
  sidJson: string;
  dJson: string;
}

export interface WriterHealth {
  healthy: boolean;
  closed: boolean;
  error?: string;
  code?: string;
  instance: string;
  segment: string;
  /** Seq of the last record appended. */
  seq: number;
  fsync: FsyncPolicy;
}

/** One application of retention: the files removed, where the chain begins since, and a file that could not be removed. */
export interface RetentionDone {
  removed: readonly string[];
  start: ChainStart;
  notRemoved?: { file: string; error: string };
}

/** How a new segment links to the previous one; recorded in its `open` record. */
export interface OpenAfter {
  segment: number;
  file: string;
  lastSeq: number;
  lastHash: string;
  /** False when the previous segment was left unsealed (a crash, or an unhealthy writer). */
  sealed: boolean;
  /** Bytes after the previous segment's last whole record (a torn write); 0 normally. */
  tornBytes: number;
  /** Seq covered by the instance's signed head file when this writer started (the head's mark
   *  record itself is the one after it), if there was a valid head. */
  headSeq?: number;
  /**
   * Why the instance's head file could not be used when this writer started, if it could not
   * (absent although the chain ended in a seal, not a head file, a bad signature): removal of the
   * chain's newest records before then cannot be checked against it. verify reports it.
   */
  headUnusable?: HeadUnusable;
}

/** A head file a starting writer could not use: `reason` picks verify's finding, `detail` completes "the head file …". */
export interface HeadUnusable {
  reason: 'missing' | 'unreadable' | 'corrupt' | 'bad-signature' | 'other-key';
  detail: string;
}

export interface OpenData {
  format: number;
  instance: string;
  segment: number;
  file: string;
  kid: string;
  /** `started`: when this writer opened its chain (ISO 8601), the same in every segment it opens; absent before it was written. */
  writer: { pid: number; host: string; started?: string };
  /** null: the first segment of a new chain. */
  after: OpenAfter | null;
  /** Newer segment files of this instance that hold no whole record (the writer died creating them). */
  abandoned?: string[];
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // callers that await still see the rejection
  return { promise, resolve, reject };
}

/**
 * A record appended to the current batch and not yet chained: its data serialized, its `seq` and
 * time fixed. Until it is chained, `extend` may add a member to its data.
 */
export interface PendingRecord {
  readonly seq: number;
  readonly ts: RecordTime;
  readonly kind: RecordKind;
  readonly sidJson: string | undefined;
  /** The record's `d`, serialized; without its closing brace while `unclosed`. */
  d: string;
  /** Appended open: `d` lacks its closing brace, so that a member is added without cutting it off. */
  unclosed: boolean;
  /**
   * Length of its line in UTF-16 code units: its bytes once encoded when the record is ASCII, as
   * records almost always are; a code unit is at most three bytes. Counting exact bytes means
   * scanning every record, so it is done only when a limit could be at stake.
   */
  size: number;
  /** Set once the record is hashed into the chain: it can no longer change. */
  chained: boolean;
  /** Appended open and not yet settled: it may still gain a member, and records after it wait. */
  open: boolean;
  /** Left in memory by one batch write already (fsync `interval`): the next one writes it, open or not. */
  heldOver?: boolean;
  /** When asked for (appendJson's `wait`): settles with the batch it is written in. */
  done?: Promise<void>;
}

interface PendingHead {
  upTo: number;
  mark: SignedMark;
  jws: string;
}

class Segment {
  records = 0;
  /** Bytes written (whole batches only). */
  size = 0;
  /** Bytes known to be on stable storage. */
  synced = 0;
  syncing = false;
  /** performance.now() when the fsync in flight began. */
  syncStartedAt = 0;
  retired = false;
  fdClosed = false;
  /** Batches written but not yet fsynced (policy `each`), with the size that covers them. */
  groups: Array<{ upTo: number; done: Deferred }> = [];
  heads: PendingHead[] = [];
  idleWaiters: Array<() => void> = [];

  constructor(
    readonly fd: number,
    readonly name: string,
    readonly index: number,
    readonly firstSeq: number,
    /** The hash its first record links to (the last record before the segment). */
    readonly firstPrev: string,
    readonly openedAt: number,
  ) {}

  closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed under us; nothing more to release
    }
  }
}

const TICK_MIN_MS = 10;
const TICK_MAX_MS = 1000;
const DEFAULT_SYNC_STALL_MS = 30_000;

export class SegmentWriter {
  readonly instance: string;
  private readonly clock: () => number;
  private seg!: Segment;
  private nextSeq = 1;
  private lastHash = GENESIS_HASH;
  private sinceMark = 0;
  private lastMarkAt: number;
  private lastIntervalSync: number;
  /** Seq covered by the newest mark handed to the head file (this writer's, not a predecessor's). */
  private headSeq = 0;
  private headPending: PendingHead | undefined;
  private headDrain: Promise<void> | undefined;
  /** Where the chain begins since retention removed its oldest segments (undefined: at its first record). */
  private chainStart: ChainStart | undefined;
  private lastRetentionCheck = 0;
  private readonly retained: RetentionDone[] = [];
  /** Records of the current batch not yet chained, in order; they follow `lines`. */
  private pending: PendingRecord[] = [];
  /** Sizes of the pending records (PendingRecord.size). */
  private pendingSize = 0;
  /** Lines of the current batch already chained, encoded. */
  private readonly lines = new LineBatch();

  private batchDone: Deferred | undefined;
  private flushScheduled = false;
  private failure: TranscriptWriteError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly lockPath: string;
  /** When this writer started (its `open` records' `writer.started`): tells its segments from a restarted writer's. */
  private readonly startedAt: string;

  private constructor(private readonly options: SegmentWriterOptions) {
    this.instance = sanitizeInstanceId(options.instanceId);
    this.clock = options.clock ?? Date.now;
    this.lastMarkAt = this.clock();
    this.startedAt = new Date(this.lastMarkAt).toISOString();
    this.lastIntervalSync = this.lastMarkAt;
    mkdirSync(options.dir, { recursive: true, mode: 0o750 });
    this.lockPath = acquireLock(options.dir, this.instance);
    const tick = Math.max(TICK_MIN_MS, Math.min(options.fsyncIntervalMs, options.checkpointIntervalMs, TICK_MAX_MS));
    this.timer = setInterval(() => this.onTick(), tick);
    this.timer.unref();
  }

  /** Takes the instance's lock, finds where its chain ended (if anywhere) and starts a new segment. */
  static async open(options: SegmentWriterOptions): Promise<SegmentWriter> {
    let writer: SegmentWriter;
    try {
      writer = new SegmentWriter(options);
    } catch (err) {
      throw err instanceof TranscriptWriteError ? err : new TranscriptWriteError(`cannot open the transcript directory ${options.dir}: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    try {
      await writer.start();
    } catch (err) {
      clearInterval(writer.timer);
      writer.discardEmptySegment();
      writer.releaseLock();
      throw err instanceof TranscriptWriteError ? err : new TranscriptWriteError(`cannot start a transcript segment: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    return writer;
  }

  private async start(): Promise<void> {
    const { dir, recordBytes } = this.options;
    const tail = findChainTail(dir, this.instance, recordBytes);
    const head = await this.readHead();
    const headSeq = head && 'seq' in head ? head.seq : undefined;
    let after: OpenAfter | null = null;
    if (tail.last) {
      // Where retention last left the chain's beginning: only a mark this key signed says so, the
      // newest of the head's and the segments' own (the head may be older: a crash before it was
      // rewritten, or an old copy put back).
      const own = newestOwnMark(
        segmentsOf(listTranscriptDir(dir)).filter((e) => e.instance === this.instance),
        this.instance,
        this.options.key.publicKey,
      );
      const headMark = head && 'start' in head ? head : undefined;
      this.chainStart = own && (!headMark || own.seq >= headMark.seq) ? own.start : headMark?.start;
      const unusable: HeadUnusable | undefined =
        head && 'unusable' in head ? head.unusable : head === undefined && tail.last.sealed ? { reason: 'missing', detail: 'was absent although the chain ended in a seal' } : undefined;
      after = { ...tail.last, ...(headSeq === undefined ? {} : { headSeq }), ...(unusable ? { headUnusable: unusable } : {}) };
      if (unusable) {
        this.options.logger?.warn(
          { instance: this.instance, file: headFileName(this.instance), reason: unusable.reason, detail: unusable.detail },
          'transcript head file cannot be used: removal of the newest records before this start cannot be checked; the new segment records this, and audit verify reports it',
        );
      }
      this.nextSeq = tail.last.lastSeq + 1;
      this.lastHash = tail.last.lastHash;
      if (headSeq !== undefined && headSeq + 1 > tail.last.lastSeq) {
        this.options.logger?.warn({ instance: this.instance, headSeq, lastSeq: tail.last.lastSeq }, 'transcript store ends before its signed head: records were removed');
      }
    } else if (headSeq !== undefined) {
      this.options.logger?.warn({ instance: this.instance, headSeq }, 'transcript head file names records that are no longer present');
    }
    this.startSegment(tail.maxIndex + 1, after, tail.abandoned);
    if (!this.flushNow()) throw this.failure ?? new TranscriptWriteError('cannot write the segment header');
    fdatasyncSync(this.seg.fd);
    this.seg.synced = this.seg.size;
    this.applyRetention();
  }

  /**
   * After a failed start: closes the segment it began, and removes it if nothing of it was
   * written (a full disk refused its `open` record). Each failed start would otherwise leave an
   * empty file, and an empty file that is not the newest reads as corrupt to `audit verify`.
   */
  private discardEmptySegment(): void {
    const seg = this.seg as Segment | undefined;
    if (!seg) return;
    let empty = false;
    try {
      empty = fstatSync(seg.fd).size === 0;
    } catch {
      // cannot tell: the file is left as it is (verify reports it as a torn start)
    }
    seg.closeFd();
    if (!empty) return;
    try {
      unlinkSync(join(this.options.dir, seg.name));
    } catch {
      // left in place: verify reports an empty newest segment as a torn start
    }
  }

  /** The seq the instance's head file covers; undefined when there is none; why it cannot be used otherwise. */
  private async readHead(): Promise<{ seq: number; start: ChainStart | undefined } | { unusable: HeadUnusable } | undefined> {
    let text: string;
    try {
      text = readFileSync(join(this.options.dir, headFileName(this.instance)), 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      return code === 'ENOENT' ? undefined : { unusable: { reason: 'unreadable', detail: `could not be read (${code ?? String(err)})` } };
    }
    const jws = parseHeadFile(text);
    if (jws === undefined) return { unusable: { reason: 'corrupt', detail: 'was not a transcript head file' } };
    const { kid } = this.options.key;
    const check = await verifyMark(jws, [{ publicKey: this.options.key.publicKey, kid, source: 'writer' }]);
    if (!check.ok) {
      // Signed with a key this writer does not hold (the signing key was replaced): it cannot
      // tell a valid head from a forged one.
      if (check.kid !== undefined && check.kid !== kid) return { unusable: { reason: 'other-key', detail: `was signed with key ${check.kid}, which this warden does not hold` } };
      return { unusable: { reason: 'bad-signature', detail: `did not verify: ${check.reason}` } };
    }
    if (check.mark.instance !== this.instance) return { unusable: { reason: 'corrupt', detail: `held the head of instance ${check.mark.instance}` } };
    return { seq: check.mark.seq, start: check.mark.start };
  }

  /**
   * Appends one record. Resolves when it is durable per the fsync policy; rejects with
   * TranscriptWriteError when it cannot be (or when the writer is unhealthy or closed).
   */
  append(kind: RecordKind, sid: string | undefined, data: unknown): Promise<void> {
    let dJson: string | undefined;
    try {
      dJson = JSON.stringify(data) as string | undefined;
      if (dJson === undefined) throw new TypeError('no JSON value');
    } catch (err) {
      return Promise.reject(new TranscriptWriteError(`a ${kind} record cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, { code: 'EENCODE', cause: err }));
    }
    try {
      return this.appendJson(kind, sid === undefined ? undefined : JSON.stringify(sid), dJson, true).done as Promise<void>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Appends a record whose session id (`sidJson`, a JSON string) and data (`dJson`, a JSON object)
   * are serialized already, and returns it. With `wait`, its `done` settles like append's
   * promise; without, nothing waits for it, and a failure to write it makes the writer unhealthy
   * (and is logged) like any other. Throws TranscriptWriteError when the record cannot be taken:
   * the writer is unhealthy or closed, or the record is over the size limit.
   */
  appendJson(kind: RecordKind, sidJson: string | undefined, dJson: string, wait = false): PendingRecord {
    return this.take(kind, sidJson, dJson, wait, false);
  }

  /**
   * appendJson for a record that may gain a member (`extend`) until it is settled (`settle`) or
   * written. `members` is its `d` without the closing brace: the writer adds the member, then the
   * brace, to the end of the string, rather than cutting the brace off a finished one.
   */
  appendOpen(kind: RecordKind, sidJson: string | undefined, members: string, wait = false): PendingRecord {
    return this.take(kind, sidJson, members, wait, true);
  }

  private take(kind: RecordKind, sidJson: string | undefined, d: string, wait: boolean, open: boolean): PendingRecord {
    if (this.failure) throw this.failure;
    if (this.closed) throw new TranscriptWriteError('the transcript writer is closed', { code: 'ECLOSED' });
    const record = this.add(kind, sidJson, d, open);
    if (wait) record.done = (this.batchDone ??= deferred()).promise;
    if (!open) this.chainSettled();
    if (this.seg.size + this.batchBytes() >= this.options.segmentMaxBytes) this.rotate();
    else if (this.sinceMark >= this.options.checkpointEveryRecords) this.mark('checkpoint');
    this.scheduleFlush();
    return record;
  }

  /**
   * Adds `"member":json` to the data of an open record not yet chained (still in the batch in
   * memory), and settles it: a record gains one member at most. False when it is chained or
   * settled already, or would outgrow the record limit: the caller then appends its own record.
   * With `wait`, returns the promise of the record's batch instead of true.
   */
  extend(record: PendingRecord, member: string, json: string, wait = false): boolean | Promise<void> {
    if (record.chained || !record.open || this.failure) return false;
    const added = member.length + 4 + json.length; // ,"member":json
    if ((record.size + added) * 3 > this.options.recordBytes) {
      const bytes = this.exactBytes(record) + member.length + 4 + Buffer.byteLength(json);
      if (bytes > this.options.recordBytes) {
        this.settle(record);
        return false;
      }
    }
    record.d = `${record.d},"${member}":${json}`;
    record.size += added;
    this.pendingSize += added;
    if (wait) record.done = (this.batchDone ??= deferred()).promise;
    this.settle(record);
    return wait ? (record.done as Promise<void>) : true;
  }

  /** An open record will gain no member: it, and the complete records after it, may be chained. */
  settle(record: PendingRecord): void {
    if (!record.open) return;
    record.open = false;
    if (!this.failure) this.chainSettled();
  }

  health(): WriterHealth {
    return {
      healthy: !this.failure && !this.closed,
      closed: this.closed,
      ...(this.failure ? { error: this.failure.message, code: this.failure.code } : {}),
      instance: this.instance,
      segment: this.seg.name,
      seq: this.nextSeq - 1,
      fsync: this.options.fsync,
    };
  }

  get healthy(): boolean {
    return !this.failure && !this.closed;
  }

  /** The active segment's file descriptor (tests use it to break the writer). */
  get activeFd(): number {
    return this.seg.fd;
  }

  get activeFile(): string {
    return join(this.options.dir, this.seg.name);
  }

  /** The active segment's number in the chain: it changes when a new segment begins. */
  get activeSegment(): number {
    return this.seg.index;
  }

  /** Seals the active segment, makes everything durable, releases the instance lock. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const seg = this.seg;
    // An fsync in flight ends first, or the disk is taken to be stuck (the writer fails): the
    // seal's own fsync is then not tried, so that a disk that stopped answering cannot hang stop.
    await this.syncSettled(seg);
    if (!this.failure) {
      try {
        this.mark('seal');
        if (this.flushNow()) {
          // Under fsync `each` the write began an fsync that covers the seal: it is waited for.
          await this.syncSettled(seg);
          if (!this.failure && seg.synced < seg.size) await this.syncWithin(seg);
          if (!this.failure) this.onSynced(seg, seg.size);
        }
      } catch (err) {
        this.fail(err, 'cannot seal the transcript segment');
      }
    }
    // Nothing in flight on the file when it is closed (but an fsync the disk does not answer).
    await this.syncSettled(seg);
    seg.closeFd();
    await this.headDrain;
    this.releaseLock();
  }

  /**
   * Waits until no fsync of `seg` is in flight (one may start the next), each for what is left of
   * the stall timeout; one past it fails the writer (ESTALLED) and is not waited for.
   */
  private async syncSettled(seg: Segment): Promise<void> {
    while (seg.syncing) {
      const left = Math.max(0, this.stallMs - (performance.now() - seg.syncStartedAt));
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        new Promise<boolean>((resolve) => seg.idleWaiters.push(() => resolve(true))),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), left))),
      ]);
      clearTimeout(timer);
      if (!done) {
        this.fail(this.stalled(seg), 'cannot fsync the transcript segment');
        return;
      }
    }
  }

  /** fdatasync of `seg` (none other in flight) off the event loop, given up (ESTALLED) after the stall timeout. */
  private async syncWithin(seg: Segment): Promise<void> {
    seg.syncing = true;
    seg.syncStartedAt = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve, reject) =>
          fdatasync(seg.fd, (err) => {
            seg.syncing = false;
            if (err) reject(err);
            else resolve();
          }),
        ),
        new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(this.stalled(seg)), this.stallMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private get stallMs(): number {
    return this.options.syncStallMs ?? DEFAULT_SYNC_STALL_MS;
  }

  private stalled(seg: Segment): TranscriptWriteError {
    return new TranscriptWriteError(
      `an fsync of ${seg.name} has not returned for ${Math.round((performance.now() - seg.syncStartedAt) / 1000)} s (sync_stall_timeout ${this.stallMs / 1000} s): the disk is not answering`,
      { code: 'ESTALLED' },
    );
  }

  // ---- records ----------------------------------------------------------------------------------

  /** Takes a record into the current batch: its place in the chain and its time are fixed here. */
  private add(kind: RecordKind, sidJson: string | undefined, dJson: string, open = false): PendingRecord {
    const ts = recordTime(this.clock());
    const size = encodedRecordBytes(this.nextSeq, ts, kind, sidJson?.length, dJson.length + (open ? 1 : 0));
    const record: PendingRecord = { seq: this.nextSeq, ts, kind, sidJson, d: dJson, unclosed: open, size, chained: false, open };
    if (size * 3 > this.options.recordBytes) {
      const bytes = this.exactBytes(record);
      if (bytes > this.options.recordBytes) {
        throw new TranscriptWriteError(`a ${kind} record of ${bytes} bytes exceeds the ${this.options.recordBytes}-byte record limit`, { code: 'ERECORDTOOLARGE' });
      }
    }
    this.nextSeq += 1;
    this.seg.records += 1;
    if (kind !== RECORD_KIND.checkpoint) this.sinceMark += 1;
    this.pending.push(record);
    this.pendingSize += size;
    return record;
  }

  /** Bytes of a pending record's line once encoded. */
  private exactBytes(r: PendingRecord): number {
    return encodedRecordBytes(r.seq, r.ts, r.kind, r.sidJson === undefined ? undefined : Buffer.byteLength(r.sidJson), Buffer.byteLength(r.d) + (r.unclosed ? 1 : 0));
  }

  /** Bytes of the current batch: its lines, and its pending records as far as they are known. */
  private batchBytes(): number {
    return this.lines.length + this.pendingSize;
  }

  /** Chains the batch's pending records, in order, open or not (the batch is being written or marked). */
  private chainPending(): void {
    this.chain(this.pending.length);
  }

  /**
   * What a batch write under fsync `interval` chains: the pending records up to the first open one
   * not yet held over, so that a statement whose result is on its way may still gain it (one
   * line, one hash) in the next batch. An open record is held over one write at most, and only
   * while nobody waits for any record after it; under `each` every write chains all.
   */
  private chainDue(): void {
    const pending = this.pending;
    let n = 0;
    while (n < pending.length && !((pending[n] as PendingRecord).open && !(pending[n] as PendingRecord).heldOver)) n++;
    for (let i = n; i < pending.length; i++) {
      if ((pending[i] as PendingRecord).done !== undefined) {
        n = pending.length;
        break;
      }
    }
    this.chain(n);
    for (const r of this.pending) r.heldOver = true;
  }

  /** Chains the pending records up to the first open one. */
  private chainSettled(): void {
    const pending = this.pending;
    let n = 0;
    while (n < pending.length && !(pending[n] as PendingRecord).open) n++;
    if (n > 0) this.chain(n);
  }

  /** Chains the first `n` pending records: builds and hashes each line over the previous one. */
  private chain(n: number): void {
    if (n === 0) return;
    const pending = this.pending;
    let prev = this.lastHash;
    for (let i = 0; i < n; i++) {
      const r = pending[i] as PendingRecord;
      prev = this.lines.append(r.seq, r.ts, prev, r.kind, r.sidJson, r.unclosed ? `${r.d}}` : r.d);
      r.chained = true;
      r.open = false;
      r.d = ''; // a recorder may hold the record a while; the line has what it said
      this.pendingSize -= r.size;
    }
    this.lastHash = prev;
    if (n === pending.length) this.pending = [];
    else pending.splice(0, n);
  }

  /** Signs the chain up to the last record and appends the checkpoint or seal that says so. */
  private mark(typ: 'checkpoint' | 'seal'): void {
    this.chainPending();
    const seg = this.seg;
    const now = this.clock();
    const mark: SignedMark = {
      typ,
      instance: this.instance,
      segment: seg.index,
      file: seg.name,
      seq: this.nextSeq - 1,
      hash: this.lastHash,
      records: seg.records,
      firstSeq: seg.firstSeq,
      ts: new Date(now).toISOString(),
      ...(this.chainStart ? { start: this.chainStart } : {}),
    };
    const jws = signMark(this.options.key, mark);
    this.add(typ === 'seal' ? RECORD_KIND.seal : RECORD_KIND.checkpoint, undefined, JSON.stringify({ jws }));
    // Chained at once, so the batch's bytes are exact: the head may name the mark only once the
    // file holds it whole.
    this.chainPending();
    seg.heads.push({ upTo: seg.size + this.lines.length, mark, jws });
    this.sinceMark = 0;
    this.lastMarkAt = now;
  }

  private startSegment(index: number, after: OpenAfter | null, abandoned: string[]): void {
    const now = this.clock();
    const name = segmentFileName(this.instance, index, now);
    const fd = openSync(join(this.options.dir, name), 'wx', 0o640);
    syncDir(this.options.dir);
    this.seg = new Segment(fd, name, index, this.nextSeq, this.lastHash, now);
    const data: OpenData = {
      format: FORMAT_VERSION,
      instance: this.instance,
      segment: index,
      file: name,
      kid: this.options.key.kid,
      writer: { pid: process.pid, host: hostname(), started: this.startedAt },
      after,
      ...(abandoned.length > 0 ? { abandoned } : {}),
    };
    this.add(RECORD_KIND.open, undefined, JSON.stringify(data));
  }

  /** Seals the active segment, makes it durable, and starts the next one. Synchronous. */
  private rotate(): void {
    const old = this.seg;
    try {
      this.mark('seal');
      if (!this.flushNow()) return;
      fdatasyncSync(old.fd);
    } catch (err) {
      this.fail(err, `cannot seal transcript segment ${old.name}`);
      return;
    }
    this.onSynced(old, old.size);
    old.retired = true;
    if (!old.syncing) old.closeFd();
    try {
      this.startSegment(old.index + 1, { segment: old.index, file: old.name, lastSeq: this.nextSeq - 1, lastHash: this.lastHash, sealed: true, tornBytes: 0 }, []);
    } catch (err) {
      this.fail(err, 'cannot start a new transcript segment');
      return;
    }
    this.carryOver();
  }

  /** Writes the records SegmentWriterOptions.carryOver asks for at the start of a new segment. */
  private carryOver(): void {
    const carried = this.options.carryOver?.() ?? [];
    // At most half a segment: what is carried must never fill the segment it opens (each record
    // after it would start another).
    let room = this.options.segmentMaxBytes / 2;
    let left = 0;
    for (const c of carried) {
      const bytes = Buffer.byteLength(c.sidJson) + Buffer.byteLength(c.dJson) + CARRIED_RECORD_OVERHEAD;
      if (bytes > room) {
        left++;
        continue;
      }
      try {
        this.add(c.kind, c.sidJson, c.dJson);
        room -= bytes;
      } catch (err) {
        // Over the record limit (a start that only just fitted): that session goes without.
        this.options.logger?.warn({ err: err instanceof Error ? err.message : String(err), session: c.sidJson }, 'a session still open could not be carried over to the new segment');
      }
    }
    if (left > 0) this.options.logger?.warn({ sessions: left, segment: this.seg.name }, 'sessions still open were not carried over to the new segment: their starts would take more than half of it (raise transcripts.segment_max_bytes)');
    if (carried.length > 0) this.chainSettled();
  }

  /** The writer's clock: milliseconds since the epoch (record times). */
  time(): number {
    return this.clock();
  }

  // ---- writing ----------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.options.fsync === 'interval' && this.batchBytes() >= BATCH_FLUSH_BYTES) {
      this.flushNow();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = (): void => {
      this.flushScheduled = false;
      this.flushNow();
    };
    // At low rates a record is written on the next turn of the event loop; at high rates writes
    // are spaced WRITE_DELAY_MS apart, each carrying everything appended meanwhile.
    const wait = this.options.fsync === 'interval' ? this.lastWriteAt + Math.min(WRITE_DELAY_MS, this.options.fsyncIntervalMs) - Date.now() : 0;
    if (wait > 0) setTimeout(run, wait);
    else setImmediate(run);
  }

  /** When the last batch was written (Date.now()). */
  private lastWriteAt = 0;

  /** Writes the current batch to the active segment. False when the writer failed. */
  private flushNow(): boolean {
    if (this.failure) return false;
    if (this.options.fsync === 'interval' && !this.closed) this.chainDue();
    else this.chainPending();
    if (this.lines.length === 0) {
      this.flushHeldOver();
      return true;
    }
    const seg = this.seg;
    const data = this.lines.bytes();
    const size = data.length;
    const done = this.batchDone;
    this.batchDone = undefined;
    let written = 0;
    try {
      while (written < size) written += writeSync(seg.fd, data, written, size - written, seg.size + written);
    } catch (err) {
      this.lines.clear();
      let detail = '';
      if (written > 0) {
        try {
          ftruncateSync(seg.fd, seg.size);
        } catch (truncErr) {
          detail = `; ${written} bytes of a partial batch remain after offset ${seg.size} (${errnoCode(truncErr) ?? String(truncErr)})`;
        }
      }
      if (done) done.reject(this.failWith(err, `cannot write to transcript segment ${seg.name}${detail}`));
      else this.fail(err, `cannot write to transcript segment ${seg.name}${detail}`);
      return false;
    }
    this.lines.clear(); // written synchronously: the buffer is free again
    seg.size += size;
    if (this.removed(seg)) {
      const err = this.segmentRemoved(seg);
      if (done) done.reject(this.failWith(err, err.message));
      else this.fail(err, err.message);
      return false;
    }
    this.lastWriteAt = Date.now();
    this.flushHeldOver();
    if (this.options.fsync === 'each') {
      if (done) seg.groups.push({ upTo: seg.size, done });
      this.startSync(seg);
    } else {
      done?.resolve();
    }
    return true;
  }

  /** Records held over go out with the next batch, whether or not anything else is appended. */
  private flushHeldOver(): void {
    if (this.pending.length > 0) this.scheduleFlush();
  }

  private startSync(seg: Segment): void {
    if (seg.syncing || seg.fdClosed || seg.size <= seg.synced) return;
    seg.syncing = true;
    seg.syncStartedAt = performance.now();
    const upTo = seg.size;
    fdatasync(seg.fd, (err) => {
      seg.syncing = false;
      if (seg.retired || this.failure) {
        if (seg.retired || this.closed) seg.closeFd();
      } else if (err) {
        this.fail(err, `cannot fsync transcript segment ${seg.name}`);
      } else {
        this.onSynced(seg, upTo);
        if (seg.groups.length > 0) this.startSync(seg);
      }
      for (const wake of seg.idleWaiters.splice(0)) wake();
    });
  }

  /** Everything up to `upTo` is durable: release waiters and publish the newest durable mark. */
  private onSynced(seg: Segment, upTo: number): void {
    seg.synced = Math.max(seg.synced, upTo);
    while (seg.groups.length > 0 && (seg.groups[0] as { upTo: number }).upTo <= seg.synced) seg.groups.shift()?.done.resolve();
    let newest: PendingHead | undefined;
    while (seg.heads.length > 0 && (seg.heads[0] as PendingHead).upTo <= seg.synced) newest = seg.heads.shift();
    if (newest && newest.mark.seq > this.headSeq) {
      this.headSeq = newest.mark.seq;
      this.headPending = newest;
      if (!this.headDrain) this.headDrain = this.drainHeads();
    }
  }

  /** Writes the newest durable mark to the head file, off the hot path; one write at a time. */
  private async drainHeads(): Promise<void> {
    try {
      while (this.headPending && !this.failure) {
        const head = this.headPending;
        this.headPending = undefined;
        await writeHeadFile(this.options.dir, this.instance, head.jws);
        this.options.onCheckpoint?.(head.mark, head.jws);
      }
    } catch (err) {
      this.fail(err, 'cannot write the transcript head file');
    } finally {
      this.headDrain = undefined;
    }
  }

  private onTick(): void {
    if (this.failure || this.closed) return;
    if (this.syncStalled(this.seg)) {
      this.fail(this.stalled(this.seg), 'cannot fsync the transcript segment');
      return;
    }
    if (this.pathMoved(this.seg)) {
      const err = this.segmentRemoved(this.seg);
      this.fail(err, err.message);
      return;
    }
    const now = this.clock();
    if (this.sinceMark > 0 && now - this.lastMarkAt >= this.options.checkpointIntervalMs) {
      this.mark('checkpoint');
      this.scheduleFlush();
    }
    if (this.seg.records > 1 && now - this.seg.openedAt >= this.options.segmentMaxAgeMs) {
      this.flushNow();
      if (!this.failure) this.rotate();
      // The new segment's `open` record goes out now, not with the next record: until then the
      // file would be empty, which `audit verify` takes for a writer that died creating it.
      if (!this.failure) this.flushNow();
    }
    if (this.options.fsync === 'interval' && now - this.lastIntervalSync >= this.options.fsyncIntervalMs) {
      this.lastIntervalSync = now;
      this.startSync(this.seg);
    }
    if (this.options.retentionMs !== undefined && now - this.lastRetentionCheck >= RETENTION_CHECK_MS && !this.failure) this.applyRetention();
  }

  /**
   * Removes this instance's oldest segments whose records are all older than the retention: a
   * segment's records are older than the start of the segment after it (its file name says when).
   * First a checkpoint signs where the chain now begins (SignedMark.start) and is made durable;
   * only then are the files removed, so a crash in between leaves segments that are still whole,
   * not a chain whose beginning nothing vouches for. The active segment is never removed, nor a
   * record not yet shipped (keepFromSeq). Synchronous, like a rotation; runs at start and at most
   * once a minute. A file that cannot be removed is logged and retried at the next check.
   */
  private applyRetention(): void {
    const retentionMs = this.options.retentionMs;
    if (retentionMs === undefined || this.closed) return;
    const now = this.clock();
    this.lastRetentionCheck = now;
    const log = this.options.logger;
    let segments: SegmentEntry[];
    try {
      segments = segmentsOf(listTranscriptDir(this.options.dir)).filter((e) => e.instance === this.instance && e.index < this.seg.index);
    } catch (err) {
      log?.warn({ err: errnoCode(err) ?? String(err), dir: this.options.dir }, 'transcript retention: cannot list the transcript directory; nothing removed');
      return;
    }
    if (segments.length === 0) return;
    const { keep, doomed } = planRetention({
      segments,
      active: { index: this.seg.index, name: this.seg.name, firstSeq: this.seg.firstSeq },
      cutoff: now - retentionMs,
      keepFrom: this.options.keepFromSeq?.(),
      sealedAt: (e) => sealTimeOf(e.path, this.options.key.publicKey),
    });
    if (doomed.length === 0) return;
    const first = keep.index === this.seg.index ? { seq: this.seg.firstSeq, prev: this.seg.firstPrev } : firstRecordOf(join(this.options.dir, keep.name));
    if (!first) {
      log?.warn({ file: keep.name }, 'transcript retention: cannot read the first record of the oldest segment to keep; nothing removed');
      return;
    }
    const start: ChainStart = { segment: keep.index, file: keep.name, seq: first.seq, prev: first.prev, ts: new Date(now).toISOString() };
    this.chainStart = start;
    try {
      this.mark('checkpoint');
      if (!this.flushNow()) return;
      fdatasyncSync(this.seg.fd);
    } catch (err) {
      this.fail(err, 'cannot sign where the transcript chain begins after retention');
      return;
    }
    this.onSynced(this.seg, this.seg.size);
    const removed: string[] = [];
    let notRemoved: { file: string; error: string } | undefined;
    for (const e of doomed) {
      try {
        unlinkSync(e.path);
        removed.push(e.name);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        notRemoved = { file: e.name, error: errnoCode(err) ?? String(err) };
        log?.warn({ file: e.name, err: notRemoved.error }, 'transcript retention: cannot remove a segment past retention; retried at the next check');
        break;
      }
    }
    try {
      syncDir(this.options.dir);
    } catch {
      // the removals stand or not; verify accepts either (the signed start names what must remain)
    }
    this.retained.push({ removed, start, ...(notRemoved ? { notRemoved } : {}) });
    log?.info({ instance: this.instance, removed: removed.length, upTo: removed[removed.length - 1], chainStartsAt: { file: keep.name, seq: first.seq } }, 'transcript retention removed segments older than the retention');
  }

  /** What retention removed since this writer started, each time, and where the chain began after. */
  get retention(): ReadonlyArray<RetentionDone> {
    return this.retained;
  }

  /**
   * The segment's file has no name any more (removed while warden writes it): what is written to
   * it is lost with its last descriptor. Checked after every batch write (one fstat); a rename is
   * caught by the tick's look at the path (pathMoved).
   */
  private removed(seg: Segment): boolean {
    try {
      return fstatSync(seg.fd).nlink === 0;
    } catch {
      return false; // an fstat that fails says nothing of the file: the next write or fsync will
    }
  }

  /** The segment's name no longer leads to its file (removed, or another file put in its place). */
  private pathMoved(seg: Segment): boolean {
    try {
      return statSync(join(this.options.dir, seg.name)).ino !== fstatSync(seg.fd).ino;
    } catch (err) {
      return errnoCode(err) === 'ENOENT';
    }
  }

  private segmentRemoved(seg: Segment): TranscriptWriteError {
    return new TranscriptWriteError(
      `transcript segment ${seg.name} was removed or moved while warden was writing it: its records since then are not in the transcript directory`,
      { code: 'EREMOVED' },
    );
  }

  /** An fsync of `seg` has been in flight longer than the stall timeout. */
  private syncStalled(seg: Segment): boolean {
    return seg.syncing && performance.now() - seg.syncStartedAt > this.stallMs;
  }

  // ---- failure ----------------------------------------------------------------------------------

  private failWith(cause: unknown, message: string): TranscriptWriteError {
    this.fail(cause, message);
    return this.failure as TranscriptWriteError;
  }

  private fail(cause: unknown, message: string): void {
    if (this.failure) return;
    const err =
      cause instanceof TranscriptWriteError ? cause : new TranscriptWriteError(`${message}: ${errnoCode(cause) ?? String(cause)}`, { cause });
    this.failure = err;
    clearInterval(this.timer);
    this.batchDone?.reject(err);
    this.batchDone = undefined;
    this.pending = [];
    this.pendingSize = 0;
    this.lines.clear();
    for (const g of this.seg.groups.splice(0)) g.done.reject(err);
    this.seg.heads = [];
    this.options.logger?.error({ err: { message: err.message, code: err.code }, instance: this.instance }, 'transcript writer failed; new statements will be refused');
    this.options.onUnhealthy?.(err);
  }

  private releaseLock(): void {
    releaseLock(this.lockPath);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

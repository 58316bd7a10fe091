// Ships this instance's transcript records to the shared PostgreSQL store (store-postgres.ts):
// every complete line of the local segments, byte for byte, in batches, off the hot path. The
// local files stay the source of truth: the shipper only reads them, and nothing it does (a store
// that is down, slow or refusing) reaches the relay or the writer.
//
// Position. The store's highest seq for the instance says where shipping resumes (after a restart,
// or after the store was unreachable). The shipper finds that record in the local files and checks
// it is byte for byte the one shipped; then it reads on from there, across segment rotations. A
// store record that differs from the local one (the store holds another chain under this instance
// id, or local records were lost after they were shipped) stops shipping: `diverged`, with the seq.
//
// Failures. A batch that cannot be written is kept and sent again after a backoff (doubling up to
// retryMaxMs); the store's answer decides, so a batch whose commit was not acknowledged is not
// shipped twice (the rows already there with the same bytes are accepted).
//
// Lag: records written locally but not yet in the store, and how long since the store last held
// everything; in health() (/healthz, /transcripts/health) and as metrics.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, type Metrics } from '../admin/metrics.js';
import { silentLogger, type Logger } from '../log.js';
import { DEFAULT_LIMITS } from './config.js';
import { errnoCode } from './errors.js';
import { parseLine, RECORD_KIND } from './frame.js';
import { peekMark } from './jws.js';
import { readLines, type RawLine } from './line-reader.js';
import { listTranscriptDir, segmentsOf, type SegmentName } from './segment-files.js';
import { ShipConflictError, type PostgresTranscriptStore, type ShippedRow } from './store-postgres.js';

/** A batch is sent once it holds this many bytes, whatever its record count. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;
/** How long close() keeps shipping what is left (the seal written at shutdown) by default. */
const DRAIN_MS = 5_000;

export type ShipState = 'starting' | 'shipping' | 'caught-up' | 'retrying' | 'diverged' | 'closed';

export interface ShipHealth {
  state: ShipState;
  instance: string;
  store: string;
  /** Highest seq of this instance known to be in the store. */
  shippedSeq: number;
  /** Highest seq written locally (when the writer is known). */
  localSeq?: number;
  /** Records written locally and not yet in the store. */
  lagRecords: number;
  /** Seconds since the store last held every local record (0 when it does). */
  lagSeconds: number;
  lastShippedAt?: string;
  /** Why the last attempt failed (retrying), or why shipping stopped (diverged). */
  error?: string;
  /** Consecutive failed attempts. */
  failures: number;
  /** Local lines not shipped because they are not records, or repeat or go back in seq. */
  skipped: number;
}

export interface ShipperOptions {
  store: PostgresTranscriptStore;
  /** The local transcript directory. */
  dir: string;
  /** The writer's instance id (as in the file names). */
  instance: string;
  /** The signing key's id and its public key file, registered with the store for verification. */
  keyId: string;
  publicKeyFile: string;
  /** Records per transaction. */
  batch: number;
  /** How often to look for new records when caught up, ms. */
  intervalMs: number;
  /** The writer's newest seq, for the lag. */
  localSeq?: () => number;
  logger?: Logger;
  metrics?: Metrics;
  retryMinMs?: number;
  retryMaxMs?: number;
  clock?: () => number;
}

/** Where reading resumes: the start of a line in a local segment. */
interface Cursor {
  segment: number;
  file: string;
  offset: number;
  lineNo: number;
}

interface Batch {
  rows: ShippedRow[];
  /** The cursor after the batch, and the highest seq read. */
  end: Cursor | undefined;
  lastSeq: number;
  /** The newest checkpoint or seal in the batch, which becomes the store's head for the instance. */
  head?: { seq: number; jws: string };
  skipped: number;
}

/** The store holds a record this instance's files do not (or not with these bytes). */
class DivergedError extends Error {
  override readonly name = 'DivergedError';
}

interface ShipMetrics {
  lagRecords: Gauge;
  lagSeconds: Gauge;
  shipped: Counter;
  failures: Counter;
}

export class TranscriptShipper {
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly maxLineBytes = DEFAULT_LIMITS.recordBytes + 1;
  private readonly publicKeyPem: string;
  private readonly metrics: ShipMetrics | undefined;
  private state: ShipState = 'starting';
  /** Resumed against the store since the last failure. */
  private positioned = false;
  private everPositioned = false;
  private cursor: Cursor | undefined;
  /** Highest seq read locally (the cursor's); records at or below it are not shipped again. */
  private readSeq = 0;
  private shippedSeq = 0;
  private pending: Batch | undefined;
  private failures = 0;
  private skipped = 0;
  private error: string | undefined;
  private lastShippedAt: number | undefined;
  private caughtUpAt: number;
  private stopping = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(private readonly opts: ShipperOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'transcript-shipper', instance: opts.instance });
    this.clock = opts.clock ?? Date.now;
    this.caughtUpAt = this.clock();
    this.publicKeyPem = readFileSync(opts.publicKeyFile, 'utf8');
    if (opts.metrics) {
      const m = opts.metrics;
      this.metrics = {
        lagRecords: m.register(new Gauge('warden_transcript_ship_lag_records', 'Transcript records written locally and not yet in the shared store.')),
        lagSeconds: m.register(new Gauge('warden_transcript_ship_lag_seconds', 'Seconds since the shared store last held every local transcript record.')),
        shipped: m.register(new Counter('warden_transcript_shipped_records_total', 'Transcript records shipped to the shared store.')),
        failures: m.register(new Counter('warden_transcript_ship_failures_total', 'Failed attempts to ship transcript records (the store was down or refused).')),
      };
    }
  }

  /** Starts shipping in the background. Never throws for the store: it is retried until it answers. */
  static start(opts: ShipperOptions): TranscriptShipper {
    const shipper = new TranscriptShipper(opts);
    shipper.loop = shipper.run();
    return shipper;
  }

  health(): ShipHealth {
    const now = this.clock();
    const localSeq = this.opts.localSeq?.();
    const lagRecords = localSeq === undefined ? (this.pending?.rows.length ?? 0) : Math.max(0, localSeq - this.shippedSeq);
    const caughtUp = localSeq === undefined ? this.state === 'caught-up' : this.everPositioned && lagRecords === 0;
    if (caughtUp) this.caughtUpAt = now;
    const lagSeconds = Math.round(Math.max(0, now - this.caughtUpAt)) / 1000;
    if (this.metrics) {
      this.metrics.lagRecords.set(lagRecords);
      this.metrics.lagSeconds.set(lagSeconds);
    }
    return {
      state: this.state,
      instance: this.opts.instance,
      store: this.opts.store.name,
      shippedSeq: this.shippedSeq,
      ...(localSeq === undefined ? {} : { localSeq }),
      lagRecords,
      lagSeconds,
      ...(this.lastShippedAt === undefined ? {} : { lastShippedAt: new Date(this.lastShippedAt).toISOString() }),
      ...(this.error === undefined ? {} : { error: this.error }),
      failures: this.failures,
      skipped: this.skipped,
    };
  }

  /**
   * Stops, then keeps shipping what is left for up to `drainMs` (the seal the writer adds when it
   * closes: close the writer first). What is still unshipped then goes at the next start.
   */
  close(drainMs = DRAIN_MS): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      this.wake?.();
      await this.loop;
      // A store that just failed is not waited for again: what is left goes at the next start.
      if (this.state !== 'diverged' && this.state !== 'retrying' && drainMs > 0) await this.drain(this.clock() + drainMs);
      this.state = 'closed';
      this.health();
    })();
    return this.closing;
  }

  // ---- the loop ---------------------------------------------------------------------------------

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const more = await this.step();
        this.health();
        if (!more) await this.sleep(this.opts.intervalMs);
      } catch (err) {
        if (err instanceof DivergedError || err instanceof ShipConflictError) {
          this.diverge(err.message);
          return;
        }
        this.failed(err);
        this.health();
        await this.sleep(this.backoff());
      }
    }
  }

  /** One batch: true when there may be more to ship at once. */
  private async step(): Promise<boolean> {
    if (!this.positioned) await this.position();
    const batch = this.pending ?? (await this.readBatch());
    if (batch.rows.length === 0) {
      this.commit(batch);
      this.setState('caught-up');
      return false;
    }
    this.pending = batch;
    this.setState('shipping');
    await this.opts.store.ship(this.opts.instance, batch.rows, batch.head);
    this.commit(batch);
    this.lastShippedAt = this.clock();
    this.metrics?.shipped.inc(undefined, batch.rows.length);
    if (this.failures > 0) this.log.info({ failures: this.failures, shippedSeq: this.shippedSeq }, 'transcript store reachable again; shipping resumed');
    this.failures = 0;
    this.error = undefined;
    return true;
  }

  private commit(batch: Batch): void {
    this.pending = undefined;
    this.cursor = batch.end ?? this.cursor;
    this.readSeq = batch.lastSeq;
    if (batch.rows.length > 0) this.shippedSeq = Math.max(this.shippedSeq, (batch.rows[batch.rows.length - 1] as ShippedRow).seq);
    if (batch.skipped > 0) {
      this.skipped += batch.skipped;
      this.log.warn({ skipped: batch.skipped }, 'local transcript lines that are not records in chain order were not shipped (run warden audit verify)');
    }
    if (batch.rows.length === 0) this.caughtUpAt = this.clock();
  }

  private setState(state: ShipState): void {
    this.state = state;
  }

  private failed(err: unknown): void {
    this.failures += 1;
    this.error = err instanceof Error ? err.message : String(err);
    this.metrics?.failures.inc();
    // The store may have taken a batch whose commit was not acknowledged: ask it again.
    this.positioned = false;
    if (this.failures === 1) {
      this.log.warn({ err: this.error, code: errnoCode(err) }, 'cannot ship transcripts to the shared store; retrying (the local files keep every record)');
    }
    this.setState('retrying');
  }

  private diverge(message: string): void {
    this.error = message;
    this.pending = undefined;
    this.setState('diverged');
    this.log.error({ err: message }, 'transcript shipping stopped: the shared store and the local files disagree (run warden audit verify on both)');
  }

  private backoff(): number {
    const min = this.opts.retryMinMs ?? RETRY_MIN_MS;
    const max = this.opts.retryMaxMs ?? RETRY_MAX_MS;
    return Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async drain(deadline: number): Promise<void> {
    try {
      if (!this.positioned) await this.position();
      while (this.clock() < deadline && (await this.step()));
    } catch (err) {
      if (err instanceof DivergedError || err instanceof ShipConflictError) this.diverge(err.message);
      else this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'transcripts not yet shipped at shutdown will be shipped at the next start');
    }
  }

  // ---- where to resume --------------------------------------------------------------------------

  /** Asks the store where this instance's copy ends and finds that record in the local files. */
  private async position(): Promise<void> {
    const { store, instance } = this.opts;
    const end = await store.shippedEnd(instance);
    const storeSeq = end?.seq ?? 0;
    // The store ends where it did after our last batch: keep the cursor (and a batch not yet sent).
    if (this.everPositioned && storeSeq === this.shippedSeq) {
      this.positioned = true;
      return;
    }
    this.pending = undefined;
    this.cursor = end ? await this.locate(end) : undefined;
    // Only a chain that continues the store's copy registers its key there.
    await store.registerKey(instance, this.opts.keyId, this.publicKeyPem);
    this.shippedSeq = storeSeq;
    this.readSeq = storeSeq;
    this.positioned = true;
    this.everPositioned = true;
    this.log.debug({ shippedSeq: storeSeq, cursor: this.cursor }, 'transcript shipping positioned');
  }

  /** The cursor just after the local record `end.seq`, which must be the one the store holds. */
  private async locate(end: { seq: number; line: Buffer }): Promise<Cursor | undefined> {
    const segments = this.localSegments();
    // The newest segment that starts at or before end.seq holds it, if any does.
    let holder = -1;
    for (let i = segments.length - 1; i >= 0 && holder < 0; i--) {
      const first = await this.firstSeqOf(segments[i] as SegmentName);
      if (first !== undefined && first <= end.seq) holder = i;
    }
    const seg = segments[holder];
    if (seg) {
      for await (const raw of this.lines(seg, startOf(seg) as Cursor)) {
        if (!raw.complete) break;
        if (seqOf(raw) !== end.seq) continue;
        if (!raw.bytes.equals(end.line)) {
          throw new DivergedError(`the store's record seq ${end.seq} of instance ${this.opts.instance} differs from the local one (${seg.name} line ${raw.lineNo})`);
        }
        return { segment: seg.index, file: seg.name, offset: raw.offset + raw.length + 1, lineNo: raw.lineNo + 1 };
      }
    }
    // Not in the local files. Shipping goes on only from a segment that starts after it (the older
    // local segments were removed); otherwise the local chain went on without it.
    const later = segments[holder + 1];
    if (!later) {
      throw new DivergedError(
        `the store holds instance ${this.opts.instance} up to seq ${end.seq}, which the local files do not: another chain was shipped under this instance id, or local records were lost after they were shipped`,
      );
    }
    const first = await this.firstSeqOf(later);
    if (first !== end.seq + 1) {
      this.log.warn({ storeSeq: end.seq, localFirst: first }, 'the local files resume after a gap from the store; the seq in between are in neither (verify names them)');
    }
    return startOf(later);
  }

  private async firstSeqOf(seg: SegmentName): Promise<number | undefined> {
    for await (const raw of this.lines(seg, startOf(seg) as Cursor)) {
      return raw.complete ? seqOf(raw) : undefined;
    }
    return undefined;
  }

  // ---- reading the local files ------------------------------------------------------------------

  private localSegments(): SegmentName[] {
    try {
      return segmentsOf(listTranscriptDir(this.opts.dir)).filter((s) => s.instance === this.opts.instance);
    } catch {
      return [];
    }
  }

  private lines(seg: SegmentName, at: Cursor): AsyncGenerator<RawLine> {
    return readLines(join(this.opts.dir, seg.name), { start: at.offset, firstLineNo: at.lineNo, maxLineBytes: this.maxLineBytes });
  }

  /** The next whole lines after the cursor, across segments, up to a batch. */
  private async readBatch(): Promise<Batch> {
    const batch: Batch = { rows: [], end: this.cursor, lastSeq: this.readSeq, skipped: 0 };
    let bytes = 0;
    for (;;) {
      const segments = this.localSegments();
      const at = batch.end ?? startOf(segments[0]);
      if (!at) return batch;
      // Listed before reading: once a newer segment exists, this one is complete (sealed, or left
      // by a writer that stopped), so reading it to its end and moving on misses nothing.
      const next = segments.find((s) => s.index > at.segment);
      const current = segments.find((s) => s.index === at.segment);
      batch.end = at;
      if (current) {
        for await (const raw of this.lines(current, at)) {
          if (!raw.complete) break;
          batch.end = { segment: current.index, file: current.name, offset: raw.offset + raw.length + 1, lineNo: raw.lineNo + 1 };
          const row = raw.oversized ? undefined : rowOf(raw, current);
          if (!row || row.seq <= batch.lastSeq) {
            batch.skipped += 1;
            continue;
          }
          batch.rows.push(row);
          batch.lastSeq = row.seq;
          bytes += row.line.length;
          if (row.kind === RECORD_KIND.checkpoint || row.kind === RECORD_KIND.seal) {
            const jws = markOf(row.line);
            if (jws !== undefined) batch.head = { seq: peekMark(jws)?.seq ?? row.seq - 1, jws };
          }
          if (batch.rows.length >= this.opts.batch || bytes >= MAX_BATCH_BYTES) return batch;
        }
      }
      if (!next) return batch;
      batch.end = startOf(next);
    }
  }
}

function startOf(seg: SegmentName | undefined): Cursor | undefined {
  return seg === undefined ? undefined : { segment: seg.index, file: seg.name, offset: 0, lineNo: 1 };
}

/**
 * The members every record line starts with, in the order the writer puts them (frame.ts):
 * `{"seq":…,"ts":…,"prev":"…","k":"…"[,"sid":"…"],"d":` (`ts` in milliseconds, or an ISO 8601
 * string in format 1). Reading only this head keeps the
 * shipper from parsing whole records (a result with captured rows can be hundreds of KiB).
 */
const RECORD_HEAD = /^\{"seq":(\d{1,15}),"ts":(?:"([^"\\]*)"|(\d{1,15})),"prev":"[0-9a-f]{64}","k":"([a-z-]{1,32})"(?:,"sid":("(?:[^"\\]|\\.)*"))?,"d":/;
/** Longest head: a 128-character session id written with \uXXXX escapes fits well within. */
const HEAD_BYTES = 2048;

interface RecordHead {
  seq: number;
  ts: string;
  kind: string;
  sid: string | undefined;
}

/** The head of a record line, or undefined when the line is not one (a damaged line is not shipped). */
function headOf(line: Buffer): RecordHead | undefined {
  const m = RECORD_HEAD.exec(line.toString('utf8', 0, Math.min(line.length, HEAD_BYTES)));
  if (!m || m[1] === undefined || (m[2] === undefined && m[3] === undefined) || m[4] === undefined) return undefined;
  let sid: string | undefined;
  if (m[5] !== undefined) {
    try {
      sid = JSON.parse(m[5]) as string;
    } catch {
      return undefined;
    }
  }
  return { seq: Number(m[1]), ts: m[2] ?? isoOrNaN(Number(m[3])), kind: m[4], sid };
}

/** ISO 8601 for milliseconds since the epoch; 'NaN' (which no Date parses) when out of a Date's range. */
function isoOrNaN(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? 'NaN' : date.toISOString();
}

/** The row for one local line; undefined when the line is not a record. */
function rowOf(raw: RawLine, seg: SegmentName): ShippedRow | undefined {
  const head = headOf(raw.bytes);
  if (!head) return undefined;
  return {
    seq: head.seq,
    segment: seg.index,
    file: seg.name,
    ts: Number.isNaN(Date.parse(head.ts)) ? null : head.ts,
    kind: head.kind,
    sid: head.sid ?? null,
    // Copied: the reader's chunk is not kept alive by a batch waiting for the store.
    line: Buffer.from(raw.bytes),
  };
}

function seqOf(raw: RawLine): number | undefined {
  return headOf(raw.bytes)?.seq;
}

function markOf(line: Buffer): string | undefined {
  const parsed = parseLine(line, false);
  const jws = parsed.ok ? (parsed.record.d as { jws?: unknown }).jws : undefined;
  return typeof jws === 'string' ? jws : undefined;
}

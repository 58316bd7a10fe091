// Wire transcripts, the recording side (docs/transcripts.md, "Wire records"): a PostgreSQL session
// that no statement rule and no masking rule touches is recorded as the bytes its relay reads, on
// the event loop, and the statement flow runs over them only when the transcript is read
// (wire-decoder.ts). On the relay's path, recording holds a reference to each chunk; every 20 ms,
// each session that had traffic copies what it keeps of its chunks (not the rows `capture` does not
// keep: wire-encoder.ts) into one record. That replaces parsing, classifying, serializing and
// hashing every statement as it runs (bench/README.md).
//
// The session's `session-start` is written at once, as for any session; its `wire` records follow
// in the same chain, each the entries read since the last: [kind u8][length u32 LE][time f64 LE]
// [bytes], kind being thread.ts ENTRY's client, server, event or end. The first carries `ctx`, what
// the statement flow needs to know before the first byte (the server's parameters, the capture).
// The session's end is its last entry: readers write its `session-end`, with the statement count.
//
// Resume points: a reader decodes a session from its first `wire` record, which retention may
// remove while the session goes on (a pooled connection outlives any retention). So when a new
// segment begins, each open session that wrote a record before it records a resume point, at once
// if it is idle, else at its next idle point (its last ReadyForQuery forwarded, no client bytes
// since; both directions at a message boundary): the record that follows carries `ctx` again,
// with the server's parameters, the transaction status and the named prepared statements as they
// are then (session-state.ts).
// A reader that has the session's earlier records ignores it; one that begins after them replays
// the session from there.
import { performance } from 'node:perf_hooks';
import type { Recorder, TranscriptStore } from '../../audit/recorder.js';
import { RECORD_KIND } from '../../audit/frame.js';
import type { SessionEndInfo, SessionEventInfo } from '../../audit/types.js';
import type { Logger } from '../../log.js';
import { ENTRY, TIME_ORIGIN, type ThreadSessionStart } from './thread.js';
import { WireBuffer, WireSessionEncoder } from './wire-encoder.js';
import { SessionState } from './session-state.js';
import type { PgRelay } from '../relay.js';

/** An entry's header in a `wire` record: [kind u8][length u32 LE][time f64 LE]. */
export const WIRE_ENTRY_HEADER = 13;

/**
 * What the first `wire` record of a session carries as `ctx`: what the recording thread's worker
 * is told of a session (the session's start, as its `session-start` records it, the server's
 * parameters, the capture, the message limit and the transaction status when relaying began).
 */
export type WireContext = ThreadSessionStart;

/** A session's encoded bytes are written at the next flush, or at once past this. */
const MAX_PENDING_BYTES = 1024 * 1024;
/** A session's chunks are held as read until the next flush, or encoded at once past this. */
const MAX_HELD_BYTES = 64 * 1024;
const DEFAULT_FLUSH_MS = 20;

export interface WireRecordingOptions {
  /** The store the records go to (warden's own chain). */
  store: TranscriptStore;
  logger: Logger;
  /** How long a session's bytes may wait before they are written (transcripts.recording_thread_batch). */
  flushMs?: number;
}

/** Records pass-through sessions as `wire` records (see the top of this file). */
export class WireRecording {
  /** Taps with bytes to write at the next flush (a tap is queued once: WireTap.queued). */
  private dirty: WireTap[] = [];
  /** Sessions recorded here and not ended. */
  private readonly taps = new Set<WireTap>();
  private timer: NodeJS.Timeout | undefined;
  private readonly flushMs: number;
  /** The store's active segment at the last flush: a new one asks every open session for a resume point. */
  private segment: number;

  constructor(private readonly opts: WireRecordingOptions) {
    this.flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
    this.segment = opts.store.writer.activeSegment;
  }

  get healthy(): boolean {
    return this.opts.store.healthy;
  }

  /**
   * A tap for a session whose `session-start` `recorder` has written. `onFailure` is called when
   * its records can no longer be written.
   */
  open(ctx: WireContext, recorder: Recorder, onFailure: (error: { message: string; code: string | undefined }) => void): WireTap {
    const tap = new WireTap(this, ctx, recorder, onFailure);
    this.taps.add(tap);
    return tap;
  }

  /** The tap's session ended (or can no longer be recorded): a queued tap then writes nothing at the flush. */
  forget(tap: WireTap): void {
    this.taps.delete(tap);
  }

  /**
   * The store cannot be written any more: every session is told now, not at its next record (its
   * statements are then refused as in line), so that as few as possible run unrecorded.
   */
  storeFailed(error: { message: string; code: string | undefined }): void {
    for (const tap of [...this.taps]) tap.failed(error);
  }

  /** A tap has bytes to write: at the next flush. */
  due(tap: WireTap): void {
    this.dirty.push(tap);
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Writes every session's pending bytes. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.segmentCheck();
    const taps = this.dirty;
    this.dirty = [];
    for (const tap of taps) {
      tap.queued = false;
      tap.write();
    }
  }

  /**
   * Asks every open session for a resume point when a new segment began since the last check: at
   * each flush (other records may have begun one) and after each of the sessions' own records.
   */
  private segmentCheck(): void {
    const segment = this.opts.store.writer.activeSegment;
    if (segment === this.segment) return;
    this.segment = segment;
    for (const tap of [...this.taps]) tap.segmentBegan();
  }

  append(sidJson: string, dJson: string): void {
    this.opts.store.writer.appendJson(RECORD_KIND.wire, sidJson, dJson);
    if (this.opts.store.writer.activeSegment !== this.segment) this.segmentCheck();
  }

  /** Writes what is pending (warden is stopping). */
  close(): void {
    this.flush();
  }
}

/** A session's bytes start in a buffer of this size, doubled as needed. */
const FIRST_BUFFER_BYTES = 8 * 1024;

/**
 * One session's side: the relay's onChunk, events, and the end. The relay's chunks are held as they
 * are read (a reference and the time: the relay neither keeps nor changes them once forwarded) and
 * encoded when they are written, every flush: the relay's path stays a push, and the encoding runs
 * in one loop per session (bench/README.md, "Wire records").
 */
export class WireTap {
  private readonly encoder: WireSessionEncoder;
  private readonly sidJson: string;
  /** The entries encoded and not yet written: [kind u8][length u32 LE][time f64 LE][bytes] … */
  private out = new WireBuffer(FIRST_BUFFER_BYTES);
  /** Chunks read and not yet encoded: the chunk, when it was read, from which side (ENTRY). */
  private chunks: Buffer[] = [];
  private times: number[] = [];
  private sides: number[] = [];
  private heldBytes = 0;
  private first = true;
  private done = false;
  /** In WireRecording's list of taps to write at the next flush. */
  queued = false;
  /** The server's parameters and named prepared statements, kept by the relay's handlers (handlers.ts) for resume points. */
  readonly state: SessionState;
  /** A new segment began since the session's last record: a resume point is due at its next idle point. */
  private resumeDue = false;
  /** The `ctx` of the session's next record: a resume point's. */
  private resumeCtx: WireContext | undefined;
  private relay: PgRelay | undefined;

  constructor(
    private readonly wire: WireRecording,
    private readonly ctx: WireContext,
    private readonly recorder: Recorder,
    private readonly onFailure: (error: { message: string; code: string | undefined }) => void,
  ) {
    this.encoder = new WireSessionEncoder(ctx.capture);
    this.sidJson = JSON.stringify(ctx.start.sessionId);
    this.state = new SessionState(ctx.parameters);
    recorder.statementsElsewhere?.();
  }

  /**
   * A new segment began: a session that has records in an earlier one records a resume point, now
   * if it is idle, else at its next idle point.
   */
  segmentBegan(): void {
    if (this.first || this.done) return;
    this.resumeDue = true;
    if (this.relay?.idle) this.idle();
  }

  /**
   * The session is idle (PgRelay's onIdle: the last chunk read ended with its ReadyForQuery).
   * Records the resume point due, if one is: what is held up to here goes out as a record of its
   * own, and the next record carries `ctx` as of now.
   */
  idle(): void {
    if (!this.resumeDue || this.done || !this.relay) return;
    this.encodeHeld();
    // A chunk that went on past the ReadyForQuery into a message it cut: the next idle point.
    if (!this.encoder.atBoundary()) return;
    this.write();
    if (this.done) return;
    this.resumeDue = false;
    const { parameters, prepared, preparedIncomplete } = this.state.snapshot();
    this.resumeCtx = { ...this.ctx, parameters, transactionStatus: this.relay.transactionStatus, prepared, ...(preparedIncomplete ? { preparedIncomplete } : {}) };
  }

  /** The session's relay: whether it is idle when a new segment begins. Its reading never pauses for a wire transcript. */
  attach(relay: PgRelay): void {
    this.relay = relay;
  }

  /** PgRelay's onChunk: held until the next flush (encoded sooner past MAX_HELD_BYTES). */
  readonly chunk = (fromClient: boolean, chunk: Buffer): void => {
    if (this.done) return;
    this.chunks.push(chunk);
    this.times.push(performance.now());
    this.sides.push(fromClient ? ENTRY.client : ENTRY.server);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= MAX_HELD_BYTES) {
      // A burst (a large result, COPY): encoded now, so that little of it is held as read.
      this.encodeHeld();
      if (this.out.len >= MAX_PENDING_BYTES) {
        this.write();
        return;
      }
    }
    this.due();
  };

  /** An event of the session not in its bytes (a CancelRequest). */
  event(info: SessionEventInfo): void {
    if (this.done) return;
    this.encodeHeld();
    const body = Buffer.from(JSON.stringify(info));
    const at = this.begin(ENTRY.event, performance.now());
    this.out.put(body, 0, body.length);
    this.end_(at, false);
    this.due();
  }

  /** The session ended: its end is written at once, with what was pending. */
  end(info: SessionEndInfo): void {
    if (this.done) return;
    this.encodeHeld();
    const now = performance.now();
    let at = this.begin(ENTRY.server, now);
    this.encoder.finish(this.out);
    this.end_(at, true);
    const body = Buffer.from(JSON.stringify(info));
    at = this.begin(ENTRY.end, now);
    this.out.put(body, 0, body.length);
    this.end_(at, false);
    this.write();
    this.done = true;
    this.wire.forget(this);
    this.recorder.endedElsewhere?.();
  }

  /** Its records can no longer be written: nothing more is taken, and the session is told. */
  failed(error: { message: string; code: string | undefined }): void {
    if (this.done) return;
    this.done = true;
    this.dropHeld();
    this.wire.forget(this);
    this.onFailure(error);
  }

  private due(): void {
    if (this.queued) return;
    this.queued = true;
    this.wire.due(this);
  }

  /** Encodes the held chunks, one entry each (none for a chunk nothing of which is kept). */
  private encodeHeld(): void {
    const n = this.chunks.length;
    for (let k = 0; k < n; k++) {
      const client = this.sides[k] === ENTRY.client;
      const at = this.begin(client ? ENTRY.client : ENTRY.server, this.times[k] as number);
      if (client) this.encoder.fromClient(this.chunks[k] as Buffer, this.out);
      else this.encoder.fromServer(this.chunks[k] as Buffer, this.out);
      this.end_(at, true);
    }
    this.dropHeld();
  }

  private dropHeld(): void {
    this.chunks.length = 0;
    this.times.length = 0;
    this.sides.length = 0;
    this.heldBytes = 0;
  }

  /** Starts an entry read at `now` (performance.now()): its header, the length filled in by end_(). Returns where it starts. */
  private begin(kind: number, now: number): number {
    const out = this.out;
    out.room(WIRE_ENTRY_HEADER);
    const at = out.len;
    out.buf[at] = kind;
    out.buf.writeDoubleLE(TIME_ORIGIN + now, at + 5);
    out.len = at + WIRE_ENTRY_HEADER;
    return at;
  }

  /** Ends the entry begun at `at`: an empty chunk entry is taken back. */
  private end_(at: number, dropEmpty: boolean): void {
    const out = this.out;
    const n = out.len - at - WIRE_ENTRY_HEADER;
    if (n === 0 && dropEmpty) out.len = at;
    else out.buf.writeUInt32LE(n, at + 1);
  }

  /** Writes what is held and pending as one `wire` record. */
  write(): void {
    if (this.done) return;
    this.encodeHeld();
    const out = this.out;
    if (out.len === 0) return;
    const e = out.buf.toString('base64', 0, out.len);
    out.len = 0;
    // A session that had a burst keeps no large buffer while it idles.
    if (out.buf.length > 4 * FIRST_BUFFER_BYTES) this.out = new WireBuffer(FIRST_BUFFER_BYTES);
    const ctx = this.first ? this.ctx : this.resumeCtx;
    const dJson = ctx ? `{"ctx":${JSON.stringify(ctx)},"e":"${e}"}` : `{"e":"${e}"}`;
    this.first = false;
    this.resumeCtx = undefined;
    try {
      this.wire.append(this.sidJson, dJson);
    } catch (err) {
      this.failed({ message: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code });
    }
  }
}

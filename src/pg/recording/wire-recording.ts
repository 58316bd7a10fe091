// Wire transcripts, the recording side (docs/transcripts.md, "Wire records"): a PostgreSQL session
// that no statement rule and no masking rule touches is recorded as the bytes its relay reads, on
// the event loop, and the statement flow runs over them only when the transcript is read
// (wire-decoder.ts). Recording then costs a copy of each chunk (less the rows `capture` does not
// keep: wire-encoder.ts) and, every 20 ms, one record per session that had traffic, instead of
// parsing, classifying, serializing and hashing every statement as it runs (bench/README.md).
//
// The session's `session-start` is written at once, as for any session; its `wire` records follow
// in the same chain, each the entries read since the last: [kind u8][length u32 LE][time f64 LE]
// [bytes], kind being thread.ts ENTRY's client, server, event or end. The first carries `ctx`, what
// the statement flow needs to know before the first byte (the server's parameters, the capture).
// The session's end is its last entry: readers write its `session-end`, with the statement count.
import type { Recorder, TranscriptStore } from '../../audit/recorder.js';
import { RECORD_KIND } from '../../audit/frame.js';
import type { SessionEndInfo, SessionEventInfo } from '../../audit/types.js';
import type { Logger } from '../../log.js';
import { ENTRY, TIME_ORIGIN, type ThreadSessionStart } from './thread.js';
import { WireSessionEncoder, type WireOut } from './wire-encoder.js';

/** An entry's header in a `wire` record: [kind u8][length u32 LE][time f64 LE]. */
export const WIRE_ENTRY_HEADER = 13;

/**
 * What the first `wire` record of a session carries as `ctx`: what the recording thread's worker
 * is told of a session (the session's start, as its `session-start` records it, the server's
 * parameters, the capture, the message limit and the transaction status when relaying began).
 */
export type WireContext = ThreadSessionStart;

/** A session's bytes not yet written are written at the next flush, or at once past this. */
const MAX_PENDING_BYTES = 1024 * 1024;
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
  private readonly dirty = new Set<WireTap>();
  /** Sessions recorded here and not ended. */
  private readonly taps = new Set<WireTap>();
  private timer: NodeJS.Timeout | undefined;
  private readonly flushMs: number;

  constructor(private readonly opts: WireRecordingOptions) {
    this.flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
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

  /** The tap's session ended (or can no longer be recorded). */
  forget(tap: WireTap): void {
    this.taps.delete(tap);
    this.dirty.delete(tap);
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
    this.dirty.add(tap);
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Writes every session's pending bytes. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const taps = [...this.dirty];
    this.dirty.clear();
    for (const tap of taps) tap.write();
  }

  append(sidJson: string, dJson: string): void {
    this.opts.store.writer.appendJson(RECORD_KIND.wire, sidJson, dJson);
  }

  /** Writes what is pending (warden is stopping). */
  close(): void {
    this.flush();
  }
}

/** A session's bytes start in a buffer of this size, doubled as needed. */
const FIRST_BUFFER_BYTES = 8 * 1024;

/** One session's side: the relay's onChunk, events, and the end. */
export class WireTap implements WireOut {
  private readonly encoder: WireSessionEncoder;
  private readonly sidJson: string;
  /** The entries not yet written: [kind u8][length u32 LE][time f64 LE][bytes] … */
  private buf: Buffer = Buffer.allocUnsafe(FIRST_BUFFER_BYTES);
  private len = 0;
  private first = true;
  private done = false;

  constructor(
    private readonly wire: WireRecording,
    private readonly ctx: WireContext,
    private readonly recorder: Recorder,
    private readonly onFailure: (error: { message: string; code: string | undefined }) => void,
  ) {
    this.encoder = new WireSessionEncoder(ctx.capture);
    this.sidJson = JSON.stringify(ctx.start.sessionId);
  }

  /** The relay's reading never pauses for a wire transcript (it is written as it comes): nothing to attach. */
  attach(): void {}

  /** PgRelay's onChunk. */
  readonly chunk = (fromClient: boolean, chunk: Buffer): void => {
    if (this.done) return;
    const at = this.begin(fromClient ? ENTRY.client : ENTRY.server);
    if (fromClient) this.encoder.fromClient(chunk, this);
    else this.encoder.fromServer(chunk, this);
    this.end_(at, true);
  };

  /** An event of the session not in its bytes (a CancelRequest). */
  event(info: SessionEventInfo): void {
    if (this.done) return;
    const body = Buffer.from(JSON.stringify(info));
    const at = this.begin(ENTRY.event);
    this.put(body, 0, body.length);
    this.end_(at, false);
  }

  /** The session ended: its end is written at once, with what was pending. */
  end(info: SessionEndInfo): void {
    if (this.done) return;
    let at = this.begin(ENTRY.server);
    this.encoder.finish(this);
    this.end_(at, true);
    const body = Buffer.from(JSON.stringify(info));
    at = this.begin(ENTRY.end);
    this.put(body, 0, body.length);
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
    this.wire.forget(this);
    this.onFailure(error);
  }

  /** WireOut: copies kept bytes into the pending entries. */
  put(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.grow(this.len + n);
    this.buf.set(start === 0 && end === src.length ? src : src.subarray(start, end), this.len);
    this.len += n;
  }

  /** Starts an entry: its header, the length filled in by end_(). Returns where it starts. */
  private begin(kind: number): number {
    if (this.len + WIRE_ENTRY_HEADER > this.buf.length) this.grow(this.len + WIRE_ENTRY_HEADER);
    const at = this.len;
    this.buf[at] = kind;
    this.buf.writeDoubleLE(TIME_ORIGIN + performance.now(), at + 5);
    this.len = at + WIRE_ENTRY_HEADER;
    return at;
  }

  /** Ends the entry begun at `at`: an empty chunk entry is taken back. */
  private end_(at: number, dropEmpty: boolean): void {
    const n = this.len - at - WIRE_ENTRY_HEADER;
    if (n === 0 && dropEmpty) {
      this.len = at;
      return;
    }
    this.buf.writeUInt32LE(n, at + 1);
    if (this.len >= MAX_PENDING_BYTES) this.write();
    else this.wire.due(this);
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Writes the pending entries as one `wire` record. */
  write(): void {
    if (this.len === 0 || this.done) return;
    const e = this.buf.toString('base64', 0, this.len);
    this.len = 0;
    // A session that had a burst keeps no large buffer while it idles.
    if (this.buf.length > 4 * FIRST_BUFFER_BYTES) this.buf = Buffer.allocUnsafe(FIRST_BUFFER_BYTES);
    const dJson = this.first ? `{"ctx":${JSON.stringify(this.ctx)},"e":"${e}"}` : `{"e":"${e}"}`;
    this.first = false;
    try {
      this.wire.append(this.sidJson, dJson);
    } catch (err) {
      this.failed({ message: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code });
    }
  }
}

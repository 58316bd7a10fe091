// Wire transcripts (docs/transcripts.md, "Wire records"): a session that no rule touches is
// recorded as the bytes its relay read, and readers run the statement flow over them
// (wire-decoder.ts). This is the encoding side, on the event loop, per session: the bytes are kept
// as they came, but for what the transcript must not keep.
//
// - The server's DataRows: a result's rows are kept only as `capture` keeps them. Under `digest`
//   and `none` none is kept, under `first` the first N of each result; the rest of a result's rows
//   become one ROWS_SUMMARY message (their count, their bytes and, under `digest`, the SHA-256 of
//   the DataRow messages as sent, which is what the statement flow's digest is), placed where the
//   result ends. The statement flow, replaying, counts and digests them from it.
// - CopyData, both ways: the statement flow keeps none of it (the command tag counts the rows), so
//   none is kept.
//
// Everything else is kept as read: statement texts and parameters whole (readers clip them as the
// statement flow does), errors, notices, notifications.
import { createHash, type Hash } from 'node:crypto';
import { withRoom } from '../../../protocols/postgres/buffer-writer.js';
import { Backend, Frontend } from '../../../protocols/postgres/codes.js';
import type { CapturePolicy } from '../../audit/config.js';
import { sha256Hex } from '../../audit/frame.js';

/** A message only a replaying statement flow understands: rows the transcript did not keep (wire-encoder.ts). */
export const ROWS_SUMMARY = 0x00;

/** The body of a ROWS_SUMMARY message: rows, their bytes (type bytes included), and the digest under `digest`. */
export interface RowsSummary {
  rows: number;
  bytes: number;
  sha256?: string;
}

export function decodeRowsSummary(msg: Buffer): RowsSummary | undefined {
  const [rows, bytes, sha256] = msg.toString('latin1', 5).split(',');
  const r = Number(rows);
  const b = Number(bytes);
  if (!Number.isSafeInteger(r) || r < 0 || !Number.isSafeInteger(b) || b < 0) return undefined;
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  return sha256 === undefined ? { rows: r, bytes: b } : { rows: r, bytes: b, sha256 };
}

/** Server messages that end a result (its rows, if any, are summarized just before). */
const ENDS_RESULT = new Uint8Array(256);
for (const c of [Backend.commandComplete, Backend.emptyQueryResponse, Backend.portalSuspended, Backend.errorResponse, Backend.readyForQuery]) ENDS_RESULT[c] = 1;

/** Results whose dropped rows are at most this many bytes are digested in one call at the end (no Hash object). */
const SMALL_DIGEST_BYTES = 16 * 1024;

/** Where the kept bytes go: a buffer that grows as needed (a session's entries not yet written). */
export class WireBuffer {
  buf: Buffer;
  len = 0;

  constructor(size = 8 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.len + n > this.buf.length) this.buf = withRoom(this.buf, this.len, n);
  }

  /** Copies `src[start, end)` in. */
  put(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.room(n);
    this.buf.set(start === 0 && end === src.length ? src : src.subarray(start, end), this.len);
    this.len += n;
  }

  /** The bytes so far (a view). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * One direction's message framing across chunks: where the current message ends, whether it is
 * kept, and a header split across chunks.
 */
class Framing {
  /** Bytes of the current message still to come. */
  left = 0;
  keep = true;
  /** The current message is a row not kept (its bytes go into the digest). */
  row = false;
  /** A header split across chunks: its bytes so far. */
  readonly head = Buffer.allocUnsafe(5);
  headHave = 0;
}

/**
 * What one session's wire record keeps of its bytes (see the top of this file). Written for the
 * relay's hot path: one pass over each chunk, copying runs of kept bytes, with no allocation but
 * for a result whose rows are summarized.
 */
export class WireSessionEncoder {
  private readonly client = new Framing();
  private readonly server = new Framing();
  /** Rows of a result kept before the rest are summarized. */
  private readonly keepRows: number;
  private readonly digest: boolean;
  /** The current result's rows so far, and those not kept. */
  private rowsSeen = 0;
  private droppedRows = 0;
  private droppedBytes = 0;
  /**
   * Under `digest`: the dropped rows' bytes, held while small (most results are a row or a few) as
   * spans of the chunks they came in (rows one after another in a chunk make one span), then a
   * running hash.
   */
  private spanBufs: Uint8Array[] = [];
  private spanStarts: number[] = [];
  private spanEnds: number[] = [];
  private spanBytes = 0;
  private hash: Hash | undefined;

  constructor(capture: CapturePolicy) {
    this.digest = capture.mode === 'digest';
    this.keepRows = capture.mode === 'all' ? Number.POSITIVE_INFINITY : capture.mode === 'first' ? capture.firstRows : 0;
  }

  /** Copies the kept bytes of a chunk read from the client to `out`. */
  fromClient(chunk: Buffer, out: WireBuffer): void {
    this.scan(this.client, false, chunk, out);
  }

  /** Copies the kept bytes of a chunk read from the server to `out`, with ROWS_SUMMARY messages where results ended. */
  fromServer(chunk: Buffer, out: WireBuffer): void {
    this.scan(this.server, true, chunk, out);
  }

  /** Both directions are between messages, and no result's rows wait for their summary. */
  atBoundary(): boolean {
    return this.client.left === 0 && this.client.headHave === 0 && this.server.left === 0 && this.server.headHave === 0 && this.droppedRows === 0;
  }

  /** At the session's end: the summary of a result cut short (the connection ended within its rows). */
  finish(out: WireBuffer): void {
    if (this.droppedRows > 0) this.summarize(out);
  }

  private scan(f: Framing, server: boolean, chunk: Buffer, out: WireBuffer): void {
    const n = chunk.length;
    let i = 0;
    /** Start of the run of kept bytes not yet copied, or -1. */
    let run = -1;
    while (i < n) {
      let take: number;
      if (f.left > 0) {
        take = f.left < n - i ? f.left : n - i;
        f.left -= take;
      } else if (f.headHave === 0 && n - i >= 5) {
        const length = chunk.readUInt32BE(i + 1) + 1;
        const code = chunk[i] as number;
        if (server && this.droppedRows > 0 && ENDS_RESULT[code] === 1 && run >= 0) {
          // The summary goes before this message: what was kept before it is copied first.
          out.put(chunk, run, i);
          run = -1;
        }
        this.header(f, server, code, length, out);
        take = length < n - i ? length : n - i;
        f.left = length - take;
      } else {
        // A header split across chunks: held until it is whole.
        if (run >= 0) out.put(chunk, run, i);
        run = -1;
        take = Math.min(5 - f.headHave, n - i);
        chunk.copy(f.head, f.headHave, i, i + take);
        f.headHave += take;
        i += take;
        if (f.headHave < 5) break;
        f.headHave = 0;
        const length = f.head.readUInt32BE(1) + 1;
        this.header(f, server, f.head[0] as number, length, out);
        if (f.keep) out.put(f.head, 0, 5);
        else if (f.row && this.digest) this.dropped(Buffer.from(f.head), 0, 5);
        f.left = length - 5;
        continue;
      }
      if (f.keep) {
        if (run < 0) run = i;
      } else {
        if (run >= 0) out.put(chunk, run, i);
        run = -1;
        if (f.row && this.digest) this.dropped(chunk, i, i + take);
      }
      i += take;
    }
    if (run >= 0) out.put(chunk, run, n);
  }

  /** At a message's header: whether it is kept; puts a summary of the rows before it when it ends a result. */
  private header(f: Framing, server: boolean, code: number, length: number, out: WireBuffer): void {
    f.row = false;
    if (!server) {
      f.keep = code !== Frontend.copyData;
      return;
    }
    if (code === Backend.dataRow) {
      if (++this.rowsSeen <= this.keepRows) {
        f.keep = true;
        return;
      }
      this.droppedRows++;
      this.droppedBytes += length;
      f.row = true;
      f.keep = false;
      return;
    }
    f.keep = code !== Backend.copyData;
    if (ENDS_RESULT[code] === 1) {
      this.rowsSeen = 0;
      if (this.droppedRows > 0) this.summarize(out);
    }
  }

  /** Bytes of a dropped row, in order, for the digest. */
  private dropped(src: Uint8Array, start: number, end: number): void {
    if (this.hash) {
      this.hash.update(src.subarray(start, end));
      return;
    }
    const last = this.spanBufs.length - 1;
    if (last >= 0 && this.spanBufs[last] === src && this.spanEnds[last] === start) this.spanEnds[last] = end;
    else {
      this.spanBufs.push(src);
      this.spanStarts.push(start);
      this.spanEnds.push(end);
    }
    this.spanBytes += end - start;
    if (this.spanBytes > SMALL_DIGEST_BYTES) {
      this.hash = createHash('sha256');
      for (let k = 0; k < this.spanBufs.length; k++) this.hash.update((this.spanBufs[k] as Uint8Array).subarray(this.spanStarts[k], this.spanEnds[k]));
      this.clearSpans();
    }
  }

  private clearSpans(): void {
    this.spanBufs.length = 0;
    this.spanStarts.length = 0;
    this.spanEnds.length = 0;
    this.spanBytes = 0;
  }

  /** Writes the ROWS_SUMMARY of the rows dropped since the last, in place. */
  private summarize(out: WireBuffer): void {
    let text = `${this.droppedRows},${this.droppedBytes}`;
    if (this.digest) {
      let hex: string;
      if (this.hash) hex = this.hash.digest('hex');
      else if (this.spanBufs.length === 1) hex = sha256Hex((this.spanBufs[0] as Uint8Array).subarray(this.spanStarts[0], this.spanEnds[0]));
      else hex = sha256Hex(Buffer.concat(this.spanBufs.map((b, k) => b.subarray(this.spanStarts[k], this.spanEnds[k]))));
      text = `${text},${hex}`;
      this.hash = undefined;
      this.clearSpans();
    }
    this.droppedRows = 0;
    this.droppedBytes = 0;
    out.room(5 + text.length);
    const at = out.len;
    out.buf[at] = ROWS_SUMMARY;
    out.buf.writeUInt32BE(4 + text.length, at + 1);
    out.buf.write(text, at + 5, 'latin1');
    out.len = at + 5 + text.length;
  }
}

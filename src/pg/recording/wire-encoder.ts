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

export function encodeRowsSummary(s: RowsSummary): Buffer {
  const body = Buffer.from(`${s.rows},${s.bytes}${s.sha256 === undefined ? '' : `,${s.sha256}`}`, 'latin1');
  const msg = Buffer.allocUnsafe(5 + body.length);
  msg[0] = ROWS_SUMMARY;
  msg.writeUInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
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

/** Where the kept bytes go: copied in, in order. */
export interface WireOut {
  put(src: Uint8Array, start: number, end: number): void;
}

/** Results whose dropped rows are at most this many bytes are digested in one call at the end (no Hash object). */
const SMALL_DIGEST_BYTES = 16 * 1024;

/** One direction's message framing across chunks: which message each byte belongs to, and whether it is kept. */
class Framer {
  /** Bytes of the current message still to come. */
  private left = 0;
  private keeping = true;
  /** A header split across chunks: its bytes so far. */
  private readonly head = Buffer.allocUnsafe(5);
  private headHave = 0;

  constructor(private readonly enc: WireSessionEncoder, private readonly server: boolean) {}

  /** Copies to `out` the kept parts of `chunk`, and what the encoder puts before messages. */
  scan(chunk: Buffer, out: WireOut): void {
    const n = chunk.length;
    let i = 0;
    /** Start of the run of kept bytes not yet copied, or -1. */
    let run = -1;
    while (i < n) {
      if (this.left > 0) {
        const take = Math.min(this.left, n - i);
        run = this.span(chunk, i, i + take, run, out);
        this.left -= take;
        i += take;
        continue;
      }
      if (this.headHave > 0 || n - i < 5) {
        // A header split across chunks: held until it is whole.
        if (run >= 0) out.put(chunk, run, i);
        run = -1;
        const take = Math.min(5 - this.headHave, n - i);
        chunk.copy(this.head, this.headHave, i, i + take);
        this.headHave += take;
        i += take;
        if (this.headHave < 5) break;
        this.headHave = 0;
        const length = this.head.readUInt32BE(1) + 1;
        this.keeping = this.enc.header(this.server, this.head[0] as number, length, out);
        if (this.keeping) out.put(this.head, 0, 5);
        else this.enc.dropped(Buffer.from(this.head), 0, 5);
        this.left = length - 5;
        continue;
      }
      const length = chunk.readUInt32BE(i + 1) + 1;
      const take = Math.min(length, n - i);
      if (this.enc.wantsBefore(this.server, chunk[i] as number)) {
        if (run >= 0) out.put(chunk, run, i);
        run = -1;
      }
      this.keeping = this.enc.header(this.server, chunk[i] as number, length, out);
      run = this.span(chunk, i, i + take, run, out);
      this.left = length - take;
      i += take;
    }
    if (run >= 0) out.put(chunk, run, n);
  }

  /**
   * Bytes `chunk[from, to)` of the current message: a kept message's extend the run of kept bytes
   * (returned: where it starts); a dropped one's end the run (copied to `out`) and go to the
   * encoder. Returns the run's start, or -1.
   */
  private span(chunk: Buffer, from: number, to: number, run: number, out: WireOut): number {
    if (this.keeping) return run < 0 ? from : run;
    if (run >= 0) out.put(chunk, run, from);
    this.enc.dropped(chunk, from, to);
    return -1;
  }
}

/** What one session's wire record keeps of its bytes (see the top of this file). */
export class WireSessionEncoder {
  private readonly client = new Framer(this, false);
  private readonly server = new Framer(this, true);
  /** The current result's rows so far, and those not kept. */
  private rowsSeen = 0;
  private droppedRows = 0;
  private droppedBytes = 0;
  /** Under `digest`: the dropped rows' bytes, held while small (most results are a row or a few), then a running hash. */
  private pieces: Buffer[] = [];
  private piecesBytes = 0;
  private hash: Hash | undefined;
  private readonly digest: boolean;
  /** The message being dropped is a row (its bytes go into the digest). */
  private droppingRow = false;

  constructor(private readonly capture: CapturePolicy) {
    this.digest = capture.mode === 'digest';
  }

  /** Copies the kept bytes of a chunk read from the client to `out`. */
  fromClient(chunk: Buffer, out: WireOut): void {
    this.client.scan(chunk, out);
  }

  /** Copies the kept bytes of a chunk read from the server to `out`, with ROWS_SUMMARY messages where results ended. */
  fromServer(chunk: Buffer, out: WireOut): void {
    this.server.scan(chunk, out);
  }

  /** At the session's end: the summary of a result cut short (the connection ended within its rows). */
  finish(out: WireOut): void {
    if (this.droppedRows > 0) this.summarize(out);
  }

  /** Whether a message with this code may have a summary put before it (the run before it must be copied first). */
  wantsBefore(server: boolean, code: number): boolean {
    return server && this.droppedRows > 0 && ENDS_RESULT[code] === 1;
  }

  /** At a message's header: whether it is kept; puts a summary of the rows before it when it ends a result. */
  header(server: boolean, code: number, length: number, out: WireOut): boolean {
    this.droppingRow = false;
    if (!server) return code !== Frontend.copyData;
    if (code === Backend.dataRow) {
      this.rowsSeen++;
      const mode = this.capture.mode;
      if (mode === 'all' || (mode === 'first' && this.rowsSeen <= this.capture.firstRows)) return true;
      this.droppedRows++;
      this.droppedBytes += length;
      this.droppingRow = true;
      return false;
    }
    if (code === Backend.copyData) return false;
    if (ENDS_RESULT[code] === 1) {
      this.rowsSeen = 0;
      if (this.droppedRows > 0) this.summarize(out);
    }
    return true;
  }

  /** Bytes of a message not kept, in order: a dropped row's go into the digest. */
  dropped(src: Buffer, start: number, end: number): void {
    if (!this.digest || !this.droppingRow) return;
    if (this.hash) {
      this.hash.update(src.subarray(start, end));
      return;
    }
    this.pieces.push(src.subarray(start, end));
    this.piecesBytes += end - start;
    if (this.piecesBytes > SMALL_DIGEST_BYTES) {
      this.hash = createHash('sha256');
      for (const p of this.pieces) this.hash.update(p);
      this.pieces = [];
    }
  }

  private summarize(out: WireOut): void {
    const s: RowsSummary = { rows: this.droppedRows, bytes: this.droppedBytes };
    if (this.digest) {
      if (this.hash) s.sha256 = this.hash.digest('hex');
      else s.sha256 = sha256Hex(this.pieces.length === 1 ? (this.pieces[0] as Buffer) : Buffer.concat(this.pieces));
    }
    this.droppedRows = 0;
    this.droppedBytes = 0;
    this.hash = undefined;
    this.pieces = [];
    this.piecesBytes = 0;
    const msg = encodeRowsSummary(s);
    out.put(msg, 0, msg.length);
  }
}

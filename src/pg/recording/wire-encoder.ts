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

/**
 * At a message's header: whether to keep the message, and bytes to put before it (a summary of
 * the rows that came before).
 */
type HeaderDecision = (code: number, length: number) => { keep: boolean; before?: Buffer };

/** One direction's message framing across chunks: which message each byte belongs to, and whether it is kept. */
class Framer {
  /** Bytes of the current message still to come. */
  private left = 0;
  private keeping = true;
  /** A header split across chunks: its bytes so far. */
  private readonly head = Buffer.allocUnsafe(5);
  private headHave = 0;

  constructor(
    private readonly decide: HeaderDecision,
    /** Bytes of a message not kept, in order (for the digest). */
    private readonly onDropped: (bytes: Buffer) => void,
  ) {}

  /** Pushes to `out` the kept parts of `chunk` (ranges of it, and what `decide` puts before messages). */
  scan(chunk: Buffer, out: Buffer[]): void {
    const n = chunk.length;
    let i = 0;
    /** Start of the run of kept bytes not yet pushed, or -1. */
    let run = -1;
    const flush = (end: number): void => {
      if (run >= 0 && end > run) out.push(chunk.subarray(run, end));
      run = -1;
    };
    while (i < n) {
      if (this.left > 0) {
        const take = Math.min(this.left, n - i);
        if (this.keeping) {
          if (run < 0) run = i;
        } else {
          flush(i);
          this.onDropped(chunk.subarray(i, i + take));
        }
        this.left -= take;
        i += take;
        continue;
      }
      if (this.headHave > 0 || n - i < 5) {
        // A header split across chunks: held until it is whole.
        flush(i);
        const take = Math.min(5 - this.headHave, n - i);
        chunk.copy(this.head, this.headHave, i, i + take);
        this.headHave += take;
        i += take;
        if (this.headHave < 5) break;
        this.headHave = 0;
        const length = this.head.readUInt32BE(1) + 1;
        const d = this.decide(this.head[0] as number, length);
        if (d.before) out.push(d.before);
        const head = Buffer.from(this.head);
        if (d.keep) out.push(head);
        else this.onDropped(head);
        this.keeping = d.keep;
        this.left = length - 5;
        continue;
      }
      const length = chunk.readUInt32BE(i + 1) + 1;
      const d = this.decide(chunk[i] as number, length);
      if (d.before) {
        flush(i);
        out.push(d.before);
      }
      const take = Math.min(length, n - i);
      if (d.keep) {
        if (run < 0) run = i;
      } else {
        flush(i);
        this.onDropped(chunk.subarray(i, i + take));
      }
      this.keeping = d.keep;
      this.left = length - take;
      i += take;
    }
    flush(n);
  }
}

const KEEP = { keep: true } as const;
const DROP = { keep: false } as const;

/** What one session's wire record keeps of its bytes (see the top of this file). */
export class WireSessionEncoder {
  private readonly client: Framer;
  private readonly server: Framer;
  /** The current result's rows so far, and those not kept. */
  private rowsSeen = 0;
  private dropped = 0;
  private droppedBytes = 0;
  private hash: Hash | undefined;

  constructor(private readonly capture: CapturePolicy) {
    this.client = new Framer(
      (code) => (code === Frontend.copyData ? DROP : KEEP),
      () => undefined,
    );
    this.server = new Framer(
      (code, length) => this.serverHeader(code, length),
      (bytes) => this.hash?.update(bytes),
    );
  }

  /** The kept bytes of a chunk read from the client. */
  fromClient(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.client.scan(chunk, out);
    return out;
  }

  /** The kept bytes of a chunk read from the server, with ROWS_SUMMARY messages where results ended. */
  fromServer(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.server.scan(chunk, out);
    return out;
  }

  /** At the session's end: the summary of a result cut short (the connection ended within its rows). */
  finish(): Buffer[] {
    return this.dropped > 0 ? [this.summary()] : [];
  }

  private serverHeader(code: number, length: number): { keep: boolean; before?: Buffer } {
    if (code === Backend.dataRow) {
      this.rowsSeen++;
      const mode = this.capture.mode;
      if (mode === 'all' || (mode === 'first' && this.rowsSeen <= this.capture.firstRows)) return KEEP;
      this.dropped++;
      this.droppedBytes += length;
      if (mode === 'digest') this.hash ??= createHash('sha256');
      return DROP;
    }
    if (code === Backend.copyData) return DROP;
    if (ENDS_RESULT[code] === 1) {
      this.rowsSeen = 0;
      if (this.dropped > 0) return { keep: true, before: this.summary() };
    }
    return KEEP;
  }

  private summary(): Buffer {
    const s: RowsSummary = { rows: this.dropped, bytes: this.droppedBytes };
    if (this.hash) s.sha256 = this.hash.digest('hex');
    this.dropped = 0;
    this.droppedBytes = 0;
    this.hash = undefined;
    return encodeRowsSummary(s);
  }
}

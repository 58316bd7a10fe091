// The lines of one write batch, encoded as they are chained. Each record's body is written once,
// as UTF-8, into one growable buffer; its hash is taken over those bytes where they lie, and the
// hash member is written over the body's closing `}`. The batch then goes to the file as it is:
// no line strings are kept, joined, and encoded a second time, which is most of what chaining a
// record used to cost besides the hash itself. The bytes are the ones encodeRecordJson's line
// would give (frame.ts builds the body and the tail for both).

import { hashTail, HASH_SUFFIX_BYTES, recordBody, sha256Hex, type RecordKind, type RecordTime } from './frame.js';

const INITIAL_BYTES = 64 * 1024;
/** A buffer grown past this (for a very large record) is not kept once its batch is written. */
const KEEP_BYTES = 1024 * 1024;

export class LineBatch {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  /** Bytes of whole lines in the batch. */
  length = 0;

  /** Encodes one record's line after the batch's lines; returns the record's hash. */
  append(seq: number, ts: RecordTime, prev: string, kind: RecordKind, sidJson: string | undefined, dJson: string): string {
    const body = recordBody(seq, ts, prev, kind, sidJson, dJson);
    // A UTF-16 code unit is at most three UTF-8 bytes: the exact size is counted only when that
    // bound does not fit.
    if (this.length + body.length * 3 + HASH_SUFFIX_BYTES > this.buf.length) this.reserve(Buffer.byteLength(body) + HASH_SUFFIX_BYTES);
    const start = this.length;
    const end = start + this.buf.write(body, start, 'utf8');
    const hash = sha256Hex(this.buf.subarray(start, end));
    this.length = end - 1 + this.buf.write(hashTail(hash), end - 1, 'latin1');
    return hash;
  }

  /** The batch's lines (a view: valid until the next append or clear). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BYTES);
  }

  private reserve(more: number): void {
    const need = this.length + more;
    if (need <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

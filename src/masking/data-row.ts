// The DataRow rewriter: the hot path of masked results. A DataRow ('D') is
//   Byte1 'D' | Int32 length | Int16 column count | per column: Int32 length (-1 = NULL) | bytes
// (PostgreSQL docs, "Message Formats"). The rewriter walks the column lengths once, asks each
// masked column's ValueMasker for its new bytes, and — only when something changed — builds the
// new message in one allocation: untouched spans are copied as they are, every length recomputed.
import { Backend } from '../../protocols/postgres/codes.js';
import { MaskingError } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

const HEADER = 7; // type byte, int32 length, int16 column count
/** Spans shorter than this are copied byte by byte (cheaper than a native copy call). */
const SMALL_COPY = 64;

function int32(buf: Buffer, p: number): number {
  return ((buf[p] as number) << 24) | ((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number);
}

function putInt32(buf: Buffer, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}

/** Copies src[s, e) to dst at d. Short spans in a loop (cheaper than a native call), long ones natively. */
function copySpan(src: Buffer, s: number, e: number, dst: Buffer, d: number): void {
  if (e - s < SMALL_COPY) {
    for (let i = s; i < e; i++) dst[d++] = src[i] as number;
  } else {
    src.copy(dst, d, s, e);
  }
}

export class DataRowRewriter {
  /** Column index of each masked column, in order. */
  private readonly masked: Int32Array;
  private readonly maskers: ValueMasker[];
  // Per-row scratch, reused: where each masked column sat and what it became.
  private readonly at: Int32Array;
  private readonly oldLen: Int32Array;
  private readonly newLen: Int32Array;
  /** Which masker produced each changed column. */
  private readonly order: Int32Array;
  private readonly single: boolean;

  constructor(
    private readonly columnCount: number,
    maskers: readonly (ValueMasker | undefined)[],
    /** Rule named in errors about malformed rows. */
    private readonly rule: string,
  ) {
    const idx: number[] = [];
    const ms: ValueMasker[] = [];
    maskers.forEach((m, i) => {
      if (m) {
        idx.push(i);
        ms.push(m);
      }
    });
    this.masked = Int32Array.from(idx);
    this.maskers = ms;
    this.at = new Int32Array(idx.length);
    this.oldLen = new Int32Array(idx.length);
    this.newLen = new Int32Array(idx.length);
    this.order = new Int32Array(idx.length);
    this.single = idx.length === 1;
  }

  get active(): boolean {
    return this.masked.length > 0;
  }

  /** One masked column (the common case): the same rewrite with everything in locals. */
  private rewriteOne(buf: Buffer, start: number, end: number): Buffer | undefined {
    const target = this.masked[0] as number;
    let p = start + HEADER;
    let len = 0;
    for (let col = 0; ; col++) {
      if (p + 4 > end) throw this.malformed('truncated column length');
      len = int32(buf, p);
      if (len < -1 || p + 4 + (len > 0 ? len : 0) > end) throw this.malformed('column length out of bounds');
      if (col === target) break;
      p += 4 + (len > 0 ? len : 0);
    }
    if (len < 0) return undefined;
    const m = this.maskers[0] as ValueMasker;
    const r = m.mask(buf, p + 4, len);
    if (r === MASK_UNCHANGED) return undefined;
    const newLen = r > 0 ? r : 0;
    const out = Buffer.allocUnsafe(end - start + newLen - len);
    let w = 0;
    if (p - start < SMALL_COPY) for (let i = start; i < p; i++) out[w++] = buf[i] as number;
    else w += buf.copy(out, 0, start, p);
    putInt32(out, w, r === MASK_NULL ? -1 : r);
    w += 4;
    const src = m.out;
    if (newLen < SMALL_COPY) for (let i = 0; i < newLen; i++) out[w++] = src[i] as number;
    else w += src.copy(out, w, 0, newLen);
    const rest = p + 4 + len;
    if (end - rest < SMALL_COPY) for (let i = rest; i < end; i++) out[w++] = buf[i] as number;
    else buf.copy(out, w, rest, end);
    putInt32(out, 1, out.length - 1);
    return out;
  }

  /** Every changed value kept its size (partial, format, fixed-width hashes): one copy of the row, then the new values over it. */
  private inPlace(buf: Buffer, start: number, end: number, changed: number): Buffer {
    const out = Buffer.allocUnsafe(end - start);
    copySpan(buf, start, end, out, 0);
    for (let j = 0; j < changed; j++) {
      const w = (this.at[j] as number) - start;
      const r = this.newLen[j] as number;
      putInt32(out, w, r === MASK_NULL ? -1 : r);
      if (r > 0) copySpan((this.maskers[this.order[j] as number] as ValueMasker).out, 0, r, out, w + 4);
    }
    return out;
  }

  private malformed(why: string): MaskingError {
    return new MaskingError(this.rule, `malformed DataRow (${why}): the row is not sent`);
  }

  /** See RowMaskPlan.rewriteDataRow. */
  rewrite(buf: Buffer, start: number, end: number): Buffer | undefined {
    if (buf[start] !== Backend.dataRow || end - start < HEADER) throw this.malformed('not a DataRow');
    if (int32(buf, start + 1) !== end - start - 1) throw this.malformed('length does not match the frame');
    const n = ((buf[start + 5] as number) << 8) | (buf[start + 6] as number);
    if (n !== this.columnCount) throw this.malformed(`${n} columns, RowDescription has ${this.columnCount}`);
    if (this.single) return this.rewriteOne(buf, start, end);
    const masked = this.masked;
    const maskers = this.maskers;
    let p = start + HEADER;
    let col = 0;
    let changed = 0;
    let delta = 0;
    let sameSizes = true;
    // Walk to each masked column in turn; columns after the last masked one are copied unread.
    for (let k = 0; k < masked.length; k++) {
      const target = masked[k] as number;
      for (;;) {
        if (p + 4 > end) throw this.malformed('truncated column length');
        const len = int32(buf, p);
        if (len < -1 || p + 4 + (len > 0 ? len : 0) > end) throw this.malformed('column length out of bounds');
        if (col === target) {
          if (len >= 0) {
            const r = (maskers[k] as ValueMasker).mask(buf, p + 4, len);
            if (r !== MASK_UNCHANGED) {
              this.at[changed] = p;
              this.oldLen[changed] = len;
              this.newLen[changed] = r;
              this.order[changed] = k;
              changed++;
              delta += (r > 0 ? r : 0) - len;
              if ((r > 0 ? r : 0) !== len) sameSizes = false;
            }
          }
          col++;
          p += 4 + (len > 0 ? len : 0);
          break;
        }
        col++;
        p += 4 + (len > 0 ? len : 0);
      }
    }
    if (changed === 0) return undefined;
    if (sameSizes) return this.inPlace(buf, start, end, changed);
    const out = Buffer.allocUnsafe(end - start + delta);
    let s = start;
    let w = 0;
    // The copies are written out here rather than through copySpan: this loop runs for every
    // masked row and the call does not get inlined reliably.
    for (let j = 0; j < changed; j++) {
      const pos = this.at[j] as number;
      if (pos - s < SMALL_COPY) for (let i = s; i < pos; i++) out[w++] = buf[i] as number;
      else w += buf.copy(out, w, s, pos);
      const r = this.newLen[j] as number;
      putInt32(out, w, r === MASK_NULL ? -1 : r);
      w += 4;
      if (r > 0) {
        const src = (maskers[this.order[j] as number] as ValueMasker).out;
        if (r < SMALL_COPY) for (let i = 0; i < r; i++) out[w++] = src[i] as number;
        else w += src.copy(out, w, 0, r);
      }
      const old = this.oldLen[j] as number;
      s = pos + 4 + (old > 0 ? old : 0);
    }
    if (end - s < SMALL_COPY) for (let i = s; i < end; i++) out[w++] = buf[i] as number;
    else buf.copy(out, w, s, end);
    putInt32(out, 1, out.length - 1);
    return out;
  }
}

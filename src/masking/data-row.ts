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
const SMALL_COPY = 24;

function int32(buf: Buffer, p: number): number {
  return ((buf[p] as number) << 24) | ((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number);
}

function putInt32(buf: Buffer, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}

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
  }

  get active(): boolean {
    return this.masked.length > 0;
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
    const masked = this.masked;
    const maskers = this.maskers;
    let p = start + HEADER;
    let k = 0; // next masked column to look at
    let changed = 0;
    let delta = 0;
    let next = masked.length > 0 ? (masked[0] as number) : -1;
    for (let i = 0; i < n; i++) {
      if (p + 4 > end) throw this.malformed('truncated column length');
      const len = int32(buf, p);
      if (len < -1 || p + 4 + (len > 0 ? len : 0) > end) throw this.malformed('column length out of bounds');
      if (i === next) {
        if (len >= 0) {
          const r = (maskers[k] as ValueMasker).mask(buf, p + 4, len);
          if (r !== MASK_UNCHANGED) {
            this.at[changed] = p;
            this.oldLen[changed] = len;
            this.newLen[changed] = r;
            this.order[changed] = k;
            changed++;
            delta += (r > 0 ? r : 0) - len;
          }
        }
        k++;
        next = k < masked.length ? (masked[k] as number) : -1;
      }
      p += 4 + (len > 0 ? len : 0);
    }
    if (p !== end) throw this.malformed('trailing bytes');
    if (changed === 0) return undefined;
    const out = Buffer.allocUnsafe(end - start + delta);
    let s = start;
    let w = 0;
    for (let j = 0; j < changed; j++) {
      const pos = this.at[j] as number;
      copySpan(buf, s, pos, out, w);
      w += pos - s;
      const r = this.newLen[j] as number;
      putInt32(out, w, r === MASK_NULL ? -1 : r);
      w += 4;
      if (r > 0) {
        const src = (maskers[this.order[j] as number] as ValueMasker).out;
        copySpan(src, 0, r, out, w);
        w += r;
      }
      const old = this.oldLen[j] as number;
      s = pos + 4 + (old > 0 ? old : 0);
    }
    copySpan(buf, s, end, out, w);
    putInt32(out, 1, out.length - 1);
    return out;
  }
}

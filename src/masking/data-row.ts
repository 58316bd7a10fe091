// The DataRow rewriter: the hot path of masked results. A DataRow ('D') is
//   Byte1 'D' | Int32 length | Int16 column count | per column: Int32 length (-1 = NULL) | bytes
// (PostgreSQL docs, "Message Formats"). The rewriter walks the column lengths once, asks each
// masked column's ValueMasker for its new bytes, and — only when something changed — builds the
// new message in the output slab (no allocation per row; consecutive rows are adjacent, so the
// relay sends them in one write): untouched spans are copied as they are, every length recomputed.
import { Backend } from '../../protocols/postgres/codes.js';
import { int32, OutputSlab, putInt32, SHARED_SLAB, SMALL_COPY } from './output-slab.js';
import { MaskingError, type MessageSink } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type InPlaceMasking, type ValueMasker } from './value-masker.js';

const HEADER = 7; // type byte, int32 length, int16 column count
const FROM_OUT = 0;
const IN_PLACE = 1;

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
  /** Per changed column: masked in place (1: the value is copied, then overwritten) or from the masker's output (0). */
  private readonly how: Uint8Array;
  /** Where an in-place column's value lands in the output. */
  private readonly dst: Int32Array;
  /** Per masker: its fixed result (see ValueMasker.constant) and same-length fast path. */
  private readonly constants: (Buffer | null | undefined)[];
  private readonly inPlace: (InPlaceMasking | undefined)[];
  private readonly single: boolean;
  /** How many entries of the scratch the last measure() filled (several masked columns). */
  private changed = 0;

  constructor(
    private readonly columnCount: number,
    maskers: readonly (ValueMasker | undefined)[],
    /** Rule named in errors about malformed rows. */
    private readonly rule: string,
    private readonly slab: OutputSlab = SHARED_SLAB,
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
    this.how = new Uint8Array(idx.length);
    this.dst = new Int32Array(idx.length);
    this.constants = ms.map((m) => m.constant);
    this.inPlace = ms.map((m) => m.inPlace);
    this.single = idx.length === 1;
  }

  get active(): boolean {
    return this.masked.length > 0;
  }

  /**
   * One masked column (the common case), everything in locals and in one function: the walk, the
   * value (in place, a fixed result or the masker's output) and the copy. The new row goes to
   * `sink` from the output slab, or without a sink into a buffer of its own that is returned.
   */
  private one(buf: Buffer, start: number, end: number, sink: MessageSink | undefined): Buffer | undefined {
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
    const ip = this.inPlace[0];
    const c = this.constants[0];
    let r = len;
    let src: Buffer | null | undefined = c;
    if (len < 0) {
      r = MASK_UNCHANGED;
    } else if (ip !== undefined && ip.sameLength(buf, p + 4, len)) {
      src = undefined;
    } else if (c !== undefined) {
      r = c === null ? MASK_NULL : c.length;
    } else {
      const m = this.maskers[0] as ValueMasker;
      r = m.mask(buf, p + 4, len);
      src = m.out;
    }
    if (r === MASK_UNCHANGED) {
      sink?.add(buf, start, end);
      return undefined;
    }
    const newLen = r > 0 ? r : 0;
    const size = end - start + newLen - len;
    const slab = this.slab;
    let out: Buffer;
    let o = 0;
    if (sink === undefined) {
      out = Buffer.allocUnsafe(size);
    } else {
      slab.begin();
      slab.ensure(size);
      out = slab.buf;
      o = slab.w;
    }
    if (src === undefined) {
      // In place: the row as it is, then the value overwritten where it landed.
      if (size < SMALL_COPY) for (let i = start, w = o; i < end; i++) out[w++] = buf[i] as number;
      else buf.copy(out, o, start, end);
      (ip as InPlaceMasking).overwrite(out, o + p + 4 - start, len);
    } else {
      let w = o;
      if (p - start < SMALL_COPY) for (let i = start; i < p; i++) out[w++] = buf[i] as number;
      else w += buf.copy(out, w, start, p);
      putInt32(out, w, r === MASK_NULL ? -1 : r);
      w += 4;
      if (src !== null) {
        if (newLen < SMALL_COPY) for (let i = 0; i < newLen; i++) out[w++] = src[i] as number;
        else w += src.copy(out, w, 0, newLen);
      }
      const rest = p + 4 + len;
      if (end - rest < SMALL_COPY) for (let i = rest; i < end; i++) out[w++] = buf[i] as number;
      else buf.copy(out, w, rest, end);
      putInt32(out, o + 1, size - 1);
    }
    if (sink === undefined) return out;
    slab.w = o + size;
    slab.commit();
    sink.add(out, o, o + size);
    return undefined;
  }

  /** Masks masker k's value for changed column j: in place when it can, its fixed result, or a call. */
  private maskValue(k: number, j: number, buf: Buffer, start: number, len: number): number {
    const ip = this.inPlace[k];
    if (ip !== undefined && ip.sameLength(buf, start, len)) {
      this.how[j] = IN_PLACE;
      return len;
    }
    this.how[j] = FROM_OUT;
    const c = this.constants[k];
    if (c !== undefined) return c === null ? MASK_NULL : c.length;
    return (this.maskers[k] as ValueMasker).mask(buf, start, len);
  }

  private malformed(why: string): MaskingError {
    return new MaskingError(this.rule, `malformed DataRow (${why}): the row is not sent`);
  }

  /** See RowMaskPlan.rewriteDataRow. */
  rewrite(buf: Buffer, start: number, end: number): Buffer | undefined {
    this.checkFrame(buf, start, end);
    if (this.single) return this.one(buf, start, end, undefined);
    const size = this.measure(buf, start, end);
    if (size < 0) return undefined;
    const out = Buffer.allocUnsafe(size);
    this.write(buf, start, end, out, 0);
    return out;
  }

  /** See RowMaskPlan.forwardDataRow: a rewritten row is built in the output slab and added from there. */
  forward(buf: Buffer, start: number, end: number, sink: MessageSink): void {
    this.checkFrame(buf, start, end);
    if (this.single) {
      this.one(buf, start, end, sink);
      return;
    }
    const size = this.measure(buf, start, end);
    if (size < 0) {
      sink.add(buf, start, end);
      return;
    }
    const slab = this.slab;
    slab.begin();
    slab.ensure(size);
    const out = slab.buf;
    const from = slab.w;
    this.write(buf, start, end, out, from);
    slab.w = from + size;
    slab.commit();
    sink.add(out, from, from + size);
  }

  /** The message is a DataRow of this result's column count, its length matching the frame. */
  private checkFrame(buf: Buffer, start: number, end: number): void {
    if (buf[start] !== Backend.dataRow || end - start < HEADER) throw this.malformed('not a DataRow');
    if (int32(buf, start + 1) !== end - start - 1) throw this.malformed('length does not match the frame');
    const n = ((buf[start + 5] as number) << 8) | (buf[start + 6] as number);
    if (n !== this.columnCount) throw this.malformed(`${n} columns, RowDescription has ${this.columnCount}`);
  }

  /**
   * Walks to the masked columns of a checked frame and masks their values (results kept in the
   * per-row scratch). Returns the rewritten row's size, or -1 when no value changed.
   */
  private measure(buf: Buffer, start: number, end: number): number {
    const masked = this.masked;
    let p = start + HEADER;
    let col = 0;
    let changed = 0;
    let delta = 0;
    // Walk to each masked column in turn; columns after the last masked one are copied unread.
    for (let k = 0; k < masked.length; k++) {
      const target = masked[k] as number;
      for (;;) {
        if (p + 4 > end) throw this.malformed('truncated column length');
        const len = int32(buf, p);
        if (len < -1 || p + 4 + (len > 0 ? len : 0) > end) throw this.malformed('column length out of bounds');
        if (col === target) {
          if (len >= 0) {
            const r = this.maskValue(k, changed, buf, p + 4, len);
            if (r !== MASK_UNCHANGED) {
              this.at[changed] = p;
              this.oldLen[changed] = len;
              this.newLen[changed] = r;
              this.order[changed] = k;
              changed++;
              delta += (r > 0 ? r : 0) - len;
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
    this.changed = changed;
    return changed === 0 ? -1 : end - start + delta;
  }

  /**
   * Writes the rewritten row measured last to `out` at `o`: untouched spans copied, each changed
   * value and its length new. A value masked in place is copied with the spans around it and
   * overwritten afterwards.
   */
  private write(buf: Buffer, start: number, end: number, out: Buffer, o: number): void {
    const maskers = this.maskers;
    let s = start;
    let w = o;
    let inPlace = 0;
    // The copies are written out here rather than through a helper: this loop runs for every
    // masked row and the call does not get inlined reliably.
    for (let j = 0; j < this.changed; j++) {
      const pos = this.at[j] as number;
      if (this.how[j] === IN_PLACE) {
        this.dst[j] = w + (pos + 4 - s);
        inPlace++;
        continue;
      }
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
    else w += buf.copy(out, w, s, end);
    putInt32(out, o + 1, w - o - 1);
    for (let j = 0; inPlace > 0 && j < this.changed; j++) {
      if (this.how[j] !== IN_PLACE) continue;
      (this.inPlace[this.order[j] as number] as InPlaceMasking).overwrite(out, this.dst[j] as number, this.oldLen[j] as number);
      inPlace--;
    }
  }
}

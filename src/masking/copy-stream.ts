// The framing shared by the COPY rewriters: CopyData payloads in, complete units (rows, the
// binary header) rewritten, a partial unit carried over to the next message (PostgreSQL sends
// one row per CopyData, but nothing here relies on it). The new CopyData message is built in the
// output slab (output-slab.ts): no allocation per message, and consecutive messages lie next to
// each other, so the relay sends a run of them in one write.
import { Backend } from '../../protocols/postgres/codes.js';
import { OutputSlab, SHARED_SLAB } from './output-slab.js';
import { MaskingError, type MessageSink } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

/** A partial row carried between CopyData messages may not grow past this. */
const MAX_PENDING = 256 * 1024 * 1024;
/** Type byte and Int32 length. */
const COPY_DATA_HEADER = 5;
/** Spans shorter than this are copied byte by byte. */
const SMALL_COPY = 64;

/** Shared framing: CopyData payloads in, complete units rewritten, a partial unit carried over. */
export abstract class CopyRewriter {
  private pending: Buffer | undefined;
  /** Set by process() when any value was masked. */
  protected changed = false;

  constructor(
    protected readonly columns: number,
    protected readonly maskers: readonly (ValueMasker | undefined)[],
    protected readonly rule: string,
    protected readonly out: OutputSlab = SHARED_SLAB,
  ) {}

  protected fail(why: string): MaskingError {
    return new MaskingError(this.rule, `malformed COPY data (${why}): the data is not sent`);
  }

  /**
   * Rewrites the complete units of `data[pos, end)` into the output slab (at its write cursor);
   * sets `changed` when a value was masked; returns where the first incomplete unit starts.
   */
  protected abstract process(data: Buffer, pos: number, end: number): number;

  /** See CopyMaskPlan.rewriteCopyData. The returned message is a view of the output slab. */
  rewrite(buf: Buffer, start: number, end: number): Buffer | undefined {
    return this.build(buf, start, end) ? this.out.take() : undefined;
  }

  /** See CopyMaskPlan.forwardCopyData. */
  forward(buf: Buffer, start: number, end: number, sink: MessageSink): void {
    if (!this.build(buf, start, end)) {
      sink.add(buf, start, end);
      return;
    }
    const out = this.out;
    const { buf: slab, start: from, w: to } = out;
    out.commit();
    sink.add(slab, from, to);
  }

  /** Builds the new CopyData message in the slab (not yet handed out); false when the message goes as it is. */
  private build(buf: Buffer, start: number, end: number): boolean {
    if (buf[start] !== Backend.copyData || end - start < COPY_DATA_HEADER || buf.readInt32BE(start + 1) !== end - start - 1) throw this.fail('not a CopyData message');
    const pending = this.pending;
    let data = buf;
    let pos = start + COPY_DATA_HEADER;
    let stop = end;
    if (pending) {
      data = Buffer.concat([pending, buf.subarray(pos, end)]);
      pos = 0;
      stop = data.length;
    }
    const out = this.out;
    out.begin();
    out.ensure(COPY_DATA_HEADER);
    out.w += COPY_DATA_HEADER;
    this.changed = false;
    const consumed = this.process(data, pos, stop);
    const rest = stop - consumed;
    if (rest > MAX_PENDING) throw this.fail('a row larger than the carry-over limit');
    this.pending = rest > 0 ? Buffer.from(data.subarray(consumed, stop)) : undefined;
    if (!this.changed && !pending && rest === 0) return false; // the slab bytes are dropped at the next begin()
    // The message may have moved to a new slab while it grew: its header is at out.start.
    out.buf[out.start] = Backend.copyData;
    out.buf.writeInt32BE(out.w - out.start - 1, out.start + 1);
    return true;
  }

  /** Copies `src[start, end)` to the output. */
  protected emit(src: Buffer, start: number, end: number): void {
    const out = this.out;
    out.ensure(end - start);
    if (end - start < SMALL_COPY) {
      // Fields and row tails are short: a loop beats Buffer.copy's call overhead.
      const dst = out.buf;
      let w = out.w;
      for (let i = start; i < end; i++) dst[w++] = src[i] as number;
      out.w = w;
    } else {
      out.w += src.copy(out.buf, out.w, start, end);
    }
  }

  /** Applies column `i`'s masker to a value; returns its new bytes, null for NULL, or undefined when unchanged. */
  protected maskValue(i: number, value: Buffer): Buffer | null | undefined {
    const m = this.maskers[i];
    if (!m) return undefined;
    const r = m.mask(value, 0, value.length);
    if (r === MASK_UNCHANGED) return undefined;
    if (r === MASK_NULL) return null;
    return Buffer.from(m.out.subarray(0, r));
  }
}

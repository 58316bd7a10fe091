// The framing shared by the COPY rewriters: CopyData payloads in, complete units (rows, the
// binary header) rewritten, a partial unit carried over to the next message (PostgreSQL sends
// one row per CopyData, but nothing here relies on it). The new CopyData message is built in the
// output slab (output-slab.ts): no allocation per message, and consecutive messages lie next to
// each other, so the relay sends a run of them in one write.
import { Backend } from '../../protocols/postgres/codes.js';
import { int32, OutputSlab, SHARED_SLAB, SMALL_COPY } from './output-slab.js';
import { MaskingError, type MessageSink } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

/** A partial row carried between CopyData messages may not grow past this. */
const MAX_PENDING = 256 * 1024 * 1024;
/** Type byte and Int32 length. */
const COPY_DATA_HEADER = 5;
/** Room kept beyond a message's own worst case before it is started in the current slab. */
export const SLACK = 64;

/** Shared framing: CopyData payloads in, complete units rewritten, a partial unit carried over. */
export abstract class CopyRewriter {
  private pending: Buffer | undefined;
  /** Set by process() when any value was masked. */
  protected changed = false;
  /** In forwardRun(): bytes of the run's complete messages in the slab, from out.start (the slab may change). */
  protected runDone = 0;

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
    this.out.begin();
    return this.append(buf, start, end) ? this.out.take() : undefined;
  }

  /** See CopyMaskPlan.forwardCopyData. */
  forward(buf: Buffer, start: number, end: number, sink: MessageSink): void {
    this.out.begin();
    if (this.append(buf, start, end)) this.handOut(sink);
    else sink.add(buf, start, end); // the slab bytes are dropped at the next begin()
  }

  /**
   * See CopyMaskPlan.forwardCopyRun: the CopyData messages `buf[start, end)` (from one socket
   * read) are rewritten one after another into the output slab and go to `sink` as one range of
   * it (one per slab when a slab fills up), with one call for the whole run instead of one per
   * row. Each message stays a message of its own (some clients read one row per CopyData): the
   * run writes exactly what forward() would write message by message.
   */
  forwardRun(buf: Buffer, start: number, end: number, sink: MessageSink): void {
    const out = this.out;
    out.begin();
    this.runDone = 0;
    let p = start;
    try {
      while (p < end) {
        if (end - p < COPY_DATA_HEADER) throw this.fail('not a CopyData message');
        const next = p + 1 + int32(buf, p + 1);
        if (next > end || next < p + COPY_DATA_HEADER) throw this.fail('not a CopyData message');
        // When the slab may not hold this message (even with every byte escaped), the run so
        // far is handed out first: ensure() would otherwise move all of it to a new slab.
        if (this.runDone > 0 && out.buf.length - out.w < 2 * (next - p) + SLACK) {
          this.handOut(sink);
          this.runDone = 0;
        }
        const reached = this.pending === undefined ? this.runMessages(buf, p, end) : p;
        if (reached > p) {
          p = reached;
          continue;
        }
        this.append(buf, p, next);
        this.runDone = out.w - out.start;
        p = next;
      }
    } catch (err) {
      // The messages before the one that failed go out, as they would one by one.
      out.w = out.start + this.runDone;
      this.handOut(sink);
      throw err;
    }
    this.handOut(sink);
  }

  /**
   * A format's fast path for runs: rewrites the CopyData messages from `buf[p]` on (complete,
   * up to `end`, nothing carried over) into the slab at its write cursor, headers included, as
   * long as each holds complete units only; keeps runDone at the end of the last message written
   * and returns where it stopped (p: none taken, the message goes through append()).
   */
  protected runMessages(_buf: Buffer, p: number, _end: number): number {
    return p;
  }

  /** Hands out the slab's bytes since out.start (the messages built) to `sink`. */
  private handOut(sink: MessageSink): void {
    const out = this.out;
    const { buf: slab, start: from, w: to } = out;
    if (to === from) return;
    out.commit();
    sink.add(slab, from, to);
  }

  /**
   * Builds the new message for the CopyData `buf[start, end)` in the slab at its write cursor:
   * the header, then the units the message completes. Returns false when that message is the
   * original one (nothing masked, nothing carried over in or out).
   */
  private append(buf: Buffer, start: number, end: number): boolean {
    if (buf[start] !== Backend.copyData || end - start < COPY_DATA_HEADER || int32(buf, start + 1) !== end - start - 1) throw this.fail('not a CopyData message');
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
    out.ensure(COPY_DATA_HEADER);
    // Where the header goes, from out.start (the message may move to a new slab while it grows).
    const at = out.w - out.start;
    out.w += COPY_DATA_HEADER;
    this.changed = false;
    const consumed = this.process(data, pos, stop);
    const rest = stop - consumed;
    if (rest > MAX_PENDING) throw this.fail('a row larger than the carry-over limit');
    this.pending = rest > 0 ? Buffer.from(data.subarray(consumed, stop)) : undefined;
    const h = out.start + at;
    const dst = out.buf;
    dst[h] = Backend.copyData;
    const len = out.w - h - 1;
    dst[h + 1] = len >>> 24;
    dst[h + 2] = (len >>> 16) & 0xff;
    dst[h + 3] = (len >>> 8) & 0xff;
    dst[h + 4] = len & 0xff;
    return this.changed || pending !== undefined || rest > 0;
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

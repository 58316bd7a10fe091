// The framing shared by the COPY rewriters: CopyData payloads in, complete units (rows, the
// binary header) rewritten, a partial unit carried over to the next message (PostgreSQL sends
// one row per CopyData, but nothing here relies on it).
import { Backend } from '../../protocols/postgres/codes.js';
import { MaskingError } from './types.js';
import { MASK_NULL, MASK_UNCHANGED, type ValueMasker } from './value-masker.js';

/** A partial row carried between CopyData messages may not grow past this. */
const MAX_PENDING = 256 * 1024 * 1024;

/** Shared framing: CopyData payloads in, complete units rewritten, a partial unit carried over. */
export abstract class CopyRewriter {
  private pending: Buffer | undefined;

  constructor(
    protected readonly columns: number,
    protected readonly maskers: readonly (ValueMasker | undefined)[],
    protected readonly rule: string,
  ) {}

  protected fail(why: string): MaskingError {
    return new MaskingError(this.rule, `malformed COPY data (${why}): the data is not sent`);
  }

  /** Rewrites the complete units at the start of `data`; returns the output parts, bytes consumed and whether anything changed. */
  protected abstract process(data: Buffer): { parts: Buffer[]; consumed: number; changed: boolean };

  rewrite(buf: Buffer, start: number, end: number): Buffer | undefined {
    if (buf[start] !== Backend.copyData || end - start < 5 || buf.readInt32BE(start + 1) !== end - start - 1) throw this.fail('not a CopyData message');
    const payload = buf.subarray(start + 5, end);
    const hadPending = this.pending !== undefined;
    const data = this.pending ? Buffer.concat([this.pending, payload]) : payload;
    const { parts, consumed, changed } = this.process(data);
    const rest = data.length - consumed;
    if (rest > MAX_PENDING) throw this.fail('a row larger than the carry-over limit');
    this.pending = rest > 0 ? Buffer.from(data.subarray(consumed)) : undefined;
    if (!changed && !hadPending && rest === 0) return undefined;
    // One allocation: the CopyData header and every part.
    let size = 5;
    for (const p of parts) size += p.length;
    const msg = Buffer.allocUnsafe(size);
    msg[0] = Backend.copyData;
    msg.writeInt32BE(size - 1, 1);
    let at = 5;
    for (const p of parts) at += p.copy(msg, at);
    return msg;
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

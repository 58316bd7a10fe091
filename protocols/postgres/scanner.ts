// Frames a stream of typed PostgreSQL messages (type byte + int32 length + body) without copying.
//
// The consumer decides per message, from its header alone, whether it needs the message whole
// (`whole()` returns true: it is delivered through `onMessage` as one contiguous range) or can
// let it stream through (`onBytes` receives its bytes as they arrive, possibly in pieces).
// Streamed bytes of consecutive messages within one chunk are delivered as one range, so a
// relay that inspects nothing forwards each chunk as it came: zero copies, one write.
// Whole messages that fit in the chunk are views into it; only a whole message that spans
// chunks is copied, into a buffer of exactly its size (after its length passed the cap).
import { AllowanceExceededError, MessageTooLargeError, ProtocolError, type ByteAllowance } from '../errors.js';

/**
 * whole()'s answer for a message to be delivered whole together with the complete messages of the
 * same type that follow it in the chunk, as one run through `onRun` (one call for a socket read's
 * worth of rows instead of one per message).
 */
export const RUN = 2;

export interface ScanHandler {
  /**
   * Called once per message header; `length` counts every byte of the message (type byte
   * included). True: deliver it whole; RUN: whole, in a run (the handler has onRun); false: stream it.
   */
  whole(code: number, length: number): boolean | typeof RUN;
  /**
   * A whole message: `buf[start, end)` is the complete message including type byte and length.
   * Returning a Promise suspends the scanner right after this message until `resume()` is called
   * (the consumer does that when the promise settles); the rest of the chunk is kept, not copied.
   */
  onMessage(code: number, buf: Buffer, start: number, end: number): void | Promise<unknown>;
  /** Bytes of streamed messages, in stream order. */
  onBytes(buf: Buffer, start: number, end: number): void;
  /**
   * A run (whole() answered RUN for the first message): `buf[start, end)` holds one or more
   * complete messages of type `code` back to back, each within the length limit. whole() saw only
   * the first one's header: a run holds one type of message, and every complete message of that
   * type that follows in the chunk. A run cannot suspend the scanner. A message whole() answered
   * RUN for that is not complete in its chunk is collected and delivered through onMessage.
   */
  onRun?(code: number, buf: Buffer, start: number, end: number): void;
}

const HEADER = 5;
/** First allocation for a whole message that spans chunks; it grows as its bytes arrive. */
const INITIAL_COLLECT = 64 * 1024;
type State = 'header' | 'stream' | 'collect';

export class MessageScanner {
  private state: State = 'header';
  private readonly header = Buffer.alloc(HEADER);
  private headerHave = 0;
  private code = 0;
  /** Bytes of the current message still to come (stream and collect states). */
  private remaining = 0;
  private collect: Buffer | undefined;
  private collectPos = 0;
  /** Declared length of the message being collected. */
  private total = 0;
  /** Bytes consumed before the current chunk, for error offsets. */
  private consumed = 0;
  /** Set while a handler's promise holds the scanner; the unprocessed rest of the chunk waits in `rest`. */
  suspended: Promise<unknown> | undefined;
  private rest: Buffer | undefined;

  /** Bytes of the collect buffer taken from the allowance. */
  private charged = 0;

  constructor(
    private readonly handler: ScanHandler,
    /** Largest message accepted, in bytes (type byte included). */
    private readonly maxLength: number,
    /** Shared with other scanners: what collect buffers may hold together (none: no limit). */
    private readonly allowance?: ByteAllowance,
  ) {}

  /** Gives back what the message being collected holds (the session is over). */
  release(): void {
    if (this.charged > 0) this.allowance?.give(this.charged);
    this.charged = 0;
  }

  /** A collect buffer of `size` bytes, replacing one of `this.charged` bytes, within the allowance. */
  private allocCollect(size: number): Buffer {
    const a = this.allowance;
    if (a) {
      const more = size - this.charged;
      if (more > 0 && !a.take(more)) throw new AllowanceExceededError(more, a.limit);
      this.charged = size;
    }
    return Buffer.allocUnsafe(size);
  }

  /** True when no message is partially received. */
  get atBoundary(): boolean {
    return this.state === 'header' && this.headerHave === 0;
  }

  /** Continues after a suspension: processes the rest of the chunk that was held back. */
  resume(): void {
    this.suspended = undefined;
    const rest = this.rest;
    this.rest = undefined;
    // Suspending counted the bytes processed so far; push() counts the rest as it goes.
    if (rest) this.push(rest);
  }

  private suspend(p: Promise<unknown>, chunk: Buffer, i: number): void {
    this.suspended = p;
    if (i < chunk.length) this.rest = chunk.subarray(i);
  }

  private checkLength(code: number, len: number, at: number): number {
    // The length field counts itself but not the type byte.
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`, at);
    if (len + 1 > this.maxLength) {
      throw new MessageTooLargeError(`message of ${len + 1} bytes exceeds the limit of ${this.maxLength}`, code, this.maxLength, at);
    }
    return len + 1;
  }

  push(chunk: Buffer): void {
    if (this.suspended) throw new Error('MessageScanner.push while suspended');
    const h = this.handler;
    const n = chunk.length;
    let i = 0;
    let run = -1; // start of a pending streamed range within this chunk
    while (i < n) {
      if (this.state === 'stream') {
        const take = Math.min(this.remaining, n - i);
        if (run < 0) run = i;
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'header';
        continue;
      }
      if (this.state === 'collect') {
        const take = Math.min(this.remaining, n - i);
        const buf = this.room(take);
        chunk.copy(buf, this.collectPos, i, i + take);
        this.collectPos += take;
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          const p = this.deliverCollected();
          if (p) {
            this.suspend(p, chunk, i);
            this.consumed += i;
            return;
          }
        }
        continue;
      }
      if (this.headerHave === 0 && n - i >= HEADER) {
        // Fast path: the whole header is in this chunk.
        const code = chunk[i] as number;
        const total = this.checkLength(code, chunk.readInt32BE(i + 1), this.consumed + i);
        const w = h.whole(code, total);
        if (w) {
          if (run >= 0) {
            h.onBytes(chunk, run, i);
            run = -1;
          }
          if (w === RUN && n - i >= total && h.onRun) {
            i = this.deliverRun(code, chunk, i, i + total);
          } else if (n - i >= total) {
            const p = h.onMessage(code, chunk, i, i + total);
            i += total;
            if (p) {
              this.suspend(p, chunk, i);
              this.consumed += i;
              return;
            }
          } else {
            this.code = code;
            this.total = total;
            this.collect = this.allocCollect(Math.min(total, Math.max(INITIAL_COLLECT, n - i)));
            chunk.copy(this.collect, 0, i, n);
            this.collectPos = n - i;
            this.remaining = total - (n - i);
            this.state = 'collect';
            i = n;
          }
        } else {
          if (run < 0) run = i;
          const take = Math.min(total, n - i);
          i += take;
          this.remaining = total - take;
          if (this.remaining > 0) this.state = 'stream';
        }
        continue;
      }
      // The header is split across chunks: gather it first.
      if (run >= 0) {
        h.onBytes(chunk, run, i);
        run = -1;
      }
      const take = Math.min(HEADER - this.headerHave, n - i);
      chunk.copy(this.header, this.headerHave, i, i + take);
      this.headerHave += take;
      i += take;
      if (this.headerHave < HEADER) break;
      this.headerHave = 0;
      const code = this.header[0] as number;
      const total = this.checkLength(code, this.header.readInt32BE(1), this.consumed + i - HEADER);
      this.code = code;
      this.remaining = total - HEADER;
      if (h.whole(code, total)) {
        this.total = total;
        this.collect = this.allocCollect(Math.min(total, INITIAL_COLLECT));
        this.header.copy(this.collect, 0);
        this.collectPos = HEADER;
        this.state = 'collect';
        if (this.remaining === 0) {
          const p = this.deliverCollected();
          if (p) {
            this.suspend(p, chunk, i);
            this.consumed += i;
            return;
          }
        }
      } else {
        h.onBytes(Buffer.from(this.header), 0, HEADER);
        if (this.remaining > 0) this.state = 'stream';
      }
    }
    if (run >= 0) h.onBytes(chunk, run, i);
    this.consumed += n;
  }

  /**
   * Delivers the run that starts with the complete message `chunk[start, first)`: it and the
   * complete messages of the same type right after it, each length checked as any header is.
   * Returns where the run ends. A message that is not complete in the chunk (or whose length is
   * wrong) ends the run: the main loop takes it from there.
   */
  private deliverRun(code: number, chunk: Buffer, start: number, first: number): number {
    const n = chunk.length;
    let j = first;
    while (n - j >= HEADER && chunk[j] === code) {
      const len = ((chunk[j + 1] as number) << 24) | ((chunk[j + 2] as number) << 16) | ((chunk[j + 3] as number) << 8) | (chunk[j + 4] as number);
      if (len < 4 || len + 1 > this.maxLength || n - j < len + 1) break;
      j += len + 1;
    }
    (this.handler.onRun as NonNullable<ScanHandler['onRun']>)(code, chunk, start, j);
    return j;
  }

  /**
   * The collect buffer with room for `more` bytes. It grows with the bytes that actually arrive
   * (doubling, up to the declared length), so a peer that declares a huge message and sends
   * little of it costs little memory.
   */
  private room(more: number): Buffer {
    let buf = this.collect as Buffer;
    const need = this.collectPos + more;
    if (need <= buf.length) return buf;
    const grown = this.allocCollect(Math.min(this.total, Math.max(need, buf.length * 2)));
    buf.copy(grown, 0, 0, this.collectPos);
    buf = grown;
    this.collect = grown;
    return buf;
  }

  private deliverCollected(): void | Promise<unknown> {
    const buf = this.collect as Buffer;
    this.collect = undefined;
    this.state = 'header';
    const charged = this.charged;
    this.charged = 0;
    const pending = this.handler.onMessage(this.code, buf, 0, buf.length);
    if (charged > 0 && this.allowance) {
      // A handler that keeps the message (a statement held for approval) keeps its share of the
      // allowance until it is done with it.
      const allowance = this.allowance;
      const give = (): void => allowance.give(charged);
      if (pending) pending.then(give, give);
      else give();
    }
    return pending;
  }
}

/** Frames messages from one complete buffer (tests, fixtures). Throws on a trailing partial message. */
export function splitMessages(buf: Buffer, maxLength = 1 << 30): Buffer[] {
  const out: Buffer[] = [];
  const scanner = new MessageScanner(
    {
      whole: () => true,
      onMessage: (_code, b, s, e) => {
        out.push(b.subarray(s, e));
      },
      onBytes: () => undefined,
    },
    maxLength,
  );
  scanner.push(buf);
  if (!scanner.atBoundary) throw new ProtocolError('truncated message at end of buffer', buf.length);
  return out;
}

// Where rewritten messages are built: one large buffer filled front to back, each message a range
// of it. Two properties matter on the masked hot path:
//   - no allocation per message (the slab is shared by hundreds of rows, and a message added to
//     the relay's output as a range of it needs no object of its own);
//   - consecutive messages lie next to each other in one buffer object, so the relay's
//     OutputBatch merges a run of rewritten rows added from it into one range (one write)
//     instead of one write per row.
// Bytes already handed out are never written again: a socket may still be sending them. When a
// message does not fit, a new slab is started and the message's bytes so far move with it.

/** Size of a fresh slab; a message larger than that gets a slab of its own size. */
const SLAB_BYTES = 64 * 1024;

/** Spans shorter than this are copied byte by byte (cheaper than a native copy call). */
export const SMALL_COPY = 64;

/** The big-endian Int32 at `buf[p]` (a message or value length), without a bounds-checked call. */
export function int32(buf: Buffer, p: number): number {
  return ((buf[p] as number) << 24) | ((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number);
}

/** Writes `v` as a big-endian Int32 at `buf[p]`. */
export function putInt32(buf: Buffer, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}

/** A DataView of exactly the bytes of `buf`. */
export function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.length);
}

export class OutputSlab {
  /** The current slab. Writers write `buf[w, …)` after ensure() and store `w` back. */
  buf: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** A DataView of `buf` (word-at-a-time writers), replaced with it. */
  view: DataView = viewOf(this.buf);
  /** Write cursor of the message being built. */
  w = 0;
  /** Start of the message being built (everything before it has been handed out); moves with it. */
  start = 0;

  /** Starts a message at the first free byte. Bytes written since the last take() are dropped. */
  begin(): void {
    this.w = this.start;
  }

  /** Makes room for `n` more bytes at `w`; may move the message being built to a new slab. */
  ensure(n: number): void {
    if (this.w + n <= this.buf.length) return;
    const sofar = this.w - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (sofar + n)));
    this.buf.copy(next, 0, this.start, this.w);
    this.buf = next;
    this.view = viewOf(next);
    this.start = 0;
    this.w = sofar;
  }

  /**
   * Hands out the message built since begin(): its bytes (`buf[start, w)` — take `buf` first: it
   * may be replaced here) are never written again.
   */
  commit(): void {
    this.start = this.w;
    // A slab grown for one large message is not kept for the rows after it: memory stays flat.
    if (this.buf.length > SLAB_BYTES) this.fresh();
  }

  /** The message built since begin(), as a view of its own, handed out. */
  take(): Buffer {
    const view = this.buf.subarray(this.start, this.w);
    this.commit();
    return view;
  }

  private fresh(): void {
    this.buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
    this.view = viewOf(this.buf);
    this.start = 0;
    this.w = 0;
  }
}

/**
 * The process's slab. Sharing one is safe: a message is built and taken synchronously, so
 * rewriters of different sessions never interleave inside one message.
 */
export const SHARED_SLAB = new OutputSlab();

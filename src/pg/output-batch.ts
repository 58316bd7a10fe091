// Collects the byte ranges one incoming chunk produces for the other side, merging adjacent
// ranges of the same buffer, and writes them in one go (one write, or corked writes → writev).
import type { Socket } from 'node:net';

export class OutputBatch {
  private bufs: Buffer[] = [];
  private starts: number[] = [];
  private ends: number[] = [];
  private count = 0;
  /** Bytes currently batched. */
  bytes = 0;

  add(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.bytes += end - start;
    const last = this.count - 1;
    if (last >= 0 && this.bufs[last] === buf && this.ends[last] === start) {
      this.ends[last] = end;
      return;
    }
    this.bufs[this.count] = buf;
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.count++;
  }

  /** Adds a whole buffer of its own (e.g. a rewritten or generated message). */
  push(buf: Buffer): void {
    this.add(buf, 0, buf.length);
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Writes everything batched; returns the socket's write() result (false = wait for 'drain'). */
  flush(socket: Socket): boolean {
    const n = this.count;
    if (n === 0) return true;
    let ok = true;
    if (n > 1) socket.cork();
    for (let i = 0; i < n; i++) {
      const buf = this.bufs[i] as Buffer;
      const s = this.starts[i] as number;
      const e = this.ends[i] as number;
      ok = socket.write(s === 0 && e === buf.length ? buf : buf.subarray(s, e));
      this.bufs[i] = EMPTY; // drop the reference so the chunk can be collected
    }
    if (n > 1) socket.uncork();
    this.count = 0;
    this.bytes = 0;
    return ok;
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.bufs[i] = EMPTY;
    this.count = 0;
    this.bytes = 0;
  }
}

const EMPTY = Buffer.alloc(0);

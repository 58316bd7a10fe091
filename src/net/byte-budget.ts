// One process-wide allowance for the bytes warden holds while it reads a message whole across
// socket reads (a statement or Bind of many megabytes, a TDS request of many packets). Each session
// is bounded by sessions.max_message_bytes; this bounds them together (sessions.max_buffered_bytes),
// so many sessions sending large messages at once end one session each, not the process.
import type { ByteAllowance } from '../../protocols/errors.js';

export class ByteBudget implements ByteAllowance {
  private used = 0;

  constructor(readonly limit: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  /** Bytes held now (for metrics and tests). */
  get inUse(): number {
    return this.used;
  }
}

// Capturing result rows while the relay sends them: a running digest of the wire bytes, or the
// first N / all (masked) values, bounded.

import { createHash, type Hash } from 'node:crypto';
import { DEFAULT_LIMITS, type CapturePolicy, type TranscriptLimits } from './config.js';
import { clip } from './text.js';
import { sha256Hex } from './frame.js';

/** Results up to this size are digested in one call at the end instead of a running hash. */
const SMALL_DIGEST_BYTES = 16 * 1024;
import type { CapturedRows } from './types.js';

/**
 * Builds a result's CapturedRows while the relay sends rows. Under `digest` it hashes each row's
 * wire bytes as sent (PG DataRow, TDS ROW/NBCROW token, after masking), so an auditor holding a
 * capture of the traffic can match it; under `first`/`all` it keeps the (masked) text values.
 */
export class RowCapture {
  rows = 0;
  bytes = 0;
  /** The running digest, created once a result outgrows `pending` (most results are a few rows). */
  private hash: Hash | undefined;
  /** Under `digest`: the first rows' bytes, hashed in one call at finish() while they stay small. */
  private pending: Uint8Array[] | undefined;
  private pendingBytes = 0;
  private readonly kept: Array<Array<string | null>> = [];
  private keptBytes = 0;
  private truncated = false;

  constructor(
    private readonly policy: CapturePolicy,
    private readonly limits: Pick<TranscriptLimits, 'valueBytes' | 'captureBytes'> = DEFAULT_LIMITS,
  ) {
    if (policy.mode === 'digest') this.pending = [];
  }

  private digestUpdate(data: Uint8Array | string): void {
    if (this.hash) {
      this.hash.update(data);
      return;
    }
    const pending = this.pending as Uint8Array[];
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes > SMALL_DIGEST_BYTES) {
      this.hash = createHash('sha256');
      for (const b of pending) this.hash.update(b);
      this.pending = undefined;
    }
  }

  /** True while `add` wants the row's text values (the relay may skip decoding otherwise). */
  get wantsValues(): boolean {
    if (this.truncated) return false;
    if (this.policy.mode === 'all') return true;
    return this.policy.mode === 'first' && this.kept.length < this.policy.firstRows;
  }

  get wantsWire(): boolean {
    return this.policy.mode === 'digest';
  }

  /** One row as sent: its wire bytes (for the digest and the byte count) and, when wanted, its values. */
  add(wire: Uint8Array | null, values?: readonly (string | null)[]): void {
    this.rows += 1;
    if (wire) this.bytes += wire.length;
    if (this.policy.mode === 'digest') {
      if (wire) this.digestUpdate(wire);
      else if (values) this.digestUpdate(`${JSON.stringify(values)}\n`);
      return;
    }
    if (!values || !this.wantsValues) {
      if (this.policy.mode === 'first' && this.kept.length >= this.policy.firstRows) this.truncated = true;
      return;
    }
    const cells = values.map((v) => (v === null ? null : clip(v, this.limits.valueBytes).value));
    const size = cells.reduce((n, v) => n + (v === null ? 4 : Buffer.byteLength(v)), 0);
    if (this.keptBytes + size > this.limits.captureBytes) {
      this.truncated = true;
      return;
    }
    this.keptBytes += size;
    this.kept.push(cells);
  }

  finish(): CapturedRows {
    switch (this.policy.mode) {
      case 'none':
        return { mode: 'none' };
      case 'digest':
        return { mode: 'digest', sha256: this.hash ? this.hash.digest('hex') : sha256Hex(oneBuffer(this.pending ?? [])), rows: this.rows };
      case 'first':
        return { mode: 'first', limit: this.policy.firstRows, rows: this.kept, truncated: this.truncated || this.rows > this.kept.length };
      case 'all':
        return { mode: 'all', rows: this.kept, truncated: this.truncated };
    }
  }
}

/** The chunks as one buffer; a single chunk (most results are one row) as it is. */
function oneBuffer(chunks: Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

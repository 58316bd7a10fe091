// Capturing result rows while the relay sends them: a running digest of the wire bytes, or the
// first N / all (masked) values, bounded.

import { createHash, type Hash } from 'node:crypto';
import { DEFAULT_LIMITS, type CapturePolicy, type TranscriptLimits } from './config.js';
import { clip } from './text.js';
import type { CapturedRows } from './types.js';

/**
 * Builds a result's CapturedRows while the relay sends rows. Under `digest` it hashes each row's
 * wire bytes as sent (PG DataRow, TDS ROW/NBCROW token, after masking), so an auditor holding a
 * capture of the traffic can match it; under `first`/`all` it keeps the (masked) text values.
 */
export class RowCapture {
  rows = 0;
  bytes = 0;
  private readonly hash: Hash | undefined;
  private readonly kept: Array<Array<string | null>> = [];
  private keptBytes = 0;
  private truncated = false;

  constructor(
    private readonly policy: CapturePolicy,
    private readonly limits: Pick<TranscriptLimits, 'valueBytes' | 'captureBytes'> = DEFAULT_LIMITS,
  ) {
    this.hash = policy.mode === 'digest' ? createHash('sha256') : undefined;
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
    if (this.hash) {
      if (wire) this.hash.update(wire);
      else if (values) this.hash.update(`${JSON.stringify(values)}\n`);
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
        return { mode: 'digest', sha256: (this.hash as Hash).digest('hex'), rows: this.rows };
      case 'first':
        return { mode: 'first', limit: this.policy.firstRows, rows: this.kept, truncated: this.truncated || this.rows > this.kept.length };
      case 'all':
        return { mode: 'all', rows: this.kept, truncated: this.truncated };
    }
  }
}

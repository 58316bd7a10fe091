// Capturing result rows while the relay sends them: a running digest of the wire bytes, or the
// first N / all (masked) values, bounded.

import { createHash, type Hash } from 'node:crypto';
import { DEFAULT_LIMITS, type CapturePolicy, type TranscriptLimits } from './config.js';
import { clip } from './text.js';
import { sha256Hex } from './frame.js';
import type { CapturedRows } from './types.js';

/** Results up to this size are digested in one call at the end instead of a running hash. */
const SMALL_DIGEST_BYTES = 16 * 1024;
/** The digest of a result without rows. */
const EMPTY_DIGEST = sha256Hex(new Uint8Array(0));

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
  /**
   * Under `digest`: the rows' bytes, hashed in one call at finish() while they stay small. The
   * first row is held on its own (most results are one row); the list is made for a second.
   */
  private first: Uint8Array | undefined;
  private pending: Uint8Array[] | undefined;
  private pendingBytes = 0;
  /** Under `first`/`all`: the rows kept (made for the first; a digest keeps none). */
  private kept: Array<Array<string | null>> | undefined;
  private keptBytes = 0;
  private truncated = false;

  constructor(
    private readonly policy: CapturePolicy,
    private readonly limits: Pick<TranscriptLimits, 'valueBytes' | 'captureBytes'> = DEFAULT_LIMITS,
  ) {}

  private digestUpdate(data: Uint8Array | string): void {
    if (this.hash) {
      this.hash.update(data);
      return;
    }
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.pendingBytes += bytes.length;
    if (this.first === undefined) this.first = bytes;
    else (this.pending ??= [this.first]).push(bytes);
    if (this.pendingBytes > SMALL_DIGEST_BYTES) {
      this.hash = createHash('sha256');
      for (const b of this.pending ?? [bytes]) this.hash.update(b);
      this.first = undefined;
      this.pending = undefined;
    }
  }

  /** The digest of the rows so far (ends the running hash). */
  private digest(): string {
    if (this.summaryDigest !== undefined) return this.summaryDigest;
    if (this.hash) return this.hash.digest('hex');
    if (this.pending) return sha256Hex(Buffer.concat(this.pending));
    return this.first ? sha256Hex(this.first) : EMPTY_DIGEST;
  }

  /** True while `add` wants the row's text values (the relay may skip decoding otherwise). */
  get wantsValues(): boolean {
    if (this.truncated) return false;
    if (this.policy.mode === 'all') return true;
    return this.policy.mode === 'first' && (this.kept?.length ?? 0) < this.policy.firstRows;
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
      if (this.policy.mode === 'first' && (this.kept?.length ?? 0) >= this.policy.firstRows) this.truncated = true;
      return;
    }
    const cells = values.map((v) => (v === null ? null : clip(v, this.limits.valueBytes).value));
    const size = cells.reduce((n, v) => n + (v === null ? 4 : Buffer.byteLength(v)), 0);
    if (this.keptBytes + size > this.limits.captureBytes) {
      this.truncated = true;
      return;
    }
    this.keptBytes += size;
    (this.kept ??= []).push(cells);
  }

  /** A row sent without being shown to `add` (nothing of it is kept): counted, with its wire size. */
  passed(wireBytes: number): void {
    this.rows += 1;
    this.bytes += wireBytes;
    if (this.policy.mode === 'all') this.truncated = true;
  }

  /**
   * Rows a wire transcript did not keep (wire-encoder.ts), summarized where their result ended:
   * counted with their bytes; under `digest` the summary's digest is the digest of all the
   * result's rows (the transcript kept none of them).
   */
  absorb(summary: { rows: number; bytes: number; sha256?: string }): void {
    this.rows += summary.rows;
    this.bytes += summary.bytes;
    if (this.policy.mode === 'digest' && summary.sha256 !== undefined) this.summaryDigest = summary.sha256;
    if (this.policy.mode === 'all') this.truncated = true;
  }

  /** The digest a wire transcript's summary gave (absorb). */
  private summaryDigest: string | undefined;

  finish(): CapturedRows {
    switch (this.policy.mode) {
      case 'none':
        return { mode: 'none' };
      case 'digest':
        return { mode: 'digest', sha256: this.digest(), rows: this.rows };
      case 'first':
        return { mode: 'first', limit: this.policy.firstRows, rows: this.kept ?? [], truncated: this.truncated || this.rows > (this.kept?.length ?? 0) };
      case 'all':
        return { mode: 'all', rows: this.kept ?? [], truncated: this.truncated };
    }
  }
}

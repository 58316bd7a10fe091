// Settings of `transcripts.ship`: the shared PostgreSQL store every instance copies its transcript
// records to (see docs/transcripts.md, "Shipping to a shared store"). The connection is written
// like the approvals store's: a libpq URL, or host/port/database/user/password with tls.

import type { PostgresConnection } from '../approvals/config.js';

export interface TranscriptShipConfig extends PostgresConnection {
  /** Schema holding the transcript_* tables (created if absent). */
  schema: string;
  /** Connect and query timeout, ms. */
  timeout: number;
  /** Records per INSERT transaction. */
  batch: number;
  /** How often to look for new records once everything is shipped, ms. */
  intervalMs: number;
}

export const SHIP_DEFAULTS = {
  schema: 'warden',
  timeout: 5_000,
  batch: 500,
  intervalMs: 1_000,
} as const;

/** The parts of the configuration that only say where the store is (for readers and verify). */
export type TranscriptStoreLocation = Omit<TranscriptShipConfig, 'batch' | 'intervalMs'>;

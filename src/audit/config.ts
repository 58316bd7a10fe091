// Transcript settings. The config loader (src/config) maps a `transcripts:` section onto this;
// `transcriptConfig(dataDir)` gives the defaults.

import { hostname } from 'node:os';
import { join } from 'node:path';
import { defaultKeyFile } from './keys.js';
import { sanitizeInstanceId } from './segment-files.js';

/**
 * `each`: a Recorder promise resolves once the record is fsynced (group commit: records arriving
 * together share one fdatasync). `interval`: it resolves once the record is written to the file
 * (the OS holds it; a crash of warden loses nothing, a power loss may lose the last interval), and
 * the file is fsynced every `fsyncIntervalMs`.
 */
export type FsyncPolicy = 'each' | 'interval';

export type CaptureMode = 'none' | 'digest' | 'first' | 'all';

export interface CapturePolicy {
  mode: CaptureMode;
  /** Rows kept by `first`; default 10. */
  firstRows: number;
}

/** Caps on what one record holds. Anything longer is cut and marked (with a digest of the whole). */
export interface TranscriptLimits {
  /** Statement text, in UTF-8 bytes; default 64 KiB. */
  textBytes: number;
  /** One parameter or captured cell value; default 4 KiB. */
  valueBytes: number;
  /** Parameters per statement; default 1000. */
  params: number;
  /** Captured row values per result, in bytes; default 256 KiB. */
  captureBytes: number;
  /** Messages (errors, notices, reasons); default 8 KiB. */
  messageBytes: number;
  /** Hard cap on one encoded record; default 4 MiB. */
  recordBytes: number;
}

export interface TranscriptConfig {
  /** Directory of segment files; default <dataDir>/transcripts. */
  dir: string;
  /** Names this writer's chain and files. Keep it stable across restarts: the chain continues. */
  instanceId: string;
  /** Ed25519 private key (PKCS#8 PEM). */
  keyFile: string;
  /** Generate `keyFile` when absent (true for the default path; an explicit path must exist). */
  createKey: boolean;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /** An fsync that has not returned after this long fails the writer (ESTALLED): the disk stopped answering. */
  syncStallMs: number;
  /** Rotate (seal and start a new segment) at this size … */
  segmentMaxBytes: number;
  /** … or age. */
  segmentMaxAgeMs: number;
  /** Sign a checkpoint after this many records … */
  checkpointEveryRecords: number;
  /** … or this long after the last one, if records were added since. */
  checkpointIntervalMs: number;
  /** Remove segments whose records are all older than this (transcripts.retention); undefined keeps them for ever. */
  retentionMs?: number;
  /** What relays capture of result rows by default. */
  capture: CapturePolicy;
  limits: TranscriptLimits;
}

export const DEFAULT_LIMITS: TranscriptLimits = {
  textBytes: 64 * 1024,
  valueBytes: 4 * 1024,
  params: 1000,
  captureBytes: 256 * 1024,
  messageBytes: 8 * 1024,
  recordBytes: 4 * 1024 * 1024,
};

export function transcriptConfig(dataDir: string, overrides: Partial<TranscriptConfig> = {}): TranscriptConfig {
  return {
    dir: join(dataDir, 'transcripts'),
    instanceId: sanitizeInstanceId(hostname()),
    keyFile: defaultKeyFile(dataDir),
    createKey: overrides.keyFile === undefined,
    fsync: 'interval',
    fsyncIntervalMs: 1000,
    syncStallMs: 30_000,
    segmentMaxBytes: 64 * 1024 * 1024,
    segmentMaxAgeMs: 60 * 60 * 1000,
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 10_000,
    capture: { mode: 'digest', firstRows: 10 },
    ...overrides,
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
  };
}

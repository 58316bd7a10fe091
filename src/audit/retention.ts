// Which segments transcript retention removes (transcripts.retention, `warden audit prune`). The
// writer that owns a chain applies the plan (segment-writer.ts): it signs where the chain begins
// after it, then removes the files. Nothing here writes.

import { closeSync, openSync, readSync } from 'node:fs';
import { segmentStartedMs, type DirEntry } from './segment-files.js';

export type SegmentEntry = Extract<DirEntry, { kind: 'segment' }>;

export interface RetentionPlan {
  /** The oldest segment kept: the chain begins there. */
  keep: { index: number; name: string };
  /** The segments to remove, oldest first (every one numbered below `keep`). */
  doomed: SegmentEntry[];
}

export interface RetentionInput {
  /** The instance's segments before the active one, by number. */
  segments: readonly SegmentEntry[];
  /** The segment being written (never removed), and the seq of its first record. */
  active: { index: number; name: string; firstSeq: number };
  /** Segments whose records all precede this (ms since the epoch) may go. */
  cutoff: number;
  /** The lowest seq that must stay (not yet shipped), if any. */
  keepFrom: number | undefined;
}

/**
 * The oldest segments whose records are all older than the cutoff: a segment's records precede the
 * start of the segment after it, which its file name gives. It stops at the first segment too young,
 * or holding a record at or after `keepFrom`.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { segments, active, cutoff, keepFrom } = input;
  let keep: { index: number; name: string } = { index: active.index, name: active.name };
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as SegmentEntry;
    const next = segments[i + 1];
    const endedBy = segmentStartedMs(next ? next.name : active.name);
    let stop = endedBy === undefined || endedBy > cutoff;
    if (!stop && keepFrom !== undefined) {
      // Its last record is the one before the next segment's first.
      const nextFirst = next ? firstRecordOf(next.path)?.seq : active.firstSeq;
      stop = nextFirst === undefined || nextFirst - 1 >= keepFrom;
    }
    if (stop) {
      keep = { index: seg.index, name: seg.name };
      break;
    }
  }
  return { keep, doomed: segments.filter((e) => e.index < keep.index) };
}

/** The seq and prev of a segment file's first record (its `open`), or undefined when it cannot be read. */
export function firstRecordOf(path: string): { seq: number; prev: string } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(10);
    if (nl < 0) return undefined;
    const rec = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { seq?: unknown; prev?: unknown };
    return Number.isSafeInteger(rec.seq) && typeof rec.prev === 'string' ? { seq: rec.seq as number, prev: rec.prev } : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

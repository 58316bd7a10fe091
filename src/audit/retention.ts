// Which segments transcript retention removes (transcripts.retention, `warden audit prune`). The
// writer that owns a chain applies the plan (segment-writer.ts): it signs where the chain begins
// after it, then removes the files. Nothing here writes.

import type { KeyObject } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { ownMark } from './jws.js';
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
  /**
   * When a segment was sealed, by a seal the chain's own key signed (sealTimeOf), or undefined. The
   * segment before a stop ends at its seal, long before the next segment (the restart) begins.
   */
  sealedAt?: (segment: SegmentEntry) => number | undefined;
}

/**
 * The oldest segments whose records are all older than the cutoff: a segment's records precede the
 * start of the segment after it, which its file name gives, and its signed seal (`sealedAt`). It
 * stops at the first segment too young, or holding a record at or after `keepFrom`.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { segments, active, cutoff, keepFrom } = input;
  let keep: { index: number; name: string } = { index: active.index, name: active.name };
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as SegmentEntry;
    const next = segments[i + 1];
    const endedBy = segmentStartedMs(next ? next.name : active.name);
    let stop = endedBy === undefined || endedBy > cutoff;
    if (stop && input.sealedAt) {
      const sealed = input.sealedAt(seg);
      if (sealed !== undefined && sealed <= cutoff) stop = false;
    }
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

/**
 * When the segment in `path` was sealed, from its last record: a seal whose signature `publicKey`
 * verifies and that names this file. Undefined for anything else (unsealed, torn, foreign-signed):
 * a time nobody could forge without the key, since retention removes what it dates.
 */
export function sealTimeOf(path: string, publicKey: KeyObject): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const want = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(want);
    const n = readSync(fd, buf, 0, want, size - want);
    const text = buf.subarray(0, n).toString('utf8');
    if (!text.endsWith('\n')) return undefined;
    const line = text.slice(text.lastIndexOf('\n', text.length - 2) + 1, -1);
    const rec = JSON.parse(line) as { k?: unknown; d?: { jws?: unknown } };
    if (rec.k !== 'seal' || typeof rec.d?.jws !== 'string') return undefined;
    const mark = ownMark(rec.d.jws, publicKey);
    if (!mark || mark.typ !== 'seal' || mark.file !== basename(path)) return undefined;
    const t = Date.parse(mark.ts);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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

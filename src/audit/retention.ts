// Which segments transcript retention removes (transcripts.retention, `warden audit prune`). The
// writer that owns a chain applies the plan (segment-writer.ts): it signs where the chain begins
// after it, then removes the files. Nothing here writes.

import type { KeyObject } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { ownMark, type SignedMark } from './jws.js';
import type { DirEntry } from './segment-files.js';

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
   * When a segment was sealed, by a seal the chain's own key signed that names the segment's file
   * (sealTimeOf), or undefined: unsealed (a crash), renamed, or not this key's.
   */
  sealedAt: (segment: SegmentEntry) => number | undefined;
}

/** Segments without a usable seal the scan reads in a row before it gives up. */
const MAX_UNDATED_RUN = 64;

/**
 * The oldest segments whose records are all older than the cutoff. Only what the chain's key
 * signed dates a segment: its seal, which is its last record, at a time in the mark. File names
 * are not trusted (anyone who can write the directory can rename a file). A segment without such a
 * seal (left unsealed by a crash) goes only with a later one whose seal is old enough: it precedes
 * it in the chain. The scan stops at the first seal that is too young, or at a segment holding a
 * record at or after `keepFrom`.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { segments, active, cutoff, keepFrom } = input;
  let last = -1;
  let undated = 0;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as SegmentEntry;
    const sealed = input.sealedAt(seg);
    if (sealed === undefined) {
      // Crashes leave a few unsealed segments; a long run of them (another key's, say) would make
      // every check read them all, on the writer's thread.
      if (++undated > MAX_UNDATED_RUN) break;
      continue;
    }
    undated = 0;
    if (sealed > cutoff) break;
    if (keepFrom !== undefined) {
      // Its last record is the one before the next segment's first.
      const next = segments[i + 1];
      const nextFirst = next ? firstRecordOf(next.path)?.seq : active.firstSeq;
      if (nextFirst === undefined || nextFirst - 1 >= keepFrom) break;
    }
    last = i;
  }
  const kept = segments[last + 1];
  const keep = kept ? { index: kept.index, name: kept.name } : { index: active.index, name: active.name };
  return { keep, doomed: segments.slice(0, last + 1) };
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

/**
 * The seq and prev of a segment file's first record (its `open`), and the key id the `open` names,
 * or undefined when it cannot be read.
 */
export function firstRecordOf(path: string): { seq: number; prev: string; kid?: string } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(10);
    if (nl < 0) return undefined;
    const rec = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { seq?: unknown; prev?: unknown; k?: unknown; d?: { kid?: unknown } };
    if (!Number.isSafeInteger(rec.seq) || typeof rec.prev !== 'string') return undefined;
    return { seq: rec.seq as number, prev: rec.prev, ...(rec.k === 'open' && typeof rec.d?.kid === 'string' ? { kid: rec.d.kid } : {}) };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How much of a segment's end is read for its newest mark (checkpoints come every 1000 records by default). */
const TAIL_BYTES = 4 * 1024 * 1024;

/**
 * The newest checkpoint or seal of the instance's chain that `publicKey` verifies, read from the
 * ends of its newest segments (at most `segments` of them): where a restarted writer learns where
 * its chain begins when the head file is older than the segments (a crash before it was updated,
 * or an old copy put back).
 */
export function newestOwnMark(files: readonly SegmentEntry[], instance: string, publicKey: KeyObject, segments = 3): SignedMark | undefined {
  const newestFirst = [...files].sort((a, b) => b.index - a.index).slice(0, segments);
  for (const seg of newestFirst) {
    let fd: number | undefined;
    try {
      fd = openSync(seg.path, 'r');
      const size = fstatSync(fd).size;
      const want = Math.min(size, TAIL_BYTES);
      const buf = Buffer.alloc(want);
      const n = readSync(fd, buf, 0, want, size - want);
      const lines = buf.subarray(0, n).toString('utf8').split('\n');
      // The first piece may be a partial line (when the read began mid-file), the last one a torn one.
      for (let i = lines.length - 1; i >= (want < size ? 1 : 0); i--) {
        const line = lines[i] as string;
        if (!line.includes('"k":"checkpoint"') && !line.includes('"k":"seal"')) continue;
        try {
          const rec = JSON.parse(line) as { d?: { jws?: unknown } };
          const mark = typeof rec.d?.jws === 'string' ? ownMark(rec.d.jws, publicKey) : undefined;
          if (mark && mark.instance === instance) return mark;
        } catch {
          // not a record: go on to the line before
        }
      }
    } catch {
      // unreadable: try the segment before
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return undefined;
}

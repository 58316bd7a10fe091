// Names and places of transcript files under <dataDir>/transcripts/:
//
//   <instance>_<segment, 8 digits>_<UTC start, YYYYMMDDTHHMMSSZ>.jsonl   a segment
//   <instance>.head.json                                                   the newest signed checkpoint or seal
//   <instance>.lock                                                        held by the live writer
//
// Names sort by instance, then by segment number, which is the chain's order. The segment number
// inside the file (its `open` record) is the authority; the name is checked against it.

import { lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const SEGMENT_SUFFIX = '.jsonl';
export const HEAD_SUFFIX = '.head.json';
export const LOCK_SUFFIX = '.lock';
export const TEMP_SUFFIX = '.tmp';
const SEGMENT_DIGITS = 8;
export const MAX_INSTANCE_CHARS = 64;
/** Ends the instance id of a recording thread's chain (src/pg/recording/thread.ts), and no other. */
export const THREAD_INSTANCE_SUFFIX = '.rec';
const SEGMENT_NAME = /^([A-Za-z0-9.-]{1,64})_(\d{8,})_(\d{8}T\d{6}Z)\.jsonl$/;

/** Makes an instance id safe for file names: letters, digits, '.', '-'; at most 64 characters. */
export function sanitizeInstanceId(id: string): string {
  const clean = id.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^[.-]+/, '').slice(0, MAX_INSTANCE_CHARS);
  return clean.length > 0 ? clean : 'warden';
}

export function compactUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function segmentFileName(instance: string, index: number, startedMs: number): string {
  return `${instance}_${String(index).padStart(SEGMENT_DIGITS, '0')}_${compactUtc(startedMs)}${SEGMENT_SUFFIX}`;
}

export function headFileName(instance: string): string {
  return `${instance}${HEAD_SUFFIX}`;
}

export function lockFileName(instance: string): string {
  return `${instance}${LOCK_SUFFIX}`;
}

export interface SegmentName {
  name: string;
  instance: string;
  index: number;
}

export function parseSegmentFileName(name: string): SegmentName | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  const index = Number(m[2]);
  return Number.isSafeInteger(index) ? { name, instance: m[1], index } : undefined;
}

/** When a segment was started, from its file name (to the second), or undefined. */
export function segmentStartedMs(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name)?.[3];
  if (m === undefined) return undefined;
  const ms = Date.parse(`${m.slice(0, 4)}-${m.slice(4, 6)}-${m.slice(6, 8)}T${m.slice(9, 11)}:${m.slice(11, 13)}:${m.slice(13, 15)}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

export type DirEntry =
  | ({ kind: 'segment'; path: string; size: number } & SegmentName)
  | { kind: 'head'; name: string; path: string; instance: string }
  | { kind: 'lock' | 'temp'; name: string; path: string }
  | { kind: 'foreign'; name: string; path: string; reason: string };

/** Classifies every entry of a transcript directory; segments sorted by instance and number. */
function existsAsLink(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function listTranscriptDir(dir: string): DirEntry[] {
  const out: DirEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      // Vanished while listing: nothing to say. Still there but unreadable (a dangling or looping
      // symlink, no permission): say so rather than pass over it in silence.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (!existsAsLink(path)) continue;
      out.push({ kind: 'foreign', name, path, reason: `cannot be read: ${code}` });
      continue;
    }
    if (!st.isFile()) {
      out.push({ kind: 'foreign', name, path, reason: st.isDirectory() ? 'a directory' : 'not a regular file' });
      continue;
    }
    const seg = parseSegmentFileName(name);
    if (seg) out.push({ kind: 'segment', path, size: st.size, ...seg });
    else if (name.endsWith(HEAD_SUFFIX)) out.push({ kind: 'head', name, path, instance: name.slice(0, -HEAD_SUFFIX.length) });
    else if (name.endsWith(LOCK_SUFFIX)) out.push({ kind: 'lock', name, path });
    else if (name.endsWith(TEMP_SUFFIX)) out.push({ kind: 'temp', name, path });
    else out.push({ kind: 'foreign', name, path, reason: 'not named like a transcript file' });
  }
  return out.sort((a, b) => {
    if (a.kind === 'segment' && b.kind === 'segment') {
      return a.instance === b.instance ? a.index - b.index : a.instance < b.instance ? -1 : 1;
    }
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

export function segmentsOf(entries: DirEntry[]): Array<Extract<DirEntry, { kind: 'segment' }>> {
  return entries.filter((e): e is Extract<DirEntry, { kind: 'segment' }> => e.kind === 'segment');
}

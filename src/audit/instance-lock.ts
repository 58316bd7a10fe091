// Lock files naming the process that holds them (takeLockFile), taken over when that process died.
// One transcript writer per instance: <instance>.lock holds the writer's pid and host. A lock left
// by a dead process on this host is taken over; a live holder makes the second writer fail
// (ELOCKED). The demo's one-per-data-directory lock (src/demo/demo.ts) and the embedded approvals
// store's (src/approvals/store-embedded.ts) are the same mechanism.

import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errnoCode, TranscriptWriteError } from './errors.js';
import { lockFileName } from './segment-files.js';

interface LockHolder {
  pid: number;
  host: string;
}

/** Lock files this process holds. A lock naming our own pid that is not in here was left by an
 *  earlier process that had the same pid (a restarted container is pid 1 again). */
const heldLocks = new Set<string>();

/** How one kind of lock file is written, read and judged (see takeLockFile). */
export interface LockFileKind<H> {
  /** What the file says while this process holds it. */
  content: string;
  /** The file's mode (default 0644). */
  mode?: number;
  /** The holder a file names (undefined: unreadable, or removed meanwhile). */
  read(text: string): H | undefined;
  /** True when the holder is gone and the file may be taken over; `ours`: this process holds it. */
  stale(holder: H | undefined, ours: boolean): boolean;
  /** The error for a live holder. */
  busy(holder: H | undefined): Error;
  /** The error for a file that cannot be created. */
  ioError(err: unknown): Error;
  /** The error when a stale file taken over is back again at once (someone else took it). */
  contended(): Error;
}

/**
 * Creates `path` (O_EXCL) naming this process, taking over a file its kind judges stale (left by
 * a process that died); a live holder is `kind.busy`. Returns the path, for releaseLock.
 */
export function takeLockFile<H>(path: string, kind: LockFileKind<H>): string {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, kind.content, { flag: 'wx', mode: kind.mode ?? 0o644 });
      heldLocks.add(path);
      return path;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw kind.ioError(err);
    }
    let holder: H | undefined;
    try {
      holder = kind.read(readFileSync(path, 'utf8'));
    } catch {
      holder = undefined; // removed meanwhile
    }
    if (!kind.stale(holder, heldLocks.has(path))) throw kind.busy(holder);
    try {
      unlinkSync(path); // left by a holder that died
    } catch {
      // someone else removed it; try again
    }
  }
  throw kind.contended();
}

/** The transcript writer's lock: one writer per instance. */
export function acquireLock(dir: string, instance: string): string {
  const path = join(dir, lockFileName(instance));
  return takeLockFile<LockHolder>(path, {
    content: JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }),
    read: readLock,
    stale: (holder, ours) => holder !== undefined && holder.host === hostname() && (holder.pid === process.pid ? !ours : !processAlive(holder.pid)),
    busy: (holder) =>
      new TranscriptWriteError(
        `transcript instance '${instance}' already has a writer (${holder ? `pid ${holder.pid} on ${holder.host}` : 'unreadable lock'}, ${path}); give each warden process its own instance id`,
        { code: 'ELOCKED' },
      ),
    ioError: (err) => new TranscriptWriteError(`cannot create ${path}: ${errnoCode(err) ?? String(err)}`, { cause: err }),
    contended: () => new TranscriptWriteError(`cannot take the transcript lock ${path}`, { code: 'ELOCKED' }),
  });
}

function readLock(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? { pid: v.pid, host: v.host } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * For readers: true when the writer of `instance` in `dir` is known to have stopped — no lock file
 * (a writer that stops releases it), or one left on this host by a process that is gone. False
 * when it may still run: a live holder, another host's, or a lock that cannot be read.
 */
export function writerStopped(dir: string, instance: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(dir, lockFileName(instance)), 'utf8');
  } catch (err) {
    return errnoCode(err) === 'ENOENT';
  }
  const holder = readLock(text);
  return holder !== undefined && holder.host === hostname() && !processAlive(holder.pid);
}

/** Whether a process with this pid runs (one we may not signal counts as running). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export function releaseLock(path: string): void {
  heldLocks.delete(path);
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

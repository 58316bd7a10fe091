// One writer per instance: <instance>.lock holds the writer's pid and host. A lock left by a dead
// process on this host is taken over; a live holder makes the second writer fail (ELOCKED).

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

export function acquireLock(dir: string, instance: string): string {
  const path = join(dir, lockFileName(instance));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }), { flag: 'wx', mode: 0o644 });
      heldLocks.add(path);
      return path;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw new TranscriptWriteError(`cannot create ${path}: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    const holder = readLock(path);
    const stale = holder !== undefined && holder.host === hostname() && (holder.pid === process.pid ? !heldLocks.has(path) : !processAlive(holder.pid));
    if (stale) {
      try {
        unlinkSync(path); // left by a writer that died
      } catch {
        // someone else removed it; try again
      }
      continue;
    }
    throw new TranscriptWriteError(
      `transcript instance '${instance}' already has a writer (${holder ? `pid ${holder.pid} on ${holder.host}` : 'unreadable lock'}, ${path}); give each warden process its own instance id`,
      { code: 'ELOCKED' },
    );
  }
  throw new TranscriptWriteError(`cannot take the transcript lock ${path}`, { code: 'ELOCKED' });
}

function readLock(path: string): LockHolder | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? { pid: v.pid, host: v.host } : undefined;
  } catch {
    return undefined;
  }
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

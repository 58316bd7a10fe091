// For tests that fill the transcript disk: a 2 MiB tmpfs mounted afresh for each test (its data
// directory under it), and a scratch table on the test server, emptied before each test.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { direct } from './pg-env.js';

export interface SmallDisk {
  /** The scratch table (n int, pad text), granted to every role. */
  readonly table: string;
  /** The tmpfs of the running test. */
  mnt: string;
  /** warden's data directory on it. */
  dataDir: string;
}

/** Registers the hooks; `name` names the table (`<name>_<pid>`) and the mount point. */
export function smallDisk(name: string): SmallDisk {
  const disk: SmallDisk = { table: `${name}_${process.pid}`, mnt: '', dataDir: '' };
  beforeAll(async () => {
    await direct(`CREATE TABLE ${disk.table} (n int, pad text)`);
    await direct(`GRANT ALL ON ${disk.table} TO PUBLIC`);
  });
  afterAll(async () => {
    await direct(`DROP TABLE IF EXISTS ${disk.table}`);
  });
  beforeEach(async () => {
    await direct(`TRUNCATE ${disk.table}`);
    disk.mnt = mkdtempSync(join(tmpdir(), `warden-${name.replace(/_/g, '-')}-`));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk.mnt]);
    disk.dataDir = join(disk.mnt, 'data');
  });
  afterEach(() => {
    execFileSync('umount', ['-l', disk.mnt]);
    rmSync(disk.mnt, { recursive: true, force: true });
  });
  return disk;
}

// `warden demo` started twice with one data directory (`npm start` in a second terminal): the
// second is refused before it touches the running demo's warden.yaml and demo.env, with a message
// saying what to do; a lock left by a demo that died is taken over.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_LOCK_FILE, lockDemoDir } from '../../src/demo/demo.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('one demo per data directory', () => {
  it('refuses a second demo while the first runs (in this process)', () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-demo-lock-'));
    const path = lockDemoDir(dir);
    expect(readFileSync(path, 'utf8').trim()).toBe(String(process.pid));
    expect(() => lockDemoDir(dir as string)).toThrow(
      `another warden demo (pid ${process.pid}) is running with the data directory ${dir}: use that one, stop it first (Ctrl-C in its terminal), or give this one its own --data-dir`,
    );
  });

  it('refuses while another live process holds it', () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-demo-lock-'));
    writeFileSync(join(dir, DEMO_LOCK_FILE), `${process.ppid}\n`);
    expect(() => lockDemoDir(dir as string)).toThrow(/another warden demo \(pid \d+\) is running/);
  });

  it('takes over the lock of a demo that died', () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-demo-lock-'));
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, DEMO_LOCK_FILE), `${gone.stdout}\n`);
    const path = lockDemoDir(dir);
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8').trim()).toBe(String(process.pid));
  });
});

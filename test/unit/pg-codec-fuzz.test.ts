// Fuzz tests of the PostgreSQL codec (test/helpers/pg-fuzz.ts), seeded with the captured
// messages. Each target runs in a child process with a deadline, so a decoder that hangs fails
// the test instead of freezing it; a throw of anything but ProtocolError fails it too. Bounded:
// a few thousand cases per target, a couple of seconds each on a busy machine.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkMessage, checkScanner, checkStartup, loadSeeds } from '../helpers/pg-fuzz.js';
import type { FuzzTarget } from '../helpers/pg-fuzz.js';

const CHILD = fileURLToPath(new URL('../helpers/pg-fuzz-child.ts', import.meta.url));
const DEADLINE_MS = 20_000;
/** A fixed seed: failures reproduce. Override with WARDEN_FUZZ_SEED to explore. */
const SEED = Number(process.env.WARDEN_FUZZ_SEED ?? 20261129);

interface ChildResult {
  ok: boolean;
  ms?: number;
  rss?: number;
  error?: string;
  timedOut: boolean;
}

function runChild(target: FuzzTarget, runs: number, deadline = DEADLINE_MS): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, target, String(SEED), String(runs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadline);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1);
      if (timedOut) return resolve({ ok: false, timedOut, error: 'timed out' });
      if (!line) return resolve({ ok: false, timedOut, error: `no result; stderr: ${err.slice(0, 2000)}` });
      resolve({ ...(JSON.parse(line) as Omit<ChildResult, 'timedOut'>), timedOut });
    });
  });
}

describe('codec fuzzing (child process, deadline per target)', () => {
  const targets: [FuzzTarget, number, string][] = [
    ['frontend', 2000, 'every frontend decoder on mutated client messages'],
    ['backend', 2000, 'every backend decoder on mutated server messages'],
    ['startup', 3000, 'startup-packet framing and decoding on mutated SSLRequest/StartupMessage/CancelRequest'],
    ['scanner', 2000, 'MessageScanner on mutated captured streams cut at random points'],
    ['random', 2000, 'all of the above on random bytes and randomly framed bodies'],
    ['scram', 60, 'SCRAM server-first / server-final parsing on mutated RFC 7677 messages'],
  ];
  for (const [target, runs, what] of targets) {
    it(`${target}: ${what} — only ProtocolError, no hang, bounded memory`, async () => {
      const r = await runChild(target, runs);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.rss).toBeLessThan(512 * 1024 * 1024);
    }, DEADLINE_MS + 5000);
  }

  it('the harness catches a decoder that throws RangeError (self-test)', async () => {
    const r = await runChild('selftest-throw', 200);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/brokenDecoder threw RangeError/);
  }, DEADLINE_MS + 5000);

  it('the harness catches a decoder that hangs (self-test)', async () => {
    const r = await runChild('selftest-hang', 200, 2000);
    expect(r.timedOut).toBe(true);
    expect(r.ok).toBe(false);
  }, 10_000);
});

describe('fuzz oracles on the unmutated seeds', () => {
  it('every seed passes its own checks (the oracles accept valid input)', () => {
    const seeds = loadSeeds();
    expect(seeds.frontend.length).toBeGreaterThan(40);
    expect(seeds.backend.length).toBeGreaterThan(100);
    for (const [i, m] of seeds.frontend.entries()) checkMessage(m, 'frontend', i);
    for (const [i, m] of seeds.backend.entries()) checkMessage(m, 'backend', i);
    for (const p of seeds.startup) checkStartup(p);
    for (const s of seeds.streams) checkScanner(s, [1, 7, 100, 1000], [true, false, false]);
  });
});

// warden must not enable async_hooks. Once any init hook is on (AsyncLocalStorage.run does it in
// Node 20), every promise and every socket write request in the process calls into JavaScript for
// the rest of the process's life: the relay's hot path pays for a log field of the admin API. The
// check runs warden in a child process, since the test runner may enable hooks of its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/embedded/seed.js';
import { childWardenYaml } from '../helpers/pg-env.js';

describe('async_hooks', () => {
  it('stay off through agent sessions, scrapes and refused admin requests (transcripts and rules on)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-hooks-'));
    try {
      const config = join(dir, 'warden.yaml');
      writeFileSync(config, childWardenYaml(dir, ['transcripts: { enabled: true, capture: digest }', 'rules:', '  - { name: no-drop, match: { kinds: [drop] }, action: deny }']));
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'test/helpers/async-hooks-child.ts'), config], { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`child exited with ${code}: ${stderr}`))));
      });
      const seen = JSON.parse(out) as { statuses: Record<string, number>; rows: unknown[]; initHooks: number };
      // The paths ran: the agent's queries were answered and the admin API refused the bad tokens.
      expect(seen.rows).toEqual([{ one: 1 }, { two: 2 }]);
      expect(seen.statuses).toEqual({ metrics: 200, sessionsRefused: 401, approvalsRefused: 401 });
      expect(seen.initHooks).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

// warden in a child process (test/integration/audit-warden-child.ts, logging JSON lines on
// stderr), for tests that kill it, stop it with a signal, or stop its threads.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/embedded/seed.js';

const CHILD = join(projectRoot(), 'test/integration/audit-warden-child.ts');

export interface WardenChild {
  proc: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  /** A dev-issuer token for the principal `agent`. */
  token: string;
  stderr: () => string;
}

/**
 * Starts warden on the configuration `file`; resolves once it listens, rejects if it exits first.
 * `cleanup` receives what kills it (SIGKILL) if it is still running when the test ends.
 */
export function startWardenChild(file: string, cleanup: (f: () => Promise<void>) => void, env: NodeJS.ProcessEnv = {}): Promise<WardenChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, file, 'log'], { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  cleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (!line.includes('"token"')) return;
      const { port, token } = JSON.parse(line) as { port: number; token: string };
      resolve({ proc, port, token, exited, stderr: () => stderr });
    });
    void exited.then((code) => reject(new Error(`warden exited (${code}): ${stderr}`)));
  });
}

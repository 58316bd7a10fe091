// Runs the `warden` CLI from source (tsx) in a child process and collects what it printed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/embedded/seed.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `warden ARGS…` with `env` (default: this process's environment), from the project root. */
export function wardenCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'src/cli/main.ts'), ...args], { cwd: projectRoot(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

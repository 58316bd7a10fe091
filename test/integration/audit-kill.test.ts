// kill -9 of a real warden process while agents send a burst of statements through it with real
// clients, under fsync `each`: every statement a client saw succeed has its record in the
// transcript, and the store verifies (a torn tail at worst, never a finding of tampering).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { childWardenYaml, direct } from '../helpers/pg-env.js';
import { transcriptsDir, verifyStore } from '../unit/audit-support.js';

const TABLE = `kill_burst_${process.pid}`;
let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-kill-'));
  await direct(`CREATE TABLE ${TABLE} (n int, pad text)`);
  await direct(`GRANT ALL ON ${TABLE} TO PUBLIC`);
});
afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await direct(`DROP TABLE IF EXISTS ${TABLE}`);
});

function startWardenChild(config: string): Promise<{ port: number; token: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'test/integration/audit-warden-child.ts'), config], { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (stdout.includes('\n')) resolve(JSON.parse(stdout) as { port: number; token: string });
    });
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('exit', (code) => reject(new Error(`warden exited with ${code}: ${stderr}`)));
  });
}

describe('kill -9 of warden during a burst of statements (fsync each)', () => {
  it('loses no acknowledged statement and leaves a store that verifies', async () => {
    const config = join(dir, 'warden.yaml');
    writeFileSync(config, childWardenYaml(dir, ['transcripts: { enabled: true, fsync: each, capture: all }']));
    const { port, token } = await startWardenChild(config);
    const acked = new Set<number>();
    const burst = async (k: number): Promise<void> => {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', password: token, database: 'shop', ssl: false });
      c.on('error', () => undefined);
      await c.connect();
      for (let i = 0; ; i++) {
        const n = k * 100_000 + i;
        // Large captured rows (capture: all) make the writes long enough for the kill to land inside one.
        const ok = await c.query(`INSERT INTO ${TABLE} VALUES ($1, repeat('v', ${i % 3 === 0 ? 300_000 : 10})) RETURNING n, pad`, [n]).then(() => true, () => false);
        if (!ok) return;
        acked.add(n);
      }
    };
    const sessions = [0, 1, 2, 3].map(burst);
    while (acked.size < 200) await new Promise((r) => setTimeout(r, 5));
    child?.kill('SIGKILL');
    await Promise.all(sessions);

    const recorded = new Set<number>();
    for await (const { record } of readStore(transcriptsDir(dir))) {
      const params = record.k === 'statement' ? (record.d as { params?: { value: string }[] }).params : undefined;
      if (params?.[0]) recorded.add(Number(params[0].value));
    }
    expect([...acked].filter((n) => !recorded.has(n))).toEqual([]);
    const report = await verifyStore(dir);
    process.stdout.write(`kill -9 after ${acked.size} acknowledged INSERTs: ${report.records} records, ${report.findings.map((f) => f.kind).join(', ')}\n`);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(report.findings.every((f) => f.kind === 'open-segment' || f.kind === 'torn-tail')).toBe(true);
  });
});

// Crashes and full disks, with a real child process: a SIGKILL in the middle of a write burst
// leaves a store that verifies (a torn tail at worst, never tampering) and holds every record
// whose `each` promise had resolved; a file that cannot grow (RLIMIT_FSIZE, the same short write
// and error a full disk gives) surfaces as TranscriptWriteError, and what was written still
// verifies. A new writer then continues the chain and records the recovery.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { openStore, recordSession, segmentFiles, tempDataDir, transcriptsDir, verifyStore } from '../unit/audit-support.js';

let data: { dir: string; cleanup: () => void };
let child: ChildProcess | undefined;

beforeEach(() => {
  data = tempDataDir('warden-audit-crash-');
});
afterEach(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  data.cleanup();
});

const CHILD = join(projectRoot(), 'test/integration/audit-child.ts');

interface ChildRun {
  acks: Set<string>;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor: (pred: (lines: string[], acks: Set<string>) => boolean, timeoutMs: number) => Promise<void>;
}

function startChild(command: string, args: string[]): ChildRun {
  const proc = spawn(command, args, { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  const acks = new Set<string>();
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  proc.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      const m = /^ack (\S+) (\d+)$/.exec(line);
      if (m) acks.add(`${m[1]}:${m[2]}`);
    }
    for (const w of waiters) w();
  });
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = (pred: (l: string[], a: Set<string>) => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not get there in ${timeoutMs} ms; stdout tail ${lines.slice(-3).join(' | ')}; stderr ${stderr}`)), timeoutMs);
      const check = () => {
        if (pred(lines, acks)) {
          clearTimeout(timer);
          resolve();
        }
      };
      waiters.push(check);
      void exited.then(check);
      check();
    });
  return { acks, lines, exited, waitFor };
}

async function statementsInStore(dataDir: string): Promise<Set<string>> {
  const present = new Set<string>();
  for await (const { record } of readStore(transcriptsDir(dataDir))) {
    if (record.k === 'statement') present.add(`${record.sid}:${(record.d as { st: number }).st}`);
  }
  return present;
}

describe('kill -9 during a write burst', () => {
  it('leaves a torn tail at worst, never tampering, and every acknowledged record intact', async () => {
    const run = startChild(process.execPath, ['--import', 'tsx', CHILD, 'burst', data.dir]);
    await run.waitFor((_, acks) => acks.size >= 150, 60_000);
    child?.kill('SIGKILL');
    const exit = await run.exited;
    expect(exit.signal).toBe('SIGKILL');
    const acked = new Set(run.acks); // everything printed before the kill

    const report = await verifyStore(data.dir);
    const kinds = report.findings.map((f) => f.kind);
    const torn = report.findings.find((f) => f.kind === 'torn-tail');
    process.stdout.write(`kill -9 after ${acked.size} acknowledged statements: ${report.records} records on disk, torn tail: ${torn ? torn.message : 'none'}\n`);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(kinds.every((k) => k === 'open-segment' || k === 'torn-tail')).toBe(true);
    const present = await statementsInStore(data.dir);
    const lost = [...acked].filter((a) => !present.has(a));
    expect(lost).toEqual([]);

    // Whether the kill landed inside a write is luck; when it did not, leave the partial frame a
    // short write would have left, so the torn-tail path below runs every time.
    const newest = segmentFiles(data.dir).pop() as string;
    if (!torn) {
      appendFileSync(newest, '{"seq":999999,"ts":"2026-01-01T00:00:00.000Z","prev":"00');
      const again = await verifyStore(data.dir);
      expect(again.ok).toBe(true);
      expect(again.findings.find((f) => f.kind === 'torn-tail')?.severity).toBe('warning');
    }
    const tornBytes = statSync(newest).size - (readFileSync(newest).lastIndexOf(0x0a) + 1);
    expect(tornBytes).toBeGreaterThan(0);

    // A new writer for the same instance takes over the stale lock and continues the chain.
    const store = await openStore(data.dir);
    await recordSession(store, 'after-crash', 2);
    await store.close();
    const after = await verifyStore(data.dir);
    expect(after.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    const recovered = after.findings.find((f) => f.kind === 'crash-recovered');
    expect(recovered?.message).toContain(`with a ${tornBytes}-byte partial record`);
    expect(recovered?.message).toContain('records the recovery');
  }, 120_000);
});

describe('a file that cannot grow (full disk)', () => {
  it('surfaces TranscriptWriteError, cuts the partial frame, and leaves a store that verifies', async () => {
    const limitKiB = 256;
    const run = startChild('bash', ['-c', `ulimit -f ${limitKiB} && exec "$0" --import tsx "$1" fill "$2"`, process.execPath, CHILD, data.dir]);
    await run.waitFor((lines) => lines.includes('closed'), 60_000);
    const exit = await run.exited;
    expect(exit.code).toBe(0);
    expect(run.lines).toContain('error EFBIG');
    expect(run.lines).toContain('after EFBIG');
    expect(run.lines).toContain('healthy false');

    const [segment] = segmentFiles(data.dir);
    expect(segment).toBeDefined();
    const size = statSync(segment as string).size;
    expect(size).toBeLessThanOrEqual(limitKiB * 1024);
    const bytes = readFileSync(segment as string);
    expect(bytes[bytes.length - 1]).toBe(0x0a); // the partial frame was cut back to a whole record

    const report = await verifyStore(data.dir);
    expect(report.findings.map((f) => f.kind)).toEqual(['open-segment']);
    const present = await statementsInStore(data.dir);
    expect([...run.acks].filter((a) => !present.has(a))).toEqual([]);
    expect(run.acks.size).toBeGreaterThan(10);

    const store = await openStore(data.dir);
    await recordSession(store, 'after-full', 1);
    await store.close();
    const after = await verifyStore(data.dir);
    expect(after.ok).toBe(true);
    expect(after.findings.map((f) => f.kind).sort()).toEqual(['crash-recovered']);
  }, 120_000);
});

describe('disk and head files', () => {
  it('names the transcript directory files as documented', async () => {
    const store = await openStore(data.dir);
    await recordSession(store, 'names', 1);
    await store.close();
    const names = segmentFiles(data.dir).map((p) => p.split('/').pop());
    expect(names[0]).toMatch(/^w1_00000001_\d{8}T\d{6}Z\.jsonl$/);
    expect(statSync(join(transcriptsDir(data.dir), 'w1.head.json')).isFile()).toBe(true);
    expect(statSync(join(data.dir, 'keys', 'transcript-ed25519.pem')).mode & 0o777).toBe(0o600);
  });
});

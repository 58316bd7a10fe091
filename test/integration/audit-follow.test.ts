// Follow mode: a replay of a live session sees records as they are written, across segment
// rotations, and stops when the session ends (library and `warden replay --follow`).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Recorder, TranscriptStore } from '../../src/audit/recorder.js';
import { followSession, loadSession, type TimelineEntry } from '../../src/audit/replay.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { openStore, PRINCIPAL, segmentFiles, tempDataDir, transcriptsDir } from '../unit/audit-support.js';

let data: { dir: string; cleanup: () => void };
let store: TranscriptStore | undefined;

beforeEach(() => {
  data = tempDataDir('warden-audit-follow-');
});
afterEach(async () => {
  await store?.close();
  store = undefined;
  data.cleanup();
});

async function start(rec: Recorder, sessionId: string): Promise<void> {
  await rec.sessionStart({ sessionId, protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
}

async function statement(rec: Recorder, i: number): Promise<void> {
  const st = await rec.statement({ text: `SELECT ${i} /* ${'x'.repeat(300)} */`, classification: { class: 'read', relations: [] }, verdict: 'allow' });
  await rec.result({ statementId: st, columns: [], rows: 1, bytes: 8, capture: { mode: 'none' } });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms))]);
}

describe('followSession', () => {
  it('sees new records of the session, across rotations, until it ends', async () => {
    store = await openStore(data.dir, { segmentMaxBytes: 4 * 1024 });
    const live = store.recorder();
    const other = store.recorder();
    await start(live, 'live-1');
    await start(other, 'other-1');
    await statement(live, 1);
    const replay = await loadSession(transcriptsDir(data.dir), 'live-1');
    expect(replay.ended).toBe(false);
    const seen: TimelineEntry[] = [];
    const following = followSession(transcriptsDir(data.dir), replay, { onEntry: (e) => seen.push(e), pollMs: 20 });
    for (let i = 2; i <= 12; i++) {
      await statement(live, i);
      await statement(other, i);
      await new Promise((r) => setTimeout(r, 5));
    }
    await live.sessionEnd('client closed');
    expect(await within(following, 10_000, 'follow')).toBe('ended');
    expect(segmentFiles(data.dir).length).toBeGreaterThan(3);
    expect(seen.filter((e) => e.kind === 'statement').map((e) => (e.kind === 'statement' ? e.statementId : 0))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(seen.filter((e) => e.kind === 'result')).toHaveLength(11);
    expect(seen[seen.length - 1]?.kind).toBe('session-end');
    expect(new Set(seen.map((e) => e.seq)).size).toBe(seen.length);
  });

  it('returns when aborted', async () => {
    store = await openStore(data.dir);
    const live = store.recorder();
    await start(live, 'idle-1');
    const replay = await loadSession(transcriptsDir(data.dir), 'idle-1');
    const abort = new AbortController();
    const following = followSession(transcriptsDir(data.dir), replay, { onEntry: () => undefined, signal: abort.signal, pollMs: 20 });
    setTimeout(() => abort.abort(), 100);
    expect(await within(following, 5000, 'follow')).toBe('aborted');
  });
});

describe('warden replay --follow', () => {
  it('prints the session, then each new record as a JSON line, and exits when the session ends', async () => {
    store = await openStore(data.dir, { fsync: 'each' });
    const live = store.recorder();
    await start(live, 'cli-live-1');
    await statement(live, 1);
    const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'src/cli/main.ts'), 'replay', 'cli-live', '--follow', '--format', 'json', '--data-dir', data.dir], {
      cwd: projectRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let buffered = '';
    let stderr = '';
    let wake: (() => void) | undefined;
    child.stdout.on('data', (c: Buffer) => {
      const parts = (buffered + c.toString()).split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.length > 0));
      wake?.();
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await within(
        new Promise<void>((resolve) => {
          wake = () => lines.length >= 4 && resolve();
          wake();
        }),
        30_000,
        'replay --follow start',
      );
      expect(JSON.parse(lines[0] as string)).toMatchObject({ session: { sessionId: 'cli-live-1' } });
      for (let i = 2; i <= 4; i++) await statement(live, i);
      await live.sessionEnd('client closed');
      expect(await within(exited, 30_000, 'replay --follow exit')).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(stderr).toBe('');
    const entries = lines.slice(1).map((l) => JSON.parse(l) as TimelineEntry);
    expect(entries.map((e) => e.kind)).toEqual(['session-start', 'statement', 'result', 'statement', 'result', 'statement', 'result', 'statement', 'result', 'session-end']);
  });
});

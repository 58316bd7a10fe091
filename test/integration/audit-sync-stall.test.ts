// A disk that stops answering: an fsync that never returns fails the transcript writer after
// transcripts.sync_stall_timeout, so that statements are refused (fail closed) instead of waiting
// for ever, and warden's stop does not hang on it. Played in a real warden process by stopping the
// threads of libuv's pool, where Node.js runs fsync (freeze-thread.ts: ptrace, as a debugger
// would): an fsync handed to them never returns, as on a disk that hangs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { canFreezeThreads, freezeThread, type FrozenThread } from '../helpers/freeze-thread.js';
import { childWardenYaml } from '../helpers/pg-env.js';
import { startWardenChild, type WardenChild } from '../helpers/warden-child.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** warden in a child process (its own libuv pool of one thread), logging on stderr; resolves once it listens. */
function startChild(transcripts: string): Promise<WardenChild> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-sync-stall-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, childWardenYaml(dir, [`transcripts: { enabled: true, ${transcripts} }`]).replace('log: { level: silent }', 'log: { level: info }'));
  return startWardenChild(file, (f) => cleanups.push(f), { UV_THREADPOOL_SIZE: '1' });
}

/**
 * Stops the thread of libuv's pool (the child runs with UV_THREADPOOL_SIZE=1) in process `pid`:
 * nothing handed to it returns until release. Node.js names no thread, so the pool's is found as
 * the one running warden's fsyncs, watched with strace while `traffic` makes the writer sync.
 */
async function freezePool(pid: number, traffic: () => Promise<unknown>): Promise<FrozenThread> {
  const strace = spawn(findClient('strace') as string, ['-f', '-qq', '-e', 'trace=fdatasync', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let seen = '';
  strace.stderr.on('data', (d: Buffer) => (seen += d.toString()));
  const straceExited = new Promise<void>((resolve) => strace.once('exit', () => resolve()));
  let tid: number | undefined;
  await until('an fsync off the main thread', 10_000, async () => {
    await traffic();
    for (const m of seen.matchAll(/\[pid\s+(\d+)\] fdatasync\(/g)) if (Number(m[1]) !== pid) tid = Number(m[1]);
    return tid !== undefined;
  });
  strace.kill('SIGINT'); // detaches: the thread can be stopped by another tracer
  await straceExited;
  const frozen = await freezeThread(tid as number);
  cleanups.push(() => frozen.release());
  return frozen;
}

async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const STALLED = /an fsync of \S+ has not returned for \d+ s \(sync_stall_timeout 1 s\): the disk is not answering/;

// strace finds the pool's thread; ptrace (python3's ctypes) stops it.
describe.skipIf(!canFreezeThreads || missingClient('strace'))('a disk that stops answering (an fsync that never returns)', () => {
  it.each([
    ['recorded in line, fsync each', 'fsync: each, recording_thread: false'],
    ['recorded on the recording thread, fsync interval', 'fsync: interval, fsync_interval: 100ms'],
  ])('%s: the writer fails after sync_stall_timeout, statements are refused, and warden still stops', async (_name, settings) => {
    const w = await startChild(`${settings}, sync_stall_timeout: 1s`);
    const client = new pg.Client({ host: '127.0.0.1', port: w.port, user: 'agent', password: w.token, database: 'shop', ssl: false });
    client.on('error', () => undefined);
    await client.connect();
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    const frozen = await freezePool(w.proc.pid as number, () => client.query('SELECT 1'));
    const frozenAt = Date.now();
    // Until the writer gives up, a statement may wait (fsync each) or run (the thread's lag);
    // from then on every statement is refused, with the transcripts' refusal.
    let refusal: { code?: string; message: string } | undefined;
    const deadline = Date.now() + 15_000;
    while (!refusal) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no statement was refused within 15 s of the disk stopping');
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        client.query('SELECT 2').then(
          () => 'ran',
          (err: { code?: string; message: string }) => void (refusal = err),
        ),
        new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), left))),
      ]);
      clearTimeout(timer);
      if (answered === 'waiting') throw new Error('a statement was still waiting 15 s after the disk stopped');
    }
    expect(refusal?.code).toBe('42501');
    expect(refusal?.message).toMatch(/transcript/);
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(1000);
    expect(w.stderr()).toMatch(STALLED);
    expect(w.stderr()).toContain('"code":"ESTALLED"');
    await expect(client.query('SELECT 3')).rejects.toMatchObject({ code: '42501' });
    await client.end().catch(() => undefined);

    // warden's stop does not wait for the fsync that will not return.
    w.proc.kill('SIGTERM');
    await until('warden to log "stopped"', 10_000, () => w.stderr().includes('"msg":"stopped"'));
    // The process itself exits once the pool's threads run again (Node.js joins them as it exits).
    await frozen.release();
    expect(await w.exited).toBe(0);
  });
});

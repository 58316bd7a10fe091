// The recording thread (src/pg/recording/) over a real warden process's life: a graceful stop
// (SIGTERM) with idle and busy sessions seals both chains and ends every session; a kill -9
// during a write burst leaves a torn tail at worst and a restart continues both chains; a second
// warden on the same data directory and instance is refused; the thread's chain id never
// collides with another instance's.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import type { TranscriptsConfig } from '../../src/config/types.js';
import { createLogger, type Logger } from '../../src/log.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { childWardenYaml, direct } from '../helpers/pg-env.js';
import { errorIn, rawLogin } from '../helpers/pg-raw.js';
import { run } from '../helpers/run.js';
import { recordingWarden } from '../helpers/recording-thread.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { startWardenChild, type WardenChild } from '../helpers/warden-child.js';
import type { RecordingThread } from '../../src/pg/recording/thread.js';
import { verifyStore } from '../unit/audit-support.js';

const TABLE = `rec_life_${process.pid}`;
const CLI = join(projectRoot(), 'src/cli/main.ts');
const STORE_UNWRITABLE = 'statement refused by warden policy rule "transcripts": the recording thread cannot write this session\'s transcript; reconnect to go on (new sessions are recorded in line)';
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  await direct(`CREATE TABLE ${TABLE} (n int, pad text)`);
  await direct(`GRANT ALL ON ${TABLE} TO PUBLIC`);
});
afterAll(async () => {
  await direct(`DROP TABLE IF EXISTS ${TABLE}`);
});
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

type Child = WardenChild;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-rec-life-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes warden's configuration into `dir` (recording thread on, fsync interval) and returns its path. */
function configIn(dir: string, transcripts: string, extra: string[] = []): string {
  const file = join(dir, 'warden.yaml');
  const yaml = childWardenYaml(dir, [`transcripts: { enabled: true, fsync: interval, capture: all, ${transcripts} }`, ...extra])
.replace('log: { level: silent }', 'log: { level: info }');
  writeFileSync(file, yaml);
  return file;
}

/** warden in a child process, logging on stderr; resolves once it listens. */
function startChild(file: string): Promise<Child> {
  return startWardenChild(file, (f) => cleanups.push(f));
}

async function connect(port: number, token: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', password: token, database: 'shop', ssl: false });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Per instance of the store: session ids that have a session-start, and those with a session-end. */
async function sessionsIn(dataDir: string): Promise<Map<string, { started: Set<string>; ended: Set<string> }>> {
  const out = new Map<string, { started: Set<string>; ended: Set<string> }>();
  for await (const { record, instance } of readStore(join(dataDir, 'transcripts'))) {
    const s = out.get(instance) ?? { started: new Set<string>(), ended: new Set<string>() };
    out.set(instance, s);
    const id = record.sid;
    if (record.k === 'session-start' && id) s.started.add(id);
    if (record.k === 'session-end' && id) s.ended.add(id);
  }
  return out;
}

describe('graceful stop (SIGTERM) with sessions recorded on the thread', () => {
  it('ends every session in the transcript, seals both chains and exits', async () => {
    const dir = tempDir();
    const file = configIn(dir, 'instance_id: life1', ['sessions: { shutdown_grace: 1s }']);
    const w = await startChild(file);
    const token = w.token;
    const idle = await connect(w.port, token);
    await idle.query('SELECT 1');
    const busy = await connect(w.port, token);
    const sleeping = busy.query('SELECT pg_sleep(20)').then(() => 'done', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await sleeping).not.toBe('done');
    const sessions = await sessionsIn(dir);
    const rec = sessions.get('life1.rec');
    expect(rec?.started.size).toBe(2);
    expect([...(rec?.started ?? [])].filter((id) => !rec?.ended.has(id))).toEqual([]);
    const texts: string[] = [];
    for await (const { record, instance } of readStore(join(dir, 'transcripts'))) {
      if (record.k === 'statement' && instance === 'life1.rec') texts.push((record.d as { text: string }).text);
    }
    expect(texts.sort()).toEqual(['SELECT 1', 'SELECT pg_sleep(20)']);
    const report = await verifyStore(dir);
    expect(report.findings).toEqual([]);
    await idle.end().catch(() => undefined);
    await busy.end().catch(() => undefined);
  });
});

describe('kill -9 of warden during a write burst recorded on the thread', () => {
  it('leaves a torn tail at worst, and a restart continues both chains', async () => {
    const dir = tempDir();
    // The thread may fall up to recording_thread_max_lag behind (at background priority, on cores
    // busy with the rest of the test run): the records of that long can be lost to a crash.
    const maxLagMs = 250;
    const file = configIn(dir, `instance_id: kill1, recording_thread_max_lag: ${maxLagMs}ms`);
    const w = await startChild(file);
    let acked = 0;
    const ackedAt = new Map<number, number>();
    const burst = async (k: number): Promise<void> => {
      const c = await connect(w.port, w.token);
      for (let i = 0; ; i++) {
        const ok = await c.query(`INSERT INTO ${TABLE} VALUES ($1, repeat('v', ${k === 0 ? 200_000 : 10})) RETURNING n, pad`, [k * 100_000 + i]).then(() => true, () => false);
        if (!ok) return;
        acked++;
        ackedAt.set(k * 100_000 + i, Date.now());
      }
    };
    const sessions = [0, 1, 2, 3].map(burst);
    // The kill comes once the thread has written the four sessions' starts (a kill -9 cannot lose
    // what is in the page cache). On busy cores a burst of 300 acks can finish inside the thread's
    // lag limit, and the crash may then lose every record, starts included, as the limit allows.
    const startsWritten = async (): Promise<boolean> => ((await sessionsIn(dir)).get('kill1.rec')?.started.size ?? 0) >= 4;
    while (acked < 300 || !(await startsWritten())) await new Promise((r) => setTimeout(r, 5));
    const killedAt = Date.now();
    w.proc.kill('SIGKILL');
    await Promise.all(sessions);
    const recorded = new Set<number>();
    for await (const { record } of readStore(join(dir, 'transcripts'))) {
      const params = record.k === 'statement' ? (record.d as { params?: { value: string }[] }).params : undefined;
      if (params?.[0]) recorded.add(Number(params[0].value));
    }
    // fsync interval: a crash loses the records of the last few milliseconds (up to the thread's
    // lag limit when the cores are busy), not more.
    const lost = [...ackedAt].filter(([n]) => !recorded.has(n)).map(([, at]) => killedAt - at);
    expect(Math.max(0, ...lost)).toBeLessThan(maxLagMs + 500);
    const report = await verifyStore(dir);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(report.findings.filter((f) => f.kind !== 'open-segment' && f.kind !== 'torn-tail')).toEqual([]);

    const again = await startChild(file);
    const c = await connect(again.port, again.token);
    await c.query('SELECT 1');
    await c.end();
    again.proc.kill('SIGTERM');
    expect(await again.exited).toBe(0);
    const after = await verifyStore(dir);
    // Both chains continue: each records the recovery of its unsealed segment.
    expect(after.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(after.findings.filter((f) => f.kind === 'crash-recovered').map((f) => f.instance).sort()).toEqual(['kill1', 'kill1.rec']);
    expect((await sessionsIn(dir)).get('kill1.rec')?.started.size).toBe(5);
  });
});

describe('two wardens on one data directory', () => {
  it('refuses a second warden with the same instance id, naming the instance', async () => {
    const dir = tempDir();
    const file = configIn(dir, 'instance_id: same1');
    await startChild(file);
    const second = await startChild(file).then(() => 'started', (e: Error) => e.message);
    expect(second).toContain("transcript instance 'same1' already has a writer");
  });

  it('gives instances whose ids differ only at the end of 64 characters distinct recording-thread chains', async () => {
    const dir = tempDir();
    const stem = 'w'.repeat(60);
    const a = await startChild(configIn(dir, `instance_id: ${stem}-aaa`));
    const b = await startChild(configIn(dir, `instance_id: ${stem}-bbb`));
    for (const w of [a, b]) {
      const c = await connect(w.port, w.token);
      await c.query('SELECT 1');
      await c.end();
      w.proc.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    }
    const threads = [...(await sessionsIn(dir))].filter(([, v]) => v.started.size > 0).map(([k]) => k);
    expect(threads).toHaveLength(2);
    for (const id of threads) expect(id).toMatch(/^w{51}-[0-9a-f]{8}\.rec$/);
    expect((await verifyStore(dir)).findings).toEqual([]);
  });

  it('refuses an instance_id that ends in .rec (the name of an instance\'s recording-thread chain), and says which ids are valid', async () => {
    const dir = tempDir();
    const bad = await run(process.execPath, ['--import', 'tsx', CLI, 'check-config', '--config', configIn(dir, 'instance_id: w1.rec')], { cwd: projectRoot() });
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toMatch(/warden\.yaml:10:\d+: transcripts\.instance_id: may not end in "\.rec"/);
    const underscore = await run(process.execPath, ['--import', 'tsx', CLI, 'check-config', '--config', configIn(dir, 'instance_id: w_1')], { cwd: projectRoot() });
    expect(underscore.stdout + underscore.stderr).toMatch(/transcripts\.instance_id: must be 1 to 64 letters, digits, "-" and "\."/);
    const notBoolean = await run(process.execPath, ['--import', 'tsx', CLI, 'check-config', '--config', configIn(dir, 'recording_thread: sometimes')], { cwd: projectRoot() });
    expect(notBoolean.stdout + notBoolean.stderr).toMatch(/warden\.yaml:10:\d+: transcripts\.recording_thread: must be true or false, got "sometimes"/);
  });
});

async function tlsClient(w: TestWarden): Promise<pg.Client> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Result row counts recorded, per session id. */
async function resultRows(dataDir: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for await (const { record } of readStore(join(dataDir, 'transcripts'))) {
    const d = record.d as { result?: { rows?: number }; rows?: number };
    const rows = record.k === 'result' ? d.rows : record.k === 'statement' ? d.result?.rows : undefined;
    if (rows === undefined || !record.sid) continue;
    out.set(record.sid, [...(out.get(record.sid) ?? []), rows]);
  }
  return out;
}

/** A warden recording on the thread (instance w1) in `dataDir`, stopped after the test. */
async function threadWarden(dataDir: string, transcripts: Partial<TranscriptsConfig> = {}, logger?: Logger): Promise<TestWarden> {
  const w = await startTestWarden({
    dataDir,
    ...(logger ? { logger } : {}),
    mutate: (config) => void (config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'w1', ...transcripts }),
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= w.stop());
  cleanups.push(stop);
  return { ...w, stop };
}

const BIG = "SELECT n, repeat('x', 1000) AS pad FROM generate_series(1, 3000) AS n";

describe('backpressure with many sessions', () => {
  it('50 sessions with large results under a small max_buffered_bytes: no deadlock, bounded backlog, every row recorded', async () => {
    const w = await recordingWarden(true, cleanups, { maxBufferedBytes: 256 * 1024 });
    const thread = w.warden.recordingThread as RecordingThread;
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, thread.pendingBytes)), 1);
    const clients = await Promise.all(Array.from({ length: 50 }, () => tlsClient(w)));
    const counts = await Promise.all(clients.map(async (c) => (await c.query(BIG)).rowCount));
    clearInterval(sampler);
    expect(counts).toEqual(Array(50).fill(3000));
    expect(thread.pauses).toBeGreaterThan(0);
    // The backlog stays near the limit (a few reads over), not one read over per session (3 MiB).
    expect(most).toBeLessThan(256 * 1024 + 4 * 64 * 1024);
    await Promise.all(clients.map((c) => c.end()));
    await w.stop();
    const rows = await resultRows(w.dataDir);
    expect([...rows.values()].filter((r) => r.includes(3000))).toHaveLength(50);
  });
});

describe('sessions paused for the thread', () => {
  async function pausedSession(w: TestWarden): Promise<{ c: pg.Client; result: Promise<string> }> {
    const thread = w.warden.recordingThread as RecordingThread;
    const c = await tlsClient(w);
    const before = thread.pauses;
    const result = c.query("SELECT n, repeat('x', 1000) AS pad FROM generate_series(1, 50000) AS n").then((r) => `rows ${r.rowCount}`, (e: Error) => e.message);
    while (thread.pauses === before) await new Promise((r) => setTimeout(r, 2));
    return { c, result };
  }

  it('a client that vanishes while paused: its session ends in the transcript and nothing stays pending', async () => {
    const w = await recordingWarden(true, cleanups, { maxBufferedBytes: 64 * 1024 });
    const thread = w.warden.recordingThread as RecordingThread;
    const { c, result } = await pausedSession(w);
    (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream.destroy();
    expect(await result).toBe('Connection terminated unexpectedly');
    const until = Date.now() + 10_000;
    while ((w.warden.pgListener?.openSessions ?? 0) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(w.warden.pgListener?.openSessions).toBe(0);
    const fresh = await tlsClient(w);
    expect((await fresh.query('SELECT 5 AS five')).rows).toEqual([{ five: 5 }]);
    await fresh.end();
    while (thread.pendingBytes > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(thread.pendingBytes).toBe(0);
    await w.stop();
    const sessions = (await sessionsIn(w.dataDir)).get('w1.rec');
    expect(sessions?.started.size).toBe(2);
    expect(sessions?.ended.size).toBe(2);
  });

  it('a thread that fails while a session is paused for it: the session is let go, not left hanging', async () => {
    const w = await recordingWarden(true, cleanups, { maxBufferedBytes: 64 * 1024 });
    const { result } = await pausedSession(w);
    await (w.warden.recordingThread as unknown as { worker: Worker }).worker.terminate();
    const t0 = Date.now();
    // The statement that was running ends (its rows stream on, as in line) or the session is closed.
    expect(await result).toMatch(/^rows 50000$|^warden cannot record this session any more/);
    expect(Date.now() - t0).toBeLessThan(5000);
    const fresh = await tlsClient(w);
    expect((await fresh.query('SELECT 6 AS six')).rows).toEqual([{ six: 6 }]);
    await fresh.end();
  });
});

describe('a thread that fails while its session is busy', () => {
  it('runs nothing the client sends after the failure: the statements wait for the idle point and are refused (42501)', async () => {
    const w = await recordingWarden(true, cleanups);
    const raw = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
    cleanups.push(() => void raw.socket.destroy());
    raw.socket.write(encodeQuery('SELECT pg_sleep(1)'));
    await new Promise((r) => setTimeout(r, 200));
    await (w.warden.recordingThread as unknown as { worker: Worker }).worker.terminate();
    await new Promise((r) => setTimeout(r, 100));
    raw.socket.write(encodeQuery(`INSERT INTO ${TABLE} VALUES (424242, 'after the failure')`));
    const first = await raw.reader.until(Backend.readyForQuery);
    expect(errorIn(first)).toBeUndefined();
    const second = await raw.reader.until(Backend.readyForQuery);
    expect(errorIn(second)).toMatchObject({ code: '42501' });
    expect((await direct(`SELECT count(*)::int AS n FROM ${TABLE} WHERE n = 424242`)).rows).toEqual([{ n: 0 }]);
  });
});

describe('on_write_error: continue with a thread that fails', () => {
  it('its sessions go on (unrecorded), the log says so, and new sessions are recorded in line', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _enc, done) => void (lines.push(chunk.toString()), done()) }) });
    const w = await threadWarden(tempDir(), { onWriteError: 'continue' }, logger);
    const c = await tlsClient(w);
    await c.query('SELECT 1');
    await (w.warden.recordingThread as unknown as { worker: Worker }).worker.terminate();
    await new Promise((r) => setTimeout(r, 100));
    expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    const fresh = await tlsClient(w);
    expect((await fresh.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    await fresh.end();
    await c.end();
    await w.stop();
    const log = lines.join('');
    expect(log).toContain('the recording thread cannot write transcripts: its sessions continue unrecorded (on_write_error: continue)');
    expect(log).toContain('transcript unavailable; session continues unrecorded (on_write_error: continue)');
    // The fresh session was recorded in line.
    const inline = (await sessionsIn(w.dataDir)).get('w1');
    expect([inline?.started.size, inline?.ended.size]).toEqual([1, 1]);
  });
});

describe('a full disk under the recording thread', () => {
  let mnt: string | undefined;
  afterEach(() => {
    if (!mnt) return;
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
    mnt = undefined;
  });

  function mountFull(): string {
    mnt = mkdtempSync(join(tmpdir(), 'warden-rec-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    return join(mnt, 'data');
  }

  /** Large results (capture all: up to 256 KiB recorded each) until `done` says so or 40 ran. */
  async function fill(c: pg.Client, done: (outcome: string) => boolean): Promise<string[]> {
    const outcomes: string[] = [];
    for (let i = 0; i < 40 && !done(outcomes.at(-1) ?? ''); i++) {
      outcomes.push(await c.query(`SELECT n, md5(n::text) || md5('${i}') AS h FROM generate_series(1, 5000) AS n`).then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`));
      await new Promise((r) => setTimeout(r, 30));
    }
    return outcomes;
  }

  it('refuses the session once the thread cannot write, and warden still stops promptly', async () => {
    const dataDir = mountFull();
    const w = await threadWarden(dataDir);
    expect(w.warden.recordingThread).toBeDefined();
    const c = await tlsClient(w);
    const outcomes = await fill(c, (o) => o.startsWith('42501'));
    expect(outcomes[0]).toBe('ok');
    expect(outcomes.at(-1)).toBe(`42501: ${STORE_UNWRITABLE}`);
    expect(w.warden.recordingThread?.health()).toMatchObject({ healthy: false, code: 'ENOSPC' });
    // A new session is recorded in line (the little room left takes its small records).
    const fresh = await tlsClient(w);
    expect((await fresh.query('SELECT 7 AS seven')).rows).toEqual([{ seven: 7 }]);
    await fresh.end();
    const t0 = Date.now();
    await w.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await sessionsIn(dataDir)).get('w1')?.started.size).toBe(1);
  });

  it('on_write_error: continue: the session goes on past the full disk and the log says it is unrecorded', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _enc, done) => void (lines.push(chunk.toString()), done()) }) });
    const w = await threadWarden(mountFull(), { onWriteError: 'continue' }, logger);
    const c = await tlsClient(w);
    const outcomes = await fill(c, () => w.warden.recordingThread?.healthy === false);
    expect(w.warden.recordingThread?.health()).toMatchObject({ healthy: false, code: 'ENOSPC' });
    outcomes.push(...(await fill(c, (o) => o !== ''))); // one more, after the failure
    expect(outcomes.every((o) => o === 'ok')).toBe(true);
    expect(lines.join('')).toContain('the recording thread cannot write transcripts: its sessions continue unrecorded (on_write_error: continue)');
    const t0 = Date.now();
    await w.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('fsync each', () => {
  it('never uses the thread: sessions are recorded in line', async () => {
    const w = await threadWarden(tempDir(), { fsync: 'each', recordingThread: true });
    expect(w.warden.recordingThread).toBeUndefined();
    const c = await tlsClient(w);
    await c.query('SELECT 1');
    await c.end();
    await w.stop();
    expect([...(await sessionsIn(w.dataDir))].map(([instance, s]) => [instance, s.started.size])).toEqual([['w1', 1]]);
  });
});

describe('a second SIGTERM', () => {
  it('closes the sessions still open at once, as `warden start --help` says, instead of waiting out shutdown_grace', async () => {
    const dir = tempDir();
    const file = configIn(dir, 'instance_id: twice1', ['sessions: { shutdown_grace: 60s }']);
    const w = await startChild(file);
    const busy = await connect(w.port, w.token);
    const sleeping = busy.query('SELECT pg_sleep(60)').then(() => 'done', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 300));
    w.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await sleeping).toBe('terminating connection because warden is shutting down');
    const rec = (await sessionsIn(dir)).get('twice1.rec');
    expect([rec?.started.size, rec?.ended.size]).toEqual([1, 1]);
  });
});

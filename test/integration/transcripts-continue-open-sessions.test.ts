// `transcripts.on_write_error: continue` with sessions recorded in line (recording_thread off):
// the transcript directory is a 2 MiB tmpfs that fills while sessions are open. Sessions that were
// already open when the store failed go on unrecorded, as new sessions do: nothing is refused
// because of the store, and the log says so once per session. (They used to refuse every
// statement with 42501 "the transcript store cannot be written", although the log said warden was
// continuing unrecorded: only new sessions ran.) PostgreSQL (simple and extended protocol) and
// SQL Server (batch and RPC), under fsync `interval` and `each`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import type { WardenConfig } from '../../src/config/types.js';
import { createLogger, type Logger } from '../../src/log.js';
import { direct } from '../helpers/pg-env.js';
import { smallDisk } from '../helpers/small-disk.js';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES } from '../helpers/tds.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const disk = smallDisk('continue_open');
const TABLE = disk.table;
const PAD = 'x'.repeat(20_000);
const STORE_DOWN = 'transcripts cannot be written: continuing unrecorded (on_write_error: continue)';
const SESSION_UNRECORDED = 'transcript unavailable; session continues unrecorded (on_write_error: continue)';

/** Transcripts in line (no recording thread), failing open. */
const continueIn = (fsync: 'each' | 'interval') => (config: WardenConfig): void => {
  config.transcripts = { ...defaultTranscripts(config.dataDir), fsync, recordingThread: false, onWriteError: 'continue' };
};

interface LogLine {
  level: number;
  msg: string;
  session?: string;
}

/** A logger at info level whose lines the test reads. */
function capturedLog(): { logger: Logger; lines: () => LogLine[] } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _enc, done) => void (raw.push(chunk.toString()), done()) }) });
  const lines = (): LogLine[] =>
    raw
      .join('')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LogLine);
  return { logger, lines };
}

const storeDown = (lines: () => LogLine[]): boolean => lines().some((l) => l.msg === STORE_DOWN);

/** The sessions that logged they go on unrecorded, and how many times each did. */
function unrecordedSessions(lines: () => LogLine[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of lines()) if (l.msg === SESSION_UNRECORDED && l.session) out.set(l.session, (out.get(l.session) ?? 0) + 1);
  return out;
}

/** Fills what is left of the tmpfs. */
function fillDisk(): void {
  try {
    writeFileSync(join(disk.mnt, 'filler'), Buffer.alloc(4 * 1024 * 1024));
  } catch {
    // ENOSPC once the tmpfs is full: what was meant.
  }
}

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: Error & { code?: string; number?: number }) => `${e.code ?? e.number ?? e.name}: ${e.message}`,
  );

async function pgClient(w: TestWarden): Promise<pg.Client> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

describe.each(['interval', 'each'] as const)('PostgreSQL in line, fsync %s, on_write_error: continue', (fsync) => {
  it('sessions open when the disk fills go on unrecorded; nothing is refused because of the store', async () => {
    const log = capturedLog();
    const w = await startTestWarden({ dataDir: disk.dataDir, logger: log.logger, mutate: continueIn(fsync) });
    const clients: pg.Client[] = [];
    try {
      // `busy` runs statements through the failure; `quiet` is open but idle while the store fails.
      const busy = await pgClient(w);
      const quiet = await pgClient(w);
      clients.push(busy, quiet);
      expect(await outcome(busy.query('SELECT 1'))).toBe('ok');
      expect(await outcome(quiet.query('SELECT 1'))).toBe('ok');

      fillDisk();
      const outcomes: string[] = [];
      for (let i = 0; i < 200 && !storeDown(log.lines); i++) outcomes.push(await outcome(busy.query(`INSERT INTO ${TABLE} VALUES (${i}, '${PAD}')`)));
      expect(storeDown(log.lines)).toBe(true);
      // After the failure, in the same session: simple and extended protocol.
      for (let i = 1000; i < 1003; i++) outcomes.push(await outcome(busy.query(`INSERT INTO ${TABLE} VALUES (${i}, 'after')`)));
      outcomes.push(await outcome(busy.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [1003, 'after'])));
      expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
      expect((await busy.query('SELECT $1::int AS n', [7])).rows).toEqual([{ n: 7 }]);
      // The session that was idle at the failure goes on too.
      expect((await quiet.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      expect((await quiet.query('SELECT $1::int AS n', [3])).rows).toEqual([{ n: 3 }]);
      // And a new session, as before.
      const fresh = await pgClient(w);
      clients.push(fresh);
      expect((await fresh.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);

      // What the sessions ran after the failure really ran.
      const after = await direct(`SELECT n FROM ${TABLE} WHERE n >= 1000 ORDER BY n`);
      expect(after.rows.map((r: { n: number }) => r.n)).toEqual([1000, 1001, 1002, 1003]);

      // The store's failure is logged once, and each session says once that it goes on unrecorded.
      const lines = log.lines();
      expect(lines.filter((l) => l.msg === STORE_DOWN).length).toBe(1);
      const sessions = unrecordedSessions(log.lines);
      expect(sessions.size).toBe(3);
      expect([...sessions.values()]).toEqual([1, 1, 1]);
      expect(lines.filter((l) => l.msg === SESSION_UNRECORDED).every((l) => l.level >= 50)).toBe(true);
      // Not one error per statement that found the store failed.
      expect(lines.filter((l) => l.msg.startsWith('transcript write failed'))).toEqual([]);
    } finally {
      for (const c of clients) await c.end().catch(() => undefined);
      await w.stop();
    }
  });
});

describe.each(['interval', 'each'] as const)('SQL Server, fsync %s, on_write_error: continue', (fsync) => {
  it('a session open when the disk fills goes on unrecorded; nothing is refused because of the store', async () => {
    const log = capturedLog();
    const h = await startTdsHarness({ dataDir: disk.dataDir, logger: log.logger, mutate: continueIn(fsync) });
    try {
      const cfg = async (): Promise<ReturnType<typeof tediousConfig>> => tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } });
      const c = await connectTedious(await cfg());
      c.on('error', () => undefined);
      expect(await outcome(query(c, 'SELECT 1 AS n'))).toBe('ok');

      fillDisk();
      const outcomes: string[] = [];
      for (let i = 0; i < 200 && !storeDown(log.lines); i++) outcomes.push(await outcome(query(c, `SELECT ${i} AS n, '${PAD}' AS pad`)));
      expect(storeDown(log.lines)).toBe(true);
      for (let i = 0; i < 3; i++) outcomes.push(await outcome(query(c, `SELECT ${1000 + i} AS n`)));
      outcomes.push(await outcome(query(c, 'SELECT @n AS n', [['n', TYPES.Int, 7]])));
      expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
      expect((await query(c, 'SELECT 5 AS five')).sets[0]?.rows).toEqual([[5]]);

      const fresh = await connectTedious(await cfg());
      fresh.on('error', () => undefined);
      expect((await query(fresh, 'SELECT 6 AS six')).sets[0]?.rows).toEqual([[6]]);
      await closeTedious(fresh);
      await closeTedious(c);

      const lines = log.lines();
      expect(lines.filter((l) => l.msg === STORE_DOWN).length).toBe(1);
      const sessions = unrecordedSessions(log.lines);
      expect(sessions.size).toBe(2);
      expect([...sessions.values()]).toEqual([1, 1]);
      expect(lines.filter((l) => l.msg.startsWith('transcript write failed'))).toEqual([]);
    } finally {
      await h.stop();
    }
  });
});

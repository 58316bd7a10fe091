// Transcripts of the recording thread (src/pg/recording/) against the statement flow in line: a
// warden with the thread on or off, and what its transcript says without what legitimately
// differs between two runs of the same script.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import type { TranscriptsConfig, WardenConfig } from '../../src/config/types.js';
import { verifyStore } from '../unit/audit-support.js';
import { findClient } from './clients.js';
import { run } from './run.js';
import { startTestWarden, type TestWarden } from './warden.js';

/**
 * A warden recording every PostgreSQL session on the thread (`thread`), as wire records
 * (`'wire'`, transcripts.wire) or in line, capture `all` unless `transcripts` says otherwise
 * (wire records are not written under `all`), instance `w1`. Its stop and data directory removal
 * are pushed onto `cleanups`; stop() may also be called by the test (once is enough).
 */
export async function recordingWarden(
  thread: boolean | 'wire',
  cleanups: (() => Promise<void> | void)[],
  opts: { maxBufferedBytes?: number; transcripts?: Partial<TranscriptsConfig>; mutate?: (config: WardenConfig) => void } = {},
): Promise<TestWarden> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-thread-'));
  const w = await startTestWarden({
    dataDir,
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', recordingThread: thread === true, wire: thread === 'wire', instanceId: 'w1', ...opts.transcripts };
      if (opts.maxBufferedBytes) config.sessions.maxBufferedBytes = opts.maxBufferedBytes;
      opts.mutate?.(config);
    },
  });
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= w.stop());
  cleanups.push(stop);
  return { ...w, stop };
}

/**
 * node-postgres and psql (when installed): simple and extended statements, prepared ones, errors,
 * a pipeline, `rows` rows (of `pad` bytes each) in a transaction, an empty query, COPY both ways.
 * Returns what the clients got.
 */
export async function mixedScenario(w: TestWarden, rows: number, pad = 0): Promise<unknown> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  await c.connect();
  const out: unknown[] = [];
  out.push(((await c.query("SELECT 1 AS a; SELECT 'x' AS b")) as unknown as pg.QueryResult[]).map((r) => r.rows));
  out.push((await c.query('SELECT $1::int + $2::int AS s, $3::text AS t', [1, 2, 'three'])).rows);
  out.push((await c.query({ name: 'by-id', text: 'SELECT id, full_name FROM customers WHERE id = $1', values: [3] })).rows);
  out.push((await c.query({ name: 'by-id', text: 'SELECT id, full_name FROM customers WHERE id = $1', values: [4] })).rows);
  out.push(await c.query('SELECT 1/0').catch((e: pg.DatabaseError) => e.code));
  const settled = await Promise.allSettled([c.query('SELECT $1::int AS a', [1]), c.query('SELECT * FROM customers WHERE id = $1', ['x']), c.query('SELECT count(*) FROM orders')]);
  out.push(settled.map((s) => (s.status === 'fulfilled' ? s.value.rows : (s.reason as pg.DatabaseError).code)));
  await c.query('BEGIN');
  out.push((await c.query(pad > 0 ? `SELECT id, repeat('y', ${pad}) AS pad FROM generate_series(1, ${rows}) AS id` : `SELECT id FROM generate_series(1, ${rows}) AS id`)).rowCount);
  await c.query('ROLLBACK');
  out.push((await c.query('')).rowCount);
  await c.end();
  const psql = findClient('psql');
  if (psql) {
    const script = ['CREATE TEMP TABLE t (id int, name text);', '\\copy t FROM STDIN', '1\tone', '2\ttwo', '\\.', '\\copy t TO STDOUT', 'SELECT * FROM t ORDER BY id;', ''].join('\n');
    const r = await run(psql, ['-X', '-d', 'shop', '-f', '-'], { env: { PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: await w.token(), PGSSLMODE: 'require' }, input: script, timeoutMs: 30_000 });
    out.push(r.stdout);
  }
  return out;
}

const KINDS = ['session-start', 'statement', 'result', 'session-end'];

/**
 * What a transcript says of its sessions, without what differs between two runs of the same
 * script: record times and durations, instance, client port, the dev issuer's principal fields.
 * Records are grouped by session (in the order sessions start) and by kind within a session:
 * how a pipeline's statement records interleave with its results' depends on when the server's
 * answers arrived, and so does the interleaving of concurrent sessions.
 */
export async function transcriptOf(dataDir: string): Promise<{ instances: Set<string>; records: unknown[] }> {
  const instances = new Set<string>();
  const bySession = new Map<string, { k: string; d: Record<string, any> }[]>();
  for await (const { record, instance } of readStore(join(dataDir, 'transcripts'))) {
    if (!KINDS.includes(record.k)) continue;
    instances.add(instance);
    const d = structuredClone(record.d) as Record<string, any>;
    delete d.ms;
    delete d.instance;
    if (record.k === 'session-start') {
      delete d.client.port;
      // Each warden has its own dev issuer (its address and the object id it derives).
      delete d.principal.tokenExpiresAt;
      delete d.principal.issuer;
      delete d.principal.objectId;
    }
    const sid = record.sid ?? '';
    let list = bySession.get(sid);
    if (!list) bySession.set(sid, (list = []));
    list.push({ k: record.k, d });
  }
  const records = [...bySession.values()].flatMap((list) => KINDS.flatMap((k) => list.filter((r) => r.k === k)));
  return { instances, records };
}

/** Clients that name statements at random (postgres.js): names become s1, s2 … in order of first use. */
function renameStatements(records: unknown[]): void {
  const names = new Map<string, string>();
  for (const r of records as { d: { name?: string } }[]) {
    const name = r.d.name;
    if (name === undefined) continue;
    const renamed = names.get(name) ?? `s${names.size + 1}`;
    names.set(name, renamed);
    r.d.name = renamed;
  }
}

/**
 * Stops both wardens and expects the thread's transcript (instance w1.rec only; with `wire`, the
 * wire records of w1, as readers decode them) to say what the in-line one (w1 only) says, and its
 * chain to verify. Returns the thread's records.
 */
export async function expectSameTranscripts(inline: TestWarden, threaded: TestWarden, opts: { randomNames?: boolean; wire?: boolean } = {}): Promise<any[]> {
  await inline.stop();
  await threaded.stop();
  const [ta, tb] = [await transcriptOf(inline.dataDir), await transcriptOf(threaded.dataDir)];
  if (opts.randomNames) for (const t of [ta, tb]) renameStatements(t.records);
  expect(ta.instances).toEqual(new Set(['w1']));
  // Wire records are in warden's own chain.
  expect(tb.instances).toEqual(new Set([opts.wire ? 'w1' : 'w1.rec']));
  expect(tb.records).toEqual(ta.records);
  const report = await verifyStore(threaded.dataDir);
  expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  return tb.records as any[];
}

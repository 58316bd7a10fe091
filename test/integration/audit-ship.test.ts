// Shipping transcripts to a shared PostgreSQL store (a fresh database for this file): two instances
// with their own data directories ship to one database; listing, replay and the access review read
// every instance's sessions from it; the shipped copy verifies, and verify names the row after an
// UPDATE, a DELETE or two swapped seqs; the shipper catches up after the database was unreachable
// (a TCP forwarder cut and restored) and after the writer restarted; an instance id reused by
// another chain stops shipping instead of mixing chains. Local verify passes throughout.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wardenCli, type CliResult } from '../helpers/warden-cli.js';
import { Metrics } from '../../src/admin/metrics.js';
import { listSessions, type SessionSummary } from '../../src/audit/reader.js';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { loadSession, replayJson } from '../../src/audit/replay.js';
import { buildReview } from '../../src/audit/review.js';
import { TranscriptShipper, type ShipperOptions } from '../../src/audit/ship.js';
import type { TranscriptShipConfig } from '../../src/audit/ship-config.js';
import { PostgresTranscriptStore, ShipConflictError } from '../../src/audit/store-postgres.js';
import { verifyStore, type StoreVerifyReport } from '../../src/audit/store-postgres-verify.js';
import { testPostgres } from '../helpers/pg-env.js';
import { eventually, forwarder, type Forwarder } from '../unit/approvals-support.js';
import { errorKinds, openStore, PRINCIPAL, readLinesOf, recordSession, segmentFiles, tempDataDir, transcriptsDir, verifyStore as verifyLocal } from '../unit/audit-support.js';

const DATABASE = `warden_ship_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const SCHEMA = 'warden';

function url(database: string, port?: number): string {
  const p = testPostgres();
  return `postgres://postgres:${encodeURIComponent(p.superuserPassword)}@${p.host}:${port ?? p.port}/${database}`;
}

function shipConfig(port?: number): TranscriptShipConfig {
  return { url: url(DATABASE, port), schema: SCHEMA, timeout: 1500, batch: 7, intervalMs: 50 };
}

async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = [], database = DATABASE, connectionString = url(database)): Promise<T[]> {
  const c = new pg.Client({ connectionString });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

const cleanups: Array<() => void | Promise<void>> = [];
/** Roles made by this file, dropped once the database is gone. */
const roles: string[] = [];

beforeAll(async () => {
  await sql(`CREATE DATABASE ${DATABASE}`, [], 'postgres');
});

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await sql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`, [], 'postgres');
  for (const role of roles) await sql(`DROP ROLE IF EXISTS ${role}`, [], 'postgres');
});

/** A data directory with a transcript store of `instance` (checkpoints every 10 records). */
async function instance(id: string, dataDir?: string): Promise<{ dir: string; store: TranscriptStore }> {
  let dir = dataDir;
  if (dir === undefined) {
    const temp = tempDataDir(`warden-ship-${id}-`);
    cleanups.push(temp.cleanup);
    dir = temp.dir;
  }
  const store = await openStore(dir, { instanceId: id });
  return { dir, store };
}

function ship(shared: PostgresTranscriptStore, i: { dir: string; store: TranscriptStore }, extra: Partial<ShipperOptions> = {}): TranscriptShipper {
  const shipper = TranscriptShipper.start({
    store: shared,
    dir: transcriptsDir(i.dir),
    instance: i.store.writer.instance,
    keyId: i.store.keyId,
    publicKeyFile: i.store.publicKeyFile,
    batch: 7,
    intervalMs: 50,
    localSeq: () => i.store.health().seq,
    retryMinMs: 50,
    retryMaxMs: 300,
    ...extra,
  });
  cleanups.push(() => shipper.close(0));
  return shipper;
}

async function caughtUp(shipper: TranscriptShipper, what: string): Promise<void> {
  await eventually(() => {
    const h = shipper.health();
    return h.state === 'caught-up' && h.lagRecords === 0;
  }, 15_000, `${what} caught up`);
}

/** Local lines of an instance, in chain order, and its rows in the store, in seq order. */
async function localAndShipped(dataDir: string, id: string): Promise<{ local: string[]; shipped: string[] }> {
  const local = segmentFiles(dataDir, id).flatMap((f) => readLinesOf(f));
  const rows = await sql<{ line: Buffer }>(`SELECT line FROM ${SCHEMA}.transcript_records WHERE instance = $1 ORDER BY seq`, [id]);
  return { local, shipped: rows.map((r) => r.line.toString('utf8')) };
}

async function recordSessions(store: TranscriptStore, prefix: string, count: number, target: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const rec = await recordSession(store, `${prefix}-${i}`, 2 + i, target);
    await rec.sessionEnd('client closed');
  }
}

function byStart(a: SessionSummary, b: SessionSummary): number {
  return a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.sessionId.localeCompare(b.sessionId);
}

describe('two instances shipping to one store', () => {
  let shared: PostgresTranscriptStore;
  let a: { dir: string; store: TranscriptStore };
  let b: { dir: string; store: TranscriptStore };

  beforeAll(async () => {
    shared = new PostgresTranscriptStore(shipConfig());
    cleanups.push(() => shared.close());
    a = await instance('wa');
    b = await instance('wb');
    const shipA = ship(shared, a);
    const shipB = ship(shared, b);
    await recordSessions(a.store, 'sess-a', 3, 'shop');
    await recordSessions(b.store, 'sess-b', 2, 'crm');
    await caughtUp(shipA, 'instance wa');
    await caughtUp(shipB, 'instance wb');
    // Closing: the writers seal their segments, then the shippers send the seals.
    await a.store.close();
    await b.store.close();
    await shipA.close();
    await shipB.close();
    expect(shipA.health()).toMatchObject({ state: 'closed', lagRecords: 0, failures: 0, skipped: 0 });
  });

  it('ships every record line byte for byte, seals and keys included', async () => {
    for (const [i, id] of [[a, 'wa'], [b, 'wb']] as const) {
      const { local, shipped } = await localAndShipped(i.dir, id);
      expect(local.length).toBeGreaterThan(15);
      expect(shipped).toEqual(local);
      expect(JSON.parse(shipped[shipped.length - 1] as string).k).toBe('seal');
    }
    const instances = await sql<{ instance: string; shipped_seq: string; head_seq: string }>(`SELECT instance, shipped_seq, head_seq FROM ${SCHEMA}.transcript_instances ORDER BY instance`);
    const lastA = (await localAndShipped(a.dir, 'wa')).local.length;
    expect(instances.map((r) => r.instance)).toEqual(['wa', 'wb']);
    // The head is the seal, which covers the record just before it.
    expect(Number(instances[0]?.shipped_seq)).toBe(lastA);
    expect(Number(instances[0]?.head_seq)).toBe(lastA - 1);
    const keys = await sql<{ instance: string; kid: string }>(`SELECT instance, kid FROM ${SCHEMA}.transcript_keys ORDER BY instance`);
    expect(keys).toEqual([
      { instance: 'wa', kid: a.store.keyId },
      { instance: 'wb', kid: b.store.keyId },
    ]);
    expect(a.store.keyId).not.toBe(b.store.keyId);
  });

  it('lists the sessions of every instance, as each instance lists its own', async () => {
    const fromStore = await listSessions(shared.source());
    const local = [...(await listSessions(transcriptsDir(a.dir))), ...(await listSessions(transcriptsDir(b.dir)))].sort(byStart);
    expect(fromStore).toEqual(local);
    expect(fromStore.map((s) => `${s.instance}/${s.sessionId}`).sort()).toEqual(['wa/sess-a-0', 'wa/sess-a-1', 'wa/sess-a-2', 'wb/sess-b-0', 'wb/sess-b-1']);
    expect((await listSessions(shared.source(), { target: 'crm' })).map((s) => s.sessionId)).toEqual(['sess-b-0', 'sess-b-1']);
    expect((await listSessions(shared.source(), { principal: PRINCIPAL.name, table: 'customers' })).length).toBe(5);
  });

  it('replays a session from the store as from its instance\'s files', async () => {
    const fromStore = await loadSession(shared.source(), 'sess-b-1');
    expect(fromStore.instance).toBe('wb');
    expect(replayJson(fromStore)).toEqual(replayJson(await loadSession(transcriptsDir(b.dir), 'sess-b-1')));
    expect(fromStore.position).toEqual((await loadSession(transcriptsDir(b.dir), 'sess-b-1')).position);
    expect(fromStore.entries.filter((e) => e.kind === 'statement')).toHaveLength(3);
    await expect(loadSession(shared.source(), 'sess-')).rejects.toThrow(/names 5 sessions/);
    await expect(loadSession(shared.source(), 'nope')).rejects.toThrow(/no session 'nope' in the shared transcript store/);
  });

  it('builds the access review over every instance', async () => {
    const period = { principal: PRINCIPAL.name, since: new Date(Date.now() - 3_600_000), until: new Date(Date.now() + 60_000), grantedTargets: ['shop', 'crm', 'archive'] };
    const report = await buildReview(shared.source(), period);
    const onlyA = await buildReview(transcriptsDir(a.dir), period);
    expect(report.sessions.count).toBe(5);
    expect(onlyA.sessions.count).toBe(3);
    expect(report.targets.map((t) => [t.target, t.sessions])).toEqual([
      ['crm', 2],
      ['shop', 3],
    ]);
    expect(report.unusedGrants).toEqual({ targets: ['archive'] });
    expect(report.protectedColumns).toEqual([
      expect.objectContaining({ target: 'crm', column: 'email', rule: 'email-partial', results: 2 + 3 }),
      expect.objectContaining({ target: 'shop', column: 'email', rule: 'email-partial', results: 2 + 3 + 4 }),
    ]);
  });

  it('verifies the shipped copy, as the local files verify', async () => {
    const report = await verifyStore(shared);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.keysFromStore).toBe(true);
    expect(report.instances.map((i) => [i.instance, i.firstSeq, i.head?.typ])).toEqual([
      ['wa', 1, 'seal'],
      ['wb', 1, 'seal'],
    ]);
    const localA = await verifyLocal(a.dir);
    const localB = await verifyLocal(b.dir);
    expect(localA.ok && localB.ok).toBe(true);
    expect(report.records).toBe(localA.records + localB.records);
    expect(report.segments.every((s) => s.status === 'intact')).toBe(true);
  });

  it('reads the same in pages of a few rows, or of one row when a page holds fewer bytes than a line', async () => {
    const whole = await listSessions(shared.source());
    const report = await verifyStore(shared);
    for (const page of [{ rows: 5, bytes: 1 << 20 }, { rows: 1000, bytes: 1 }]) {
      const paged = new PostgresTranscriptStore(shipConfig(), { page });
      try {
        expect(await listSessions(paged.source())).toEqual(whole);
        expect(replayJson(await loadSession(paged.source(), 'sess-a-2'))).toEqual(replayJson(await loadSession(shared.source(), 'sess-a-2')));
        const again = await verifyStore(paged);
        expect(again.ok).toBe(true);
        expect(again.records).toBe(report.records);
      } finally {
        await paged.close();
      }
    }
  });

  it('a batch sent again is accepted; another record under a shipped seq is refused', async () => {
    const [row] = await sql<{ seq: string; segment: number; file: string; ts: Date; kind: string; sid: string | null; line: Buffer }>(
      `SELECT seq, segment, file, ts, kind, sid, line FROM ${SCHEMA}.transcript_records WHERE instance = 'wb' AND kind = 'statement' ORDER BY seq LIMIT 1`,
    );
    if (!row) throw new Error('no statement of wb');
    const shipped = { seq: Number(row.seq), segment: row.segment, file: row.file, ts: row.ts.toISOString(), kind: row.kind, sid: row.sid, line: row.line };
    await shared.ship('wb', [shipped], undefined); // a commit whose acknowledgement was lost, sent again
    const other = Buffer.from(row.line.toString('utf8').replace('customers', 'suppliers'));
    await expect(shared.ship('wb', [{ ...shipped, line: other }], undefined)).rejects.toBeInstanceOf(ShipConflictError);
    expect((await verifyStore(shared)).ok).toBe(true);
  });

  describe('tampering with the shipped rows', () => {
    type Row = { seq: string; segment: number; file: string; ts: Date; kind: string; sid: string | null; line: Buffer };
    const rowAt = async (seq: number): Promise<Row> => {
      const [row] = await sql<Row>(`SELECT seq, segment, file, ts, kind, sid, line FROM ${SCHEMA}.transcript_records WHERE instance = 'wa' AND seq = $1`, [seq]);
      if (!row) throw new Error(`no row ${seq}`);
      return row;
    };
    const restore = async (rows: Row[]): Promise<void> => {
      await sql(`DELETE FROM ${SCHEMA}.transcript_records WHERE instance = 'wa' AND seq = ANY($1::bigint[])`, [rows.map((r) => r.seq)]);
      for (const r of rows) {
        await sql(`INSERT INTO ${SCHEMA}.transcript_records (instance, seq, segment, file, ts, kind, sid, line) VALUES ('wa', $1, $2, $3, $4, $5, $6, $7)`, [r.seq, r.segment, r.file, r.ts, r.kind, r.sid, r.line]);
      }
      const after = await verifyStore(shared);
      expect(after.findings.filter((f) => f.severity === 'error')).toEqual([]);
    };
    /** A statement record of instance wa in the middle of its chain. */
    const statementSeq = async (): Promise<number> => {
      const rows = await sql<{ seq: string }>(`SELECT seq FROM ${SCHEMA}.transcript_records WHERE instance = 'wa' AND kind = 'statement' ORDER BY seq OFFSET 4 LIMIT 1`);
      return Number(rows[0]?.seq);
    };
    const errorsOf = (r: StoreVerifyReport) => r.findings.filter((f) => f.severity === 'error');

    it('an UPDATEd line is named by its seq (edited); the columns are checked too', async () => {
      const seq = await statementSeq();
      const original = await rowAt(seq);
      await sql(`UPDATE ${SCHEMA}.transcript_records SET line = convert_to(replace(convert_from(line, 'UTF8'), 'customers', 'suppliers'), 'UTF8') WHERE instance = 'wa' AND seq = $1`, [seq]);
      const report = await verifyStore(shared);
      expect(report.ok).toBe(false);
      expect(errorsOf(report)).toEqual([expect.objectContaining({ kind: 'edited', instance: 'wa', seq, file: original.file, message: expect.stringContaining(`(seq ${seq}, statement) was altered`) })]);
      expect(report.instances.find((i) => i.instance === 'wb')).toBeDefined();
      expect(report.segments.find((s) => s.file === original.file)?.status).toBe('broken');
      await restore([original]);

      await sql(`UPDATE ${SCHEMA}.transcript_records SET sid = 'sess-b-0' WHERE instance = 'wa' AND seq = $1`, [seq]);
      const columns = await verifyStore(shared);
      expect(errorsOf(columns)).toEqual([expect.objectContaining({ kind: 'edited', seq, message: expect.stringContaining("sid 'sess-b-0' (the record's is 'sess-a-") })]);
      await restore([original]);
    });

    it('a DELETEd row is named as the missing seq (removed)', async () => {
      const seq = await statementSeq();
      const original = await rowAt(seq);
      await sql(`DELETE FROM ${SCHEMA}.transcript_records WHERE instance = 'wa' AND seq = $1`, [seq]);
      const report = await verifyStore(shared);
      expect(report.ok).toBe(false);
      expect(errorsOf(report)).toContainEqual(expect.objectContaining({ kind: 'removed', instance: 'wa', seq, message: expect.stringContaining(`seq ${seq} is missing`) }));
      // The checkpoint or seal after it counts one record less than it signed.
      expect(errorKinds(report)).toEqual(expect.arrayContaining(['removed']));
      expect(errorsOf(report).every((f) => f.instance === 'wa')).toBe(true);
      await restore([original]);
    });

    it('two swapped seqs are named (reordered)', async () => {
      const seq = await statementSeq();
      const [x, y] = [await rowAt(seq), await rowAt(seq + 1)];
      await sql(`BEGIN;
        UPDATE ${SCHEMA}.transcript_records SET seq = -1 WHERE instance = 'wa' AND seq = ${seq};
        UPDATE ${SCHEMA}.transcript_records SET seq = ${seq} WHERE instance = 'wa' AND seq = ${seq + 1};
        UPDATE ${SCHEMA}.transcript_records SET seq = ${seq + 1} WHERE instance = 'wa' AND seq = -1;
        COMMIT`);
      const report = await verifyStore(shared);
      expect(report.ok).toBe(false);
      const reordered = errorsOf(report).filter((f) => f.kind === 'reordered');
      expect(reordered).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ seq, message: `row seq ${seq} of instance wa holds the record of seq ${seq + 1} (${y.kind}): rows were moved or their seq changed` }),
          expect.objectContaining({ seq: seq + 1, message: `row seq ${seq + 1} of instance wa holds the record of seq ${seq} (${x.kind}): rows were moved or their seq changed` }),
        ]),
      );
      expect(errorsOf(report).every((f) => f.instance === 'wa' && (f.seq === seq || f.seq === seq + 1))).toBe(true);
      await restore([x, y]);
    });

    it('removing the newest rows is caught by the shipped head (truncated)', async () => {
      const [last] = await sql<{ seq: string }>(`SELECT max(seq) AS seq FROM ${SCHEMA}.transcript_records WHERE instance = 'wa'`);
      const lastSeq = Number(last?.seq);
      const tail = [await rowAt(lastSeq - 1), await rowAt(lastSeq)];
      await sql(`DELETE FROM ${SCHEMA}.transcript_records WHERE instance = 'wa' AND seq >= $1`, [lastSeq - 1]);
      const report = await verifyStore(shared);
      expect(errorsOf(report)).toEqual([expect.objectContaining({ kind: 'truncated', instance: 'wa', file: 'transcript_instances', seq: lastSeq - 1 })]);
      await restore(tail);
    });

    it('pinned keys: another instance\'s key does not verify this instance\'s marks', async () => {
      const { loadVerifyKey } = await import('../../src/audit/keys.js');
      const keyB = await loadVerifyKey(b.store.publicKeyFile);
      const report = await verifyStore(shared, { publicKey: keyB });
      expect(report.keysFromStore).toBe(false);
      const bad = errorsOf(report);
      expect(bad.length).toBeGreaterThan(0);
      expect(bad.every((f) => f.kind === 'bad-signature' && f.instance === 'wa')).toBe(true);
      expect((await verifyStore(shared, { publicKey: [keyB, await loadVerifyKey(a.store.publicKeyFile)] })).ok).toBe(true);
    });

    it('warden audit verify --from-store exits 0 when intact, 1 naming the row when not; sessions list --from-store', async () => {
      const env = { WARDEN_TRANSCRIPT_STORE_URL: url(DATABASE), WARDEN_TRANSCRIPT_STORE_SCHEMA: SCHEMA };
      const ok = await cli(['audit', 'verify', '--from-store'], env);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('INTACT  the shared transcript store (schema warden)');
      expect(ok.stdout).toMatch(/instance wa: \d+ segments?, seq 1–\d+/);
      expect(ok.stdout).not.toContain(testPostgres().superuserPassword);

      const seq = await statementSeq();
      const original = await rowAt(seq);
      await sql(`UPDATE ${SCHEMA}.transcript_records SET line = convert_to(replace(convert_from(line, 'UTF8'), 'SELECT', 'DELETE'), 'UTF8') WHERE instance = 'wa' AND seq = $1`, [seq]);
      try {
        const broken = await cli(['audit', 'verify', '--from-store', '--format', 'json'], env);
        expect(broken.code).toBe(1);
        const json = JSON.parse(broken.stdout) as StoreVerifyReport;
        expect(json.findings.filter((f) => f.severity === 'error')).toEqual([expect.objectContaining({ kind: 'edited', instance: 'wa', seq })]);
      } finally {
        await restore([original]);
      }

      const list = await cli(['sessions', 'list', '--from-store', '--format', 'json', '--target', 'crm'], env);
      expect(list.code).toBe(0);
      expect((JSON.parse(list.stdout) as SessionSummary[]).map((s) => `${s.instance}/${s.sessionId}`)).toEqual(['wb/sess-b-0', 'wb/sess-b-1']);
      // replay --from-store reads the store twice (the session, then its timeline) and prints as it reads.
      const replay = await cli(['replay', 'sess-b-1', '--from-store', '--format', 'json'], env);
      expect(replay.stderr).toBe('');
      const doc = JSON.parse(replay.stdout) as { session: SessionSummary; entries: Array<{ kind: string }>; ended: boolean };
      expect(doc.session).toMatchObject({ sessionId: 'sess-b-1', instance: 'wb', target: 'crm' });
      expect(doc.entries[0]?.kind).toBe('session-start');
      expect(doc.entries.filter((e) => e.kind === 'statement').length).toBe(doc.session.statements);
      const usage = await cli(['sessions', 'list', '--from-store'], {});
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain('WARDEN_TRANSCRIPT_STORE_URL');
    });
  });
});

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const { WARDEN_TRANSCRIPT_STORE_URL: _u, WARDEN_TRANSCRIPT_STORE_SCHEMA: _s, ...base } = process.env;
  return wardenCli(args, { ...base, ...env });
}

describe('an unreachable store', () => {
  let fwd: Forwarder;

  beforeAll(async () => {
    fwd = await forwarder();
    cleanups.push(() => fwd.close());
  });

  it('never holds up the recorder; the shipper retries with backoff and catches up, twice', async () => {
    fwd.cut();
    const shared = new PostgresTranscriptStore(shipConfig(fwd.port));
    cleanups.push(() => shared.close());
    const c = await instance('wc');
    const metrics = new Metrics();
    const shipper = ship(shared, c, { metrics });

    const started = performance.now();
    await recordSessions(c.store, 'sess-c', 3, 'shop');
    // A session id the JSON escapes: its sid column must still be the id itself.
    const odd = 'sess-c-"q"\\ü-✓\u2028';
    await (await recordSession(c.store, odd, 1)).sessionEnd('client closed');
    const took = performance.now() - started;
    await eventually(() => shipper.health().failures >= 3, 10_000, 'several failed attempts');
    const down = shipper.health();
    expect(down).toMatchObject({ state: 'retrying', shippedSeq: 0, error: expect.any(String) });
    expect(down.lagRecords).toBe(c.store.health().seq);
    expect(down.lagSeconds).toBeGreaterThan(0);
    expect(took).toBeLessThan(2000); // 3 sessions recorded at disk speed while the store was down
    expect(metrics.render()).toMatch(/warden_transcript_ship_failures_total [1-9]/);
    expect(metrics.render()).toContain(`warden_transcript_ship_lag_records ${down.lagRecords}`);
    expect((await localAndShipped(c.dir, 'wc')).shipped).toEqual([]);

    fwd.restore();
    await caughtUp(shipper, 'after the first outage');
    expect(shipper.health()).toMatchObject({ failures: 0, lagSeconds: 0 });
    let lines = await localAndShipped(c.dir, 'wc');
    expect(lines.shipped).toEqual(lines.local);

    // Cut again while it ships; the sessions recorded meanwhile arrive once it is back.
    fwd.cut();
    await recordSessions(c.store, 'sess-c2', 4, 'shop');
    await eventually(() => shipper.health().state === 'retrying', 10_000, 'second outage noticed');
    fwd.restore();
    await caughtUp(shipper, 'after the second outage');
    lines = await localAndShipped(c.dir, 'wc');
    expect(lines.shipped).toEqual(lines.local);
    expect(metrics.render()).toContain('warden_transcript_ship_lag_records 0');

    await c.store.close();
    await shipper.close();
    lines = await localAndShipped(c.dir, 'wc');
    expect(lines.shipped).toEqual(lines.local);
    expect((await verifyStore(shared, { instance: 'wc' })).ok).toBe(true);
    expect((await verifyLocal(c.dir)).ok).toBe(true);
    expect((await listSessions(shared.source())).filter((s) => s.instance === 'wc')).toHaveLength(8);
    expect(await sql(`SELECT DISTINCT sid FROM ${SCHEMA}.transcript_records WHERE instance = 'wc' AND sid LIKE 'sess-c-"%'`)).toEqual([{ sid: odd }]);
    expect((await loadSession(shared.source(), odd)).entries).toHaveLength(4);
  });
});

describe('a restarted writer', () => {
  it('resumes from the highest shipped seq, without sending anything twice', async () => {
    const shared = new PostgresTranscriptStore(shipConfig());
    cleanups.push(() => shared.close());
    const first = await instance('wd');
    const firstMetrics = new Metrics();
    const shipper1 = ship(shared, first, { metrics: firstMetrics });
    await recordSessions(first.store, 'sess-d', 2, 'shop');
    await caughtUp(shipper1, 'before the restart');
    // The shipper stops without draining; the writer goes on and then stops (its seal unshipped).
    await shipper1.close(0);
    await recordSessions(first.store, 'sess-d2', 1, 'shop');
    // A session whose end the first writer never recorded.
    await recordSession(first.store, 'sess-d-cut', 1, 'shop');
    await first.store.close();
    const shippedBefore = Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM ${SCHEMA}.transcript_records WHERE instance = 'wd'`))[0]?.n);
    const localBefore = (await localAndShipped(first.dir, 'wd')).local.length;
    expect(shippedBefore).toBeLessThan(localBefore);

    // The restarted writer continues its chain in a new segment; a new shipper resumes.
    const again = await instance('wd', first.dir);
    await recordSessions(again.store, 'sess-d3', 2, 'shop');
    const metrics = new Metrics();
    const shipper2 = ship(shared, again, { metrics });
    await caughtUp(shipper2, 'after the restart');
    const lines = await localAndShipped(first.dir, 'wd');
    expect(lines.shipped).toEqual(lines.local);
    expect(segmentFiles(first.dir, 'wd')).toHaveLength(2);
    // Only what the store did not hold was sent.
    expect(metrics.render()).toContain(`warden_transcript_shipped_records_total ${lines.local.length - shippedBefore}`);
    expect(shipper2.health().skipped).toBe(0);

    await again.store.close();
    await shipper2.close();
    const report = await verifyStore(shared, { instance: 'wd' });
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(report.instances[0]).toMatchObject({ instance: 'wd', segments: 2, head: { typ: 'seal' } });
    expect((await verifyLocal(first.dir)).ok).toBe(true);
    // The store tells the two writers apart as the files do: the cut session ended with the first.
    const listed = (await listSessions(shared.source())).filter((s) => s.instance === 'wd');
    expect(listed).toEqual(await listSessions(transcriptsDir(first.dir)));
    const cut = listed.find((s) => s.sessionId === 'sess-d-cut') as SessionSummary;
    expect(cut).toMatchObject({ open: false, endedBy: cut.lastAt });
    const { endedBy: _by, ...replayed } = cut;
    expect((await loadSession(shared.source(), 'sess-d-cut')).summary).toEqual(replayed);
    expect(listed.filter((s) => s.open)).toEqual([]);
  });

  it('stops (diverged) when the store holds another chain under the same instance id', async () => {
    const shared = new PostgresTranscriptStore(shipConfig());
    cleanups.push(() => shared.close());
    const before = await sql<{ n: string }>(`SELECT count(*) AS n, max(seq) AS m FROM ${SCHEMA}.transcript_records WHERE instance = 'wd'`);
    const other = await instance('wd'); // a fresh data directory: its own chain from seq 1, another key
    await recordSessions(other.store, 'sess-x', 1, 'shop');
    const shipper = ship(shared, other);
    await eventually(() => shipper.health().state === 'diverged', 10_000, 'divergence noticed');
    expect(shipper.health().error).toMatch(/the store holds instance wd up to seq \d+, which the local files do not|differs from the local one/);
    // Nothing of the other chain reached the store, and its writer is unaffected.
    expect(await sql(`SELECT count(*) AS n, max(seq) AS m FROM ${SCHEMA}.transcript_records WHERE instance = 'wd'`)).toEqual(before);
    expect(other.store.healthy).toBe(true);
    await recordSessions(other.store, 'sess-y', 1, 'shop');
    await other.store.close();
    await shipper.close();
    expect((await verifyStore(shared, { instance: 'wd' })).ok).toBe(true);
  });
});

describe('an instance role that may only add records', () => {
  it('ships through tables made beforehand, and cannot change or remove what it shipped', async () => {
    const owner = new PostgresTranscriptStore(shipConfig());
    cleanups.push(() => owner.close());
    await owner.ready();
    const role = `warden_ship_${Math.random().toString(36).slice(2, 8)}`;
    const password = randomBytes(12).toString('hex');
    roles.push(role);
    await sql(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`, [], 'postgres');
    await sql(`GRANT USAGE ON SCHEMA ${SCHEMA} TO ${role}`);
    await sql(`GRANT SELECT, INSERT ON ${SCHEMA}.transcript_records, ${SCHEMA}.transcript_keys TO ${role}`);
    await sql(`GRANT SELECT, INSERT, UPDATE ON ${SCHEMA}.transcript_instances TO ${role}`);
    const p = testPostgres();
    const asRole = `postgres://${role}:${password}@${p.host}:${p.port}/${DATABASE}`;
    const restricted = new PostgresTranscriptStore({ url: asRole, schema: SCHEMA, timeout: 1500 });
    cleanups.push(() => restricted.close());

    const e = await instance('we');
    const shipper = ship(restricted, e);
    await recordSessions(e.store, 'sess-e', 2, 'shop');
    await caughtUp(shipper, 'the restricted instance');
    await e.store.close();
    await shipper.close();
    expect(shipper.health()).toMatchObject({ failures: 0, lagRecords: 0 });
    const lines = await localAndShipped(e.dir, 'we');
    expect(lines.shipped).toEqual(lines.local);

    await expect(sql(`UPDATE ${SCHEMA}.transcript_records SET line = line WHERE instance = 'we'`, [], DATABASE, asRole)).rejects.toThrow(/permission denied/);
    await expect(sql(`DELETE FROM ${SCHEMA}.transcript_records WHERE instance = 'we'`, [], DATABASE, asRole)).rejects.toThrow(/permission denied/);
    await expect(sql(`DELETE FROM ${SCHEMA}.transcript_keys WHERE instance = 'we'`, [], DATABASE, asRole)).rejects.toThrow(/permission denied/);
    expect((await verifyStore(owner, { instance: 'we' })).ok).toBe(true);
  });
});

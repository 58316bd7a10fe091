// Wire transcripts (transcripts.wire, src/pg/recording/wire-recording.ts): sessions no rule touches
// are recorded as the bytes their relay read, and readers run the statement flow over them. With
// real clients, what readers make of them must be what the statement flow in line records of the
// same session, for every capture but `all` (which stays with the statement flow), and the chain
// must verify.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseLine, RECORD_KIND, type TranscriptRecord } from '../../src/audit/frame.js';
import { listSessions, readStore } from '../../src/audit/reader.js';
import { followSession, loadSession, type TimelineEntry } from '../../src/audit/replay.js';
import { buildReview, type ReviewReport } from '../../src/audit/review.js';
import { WireDecoder } from '../../src/pg/recording/wire-decoder.js';
import { expectSameTranscripts, mixedScenario, recordingWarden } from '../helpers/recording-thread.js';
import { prune } from '../../src/cli/commands/audit-prune.js';
import { errorKinds, verifyStore } from '../unit/audit-support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('wire transcripts', () => {
  for (const capture of ['digest', 'first', 'none'] as const) {
    it(`read back as the statement flow in line records them (capture ${capture})`, async () => {
      const transcripts = { transcripts: { capture } };
      const inline = await recordingWarden(false, cleanups, transcripts);
      const wired = await recordingWarden('wire', cleanups, transcripts);
      expect(wired.warden.recordingThread).toBeUndefined();
      const [a, b] = [await mixedScenario(inline, 3000, 300), await mixedScenario(wired, 3000, 300)];
      expect(b).toEqual(a);
      const records = await expectSameTranscripts(inline, wired, { wire: true });
      expect(records.filter((r) => r.k === 'statement').length).toBeGreaterThan(10);
      // The access review and the listing read the same from both.
      const period = { since: new Date(Date.now() - 3_600_000), until: new Date(Date.now() + 60_000) };
      const [ra, rb] = [await buildReview(join(inline.dataDir, 'transcripts'), { principal: 'agent', ...period }), await buildReview(join(wired.dataDir, 'transcripts'), { principal: 'agent', ...period })];
      const comparable = (r: ReviewReport) => ({ statementsByClass: r.statementsByClass, tables: r.tables, rows: r.rows, bytes: r.bytes, sessions: r.sessions.count, statements: r.targets.map((t) => t.statements) });
      expect(comparable(rb)).toEqual(comparable(ra));
      expect(ra.statementsByClass.reduce((n, c) => n + c.count, 0)).toBeGreaterThan(10);
      const listed = async (dir: string) => (await listSessions(join(dir, 'transcripts'))).map((x) => [x.statements, x.verdicts, x.classes, x.relations, x.rows, x.errors, x.endReason]);
      expect(await listed(wired.dataDir)).toEqual(await listed(inline.dataDir));
    });
  }
});

describe('resume points: a wire session outlives the segment of its first record', () => {
  it('is read from its first idle point in the oldest segment retention left, with its prepared statements and parameters as they were then', async () => {
    // Small segments: the session's own records fill them.
    const w = await recordingWarden('wire', cleanups, { transcripts: { capture: 'digest', segmentMaxBytes: 16 * 1024 } });
    const dir = join(w.dataDir, 'transcripts');
    const segments = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    const byId = (id: number) => c.query({ name: 'by_id', text: 'SELECT full_name FROM customers WHERE id = $1', values: [id] });
    await byId(1); // Parse (named), Bind, Execute: pg keeps the statement prepared for the connection
    await c.query("SET application_name = 'resumed-app'"); // a ParameterStatus
    await c.query({ name: 'closed_one', text: 'SELECT 1 AS gone' });
    await c.query('DEALLOCATE closed_one'); // SQL, not a protocol Close: kept (harmless: the server would refuse it)
    for (let i = 0; segments().length < 2; i++) {
      expect(i).toBeLessThan(500);
      await c.query(`SELECT ${i} AS filler, repeat('x', 200) AS pad`);
      await new Promise((r) => setTimeout(r, 25)); // a record each
    }
    // Everything recorded until now is older than `cut`: pruning at it removes the first segment.
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 3; i++) {
      await c.query(`SELECT ${i} AS after_cut`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await byId(2)).rows).toEqual([{ full_name: expect.any(String) }]); // Bind and Execute only
    await c.end();
    await w.stop();

    // The first segment is the session's only record with the login `ctx`; the resume point's
    // `ctx` has the parameters and prepared statements of its time.
    const wire = segments()
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
      .map((l) => (l ? parseLine(Buffer.from(l), false) : undefined))
      .flatMap((p) => (p?.ok && p.record.k === RECORD_KIND.wire ? [p.record] : []));
    const ctxs = wire.map((r) => (r.d as { ctx?: { parameters: [string, string][]; prepared?: { name: string; sql: string }[] } }).ctx).filter((x) => x !== undefined);
    expect(ctxs.length).toBeGreaterThanOrEqual(2);
    expect(new Map(ctxs[0]?.parameters).get('application_name')).not.toBe('resumed-app');
    const resumed = ctxs[1];
    expect(new Map(resumed?.parameters).get('application_name')).toBe('resumed-app');
    expect(resumed?.prepared?.map((p) => [p.name, p.sql]).sort()).toEqual([
      ['by_id', 'SELECT full_name FROM customers WHERE id = $1'],
      ['closed_one', 'SELECT 1 AS gone'],
    ]);

    // Read whole, the session ignores its resume point: one flow from its first record on.
    const whole = await loadSession(dir, ((await listSessions(dir))[0] as { sessionId: string }).sessionId);
    const all = whole.entries.flatMap((e) => (e.kind === 'statement' ? [[e.statementId, e.data.text] as const] : []));
    expect(all.map(([id]) => id)).toEqual(all.map((_, i) => i + 1));
    expect(all.slice(0, 2).map(([, text]) => text)).toEqual(['SELECT full_name FROM customers WHERE id = $1', "SET application_name = 'resumed-app'"]);
    expect(all.slice(-4).map(([, text]) => text)).toEqual(['SELECT 0 AS after_cut', 'SELECT 1 AS after_cut', 'SELECT 2 AS after_cut', 'SELECT full_name FROM customers WHERE id = $1']);
    expect(whole.entries.filter((e) => e.kind === 'event' && e.data.kind === 'unreadable')).toEqual([]);

    const first = segments()[0];
    // `warden audit prune --older-than 1h`, run an hour after `cut`.
    expect(await prune({ 'data-dir': w.dataDir, 'older-than': '1h' }, new Date(Date.parse(cut) + 3_600_000))).toBe(0);
    expect(segments()).not.toContain(first);
    const report = await verifyStore(w.dataDir);
    expect(errorKinds(report)).toEqual([]);
    expect(report.findings.filter((f) => f.kind === 'retention')).toHaveLength(1);

    const [listed] = await listSessions(dir);
    const replay = await loadSession(dir, (listed as { sessionId: string }).sessionId);
    expect(replay.summary.removedStatements).toBeNull(); // a wire session's chain does not count them
    const texts = replay.entries.flatMap((e) => (e.kind === 'statement' ? [e.data.text] : []));
    // What ran after the resume point is read, the prepared statement with its text and parameter.
    expect(texts.slice(-4)).toEqual(['SELECT 0 AS after_cut', 'SELECT 1 AS after_cut', 'SELECT 2 AS after_cut', 'SELECT full_name FROM customers WHERE id = $1']);
    const last = replay.entries.filter((e) => e.kind === 'statement').at(-1);
    expect(last?.kind === 'statement' ? last.data.params?.map((p) => p.value) : undefined).toEqual(['2']);
    expect(replay.entries.filter((e) => e.kind === 'result').at(-1)).toMatchObject({ data: { rows: 1 } });
    // Nothing from the removed segment is shown (the kept one begins at a resume point: nothing
    // there is unreadable).
    expect(texts).not.toContain("SET application_name = 'resumed-app'");
    expect(texts.length).toBeLessThan(all.length);
    expect(replay.entries.filter((e) => e.kind === 'event' && e.data.kind === 'unreadable')).toEqual([]);
    expect(replay.entries.at(-1)?.kind).toBe('session-end');
  });
  it('a session busy when the segment begins resumes at its next idle point; one idle in a transaction resumes at once, in it', async () => {
    const w = await recordingWarden('wire', cleanups, { transcripts: { capture: 'digest', segmentMaxBytes: 16 * 1024 } });
    const dir = join(w.dataDir, 'transcripts');
    const segments = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();
    const connect = async (application_name: string): Promise<pg.Client> => {
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, application_name });
      await c.connect();
      return c;
    };
    const [filler, inTx, busy] = [await connect('filler'), await connect('in-tx'), await connect('busy')];
    await inTx.query('BEGIN');
    await inTx.query('SELECT 6 AS before_cut');
    await new Promise((r) => setTimeout(r, 40)); // the sessions' first records are written
    let slept = false;
    const sleeping = busy.query('SELECT pg_sleep(4) AS slept').then(() => (slept = true));
    await new Promise((r) => setTimeout(r, 40)); // its Query is in a record of the first segment
    for (let i = 0; segments().length < 2; i++) {
      expect(i).toBeLessThan(500);
      await filler.query(`SELECT ${i} AS filler, repeat('x', 200) AS pad`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(slept).toBe(false); // the segment began while it slept
    await new Promise((r) => setTimeout(r, 20));
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await inTx.query('SELECT 7 AS in_tx');
    await inTx.query('COMMIT');
    await sleeping;
    await busy.query('SELECT 8 AS after_busy');
    for (const c of [filler, inTx, busy]) await c.end();
    await w.stop();
    expect(await prune({ 'data-dir': w.dataDir, 'older-than': '1h' }, new Date(Date.parse(cut) + 3_600_000))).toBe(0);
    expect(errorKinds(await verifyStore(w.dataDir))).toEqual([]);

    const byApp = new Map((await listSessions(dir)).map((x) => [x.client?.application, x.sessionId]));
    const read = async (app: string) => (await loadSession(dir, byApp.get(app) as string)).entries;
    const statements = (entries: TimelineEntry[]) => entries.flatMap((e) => (e.kind === 'statement' ? [e.data.text] : []));
    const unreadable = (entries: TimelineEntry[]) => entries.filter((e) => e.kind === 'event' && e.data.kind === 'unreadable').length;
    // Idle in its transaction at the new segment: its next record is the resume point.
    const tx = await read('in-tx');
    expect(statements(tx)).toEqual(['SELECT 7 AS in_tx', 'COMMIT']);
    expect(unreadable(tx)).toBe(0);
    const ctxOf = (sid: string) =>
      segments()
        .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
        .map((l) => (l ? parseLine(Buffer.from(l), false) : undefined))
        .flatMap((p) => (p?.ok && p.record.k === RECORD_KIND.wire && p.record.sid === sid ? [(p.record.d as { ctx?: { transactionStatus: number } }).ctx] : []))
        .find((c) => c !== undefined);
    expect(String.fromCharCode(ctxOf(byApp.get('in-tx') as string)?.transactionStatus ?? 0)).toBe('T');
    // Busy in pg_sleep: what came before its next idle point cannot be read, what came after can.
    const b = await read('busy');
    expect(statements(b)).toEqual(['SELECT 8 AS after_busy']);
    expect(unreadable(b)).toBe(1);
    expect(String.fromCharCode(ctxOf(byApp.get('busy') as string)?.transactionStatus ?? 0)).toBe('I');
  });
});

describe('reading wire records', () => {
  it('replay --follow decodes a live session as it goes, and stops at its end', async () => {
    const w = await recordingWarden('wire', cleanups, { transcripts: { capture: 'first' } });
    const dir = join(w.dataDir, 'transcripts');
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    await c.query('SELECT 1 AS first');
    const sessionId = await vi.waitFor(
      async () => {
        const [s] = await listSessions(dir);
        expect(s?.statements).toBe(1);
        return (s as { sessionId: string }).sessionId;
      },
      { timeout: 5000, interval: 20 },
    );
    const replay = await loadSession(dir, sessionId);
    const seen: TimelineEntry[] = [];
    const following = followSession(dir, replay, { onEntry: (e) => seen.push(e), pollMs: 20 });
    for (let i = 2; i <= 6; i++) {
      await c.query(`SELECT ${i} AS n, full_name FROM customers WHERE id = $1`, [i]);
      await new Promise((r) => setTimeout(r, 30));
    }
    await c.end();
    expect(await following).toBe('ended');
    // Statement 1 was in the replay; the follow decodes from the flow's state where that ended.
    expect(seen.filter((e) => e.kind === 'statement').map((e) => (e.kind === 'statement' ? [e.statementId, e.data.text] : []))).toEqual(
      [2, 3, 4, 5, 6].map((i) => [i, `SELECT ${i} AS n, full_name FROM customers WHERE id = $1`]),
    );
    expect(seen.filter((e) => e.kind === 'result').map((e) => (e.kind === 'result' ? e.data.rows : -1))).toEqual([1, 1, 1, 1, 1]);
    expect(seen.at(-1)?.kind).toBe('session-end');
  });

  it("a session whose first wire record is not read shows one 'unreadable' event, not a wrong transcript", async () => {
    const w = await recordingWarden('wire', cleanups, { transcripts: { capture: 'digest' } });
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await c.connect();
    for (let i = 0; i < 3; i++) {
      await c.query(`SELECT ${i}`);
      await new Promise((r) => setTimeout(r, 40)); // a wire record each
    }
    await c.end();
    await w.stop();
    const wire: TranscriptRecord[] = [];
    for await (const { record } of readStore(join(w.dataDir, 'transcripts'))) if (record.k === RECORD_KIND.event || record.k === RECORD_KIND.statement) wire.push(record);
    expect(wire.filter((r) => r.k === RECORD_KIND.statement)).toHaveLength(3);
    // The raw `wire` records, the first left out: what a reading that begins after it gets.
    const raws = readdirSync(join(w.dataDir, 'transcripts'))
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(w.dataDir, 'transcripts', f), 'utf8').split('\n'))
      .map((l) => (l ? parseLine(Buffer.from(l), false) : undefined))
      .flatMap((p) => (p?.ok && p.record.k === RECORD_KIND.wire ? [p.record] : []));
    expect(raws.length).toBeGreaterThanOrEqual(3);
    expect((raws[0]?.d as { ctx?: unknown }).ctx).toBeDefined();
    const decoder = new WireDecoder();
    const out: TranscriptRecord[] = [];
    for (const r of raws.slice(1)) out.push(...(await decoder.expand(r, 'w1')));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ k: 'event', sid: raws[1]?.sid, d: { kind: 'unreadable' } });
  });
});

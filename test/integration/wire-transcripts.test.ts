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

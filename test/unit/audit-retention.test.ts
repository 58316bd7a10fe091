// transcripts.retention: the writer removes its oldest segments once all their records are older
// than the retention, after signing where the chain now begins; verify accepts exactly that
// beginning and still reports any other segment that goes missing.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { listSessions } from '../../src/audit/reader.js';
import { loadSession, renderSessionHeader } from '../../src/audit/replay.js';
import { buildReview } from '../../src/audit/review.js';
import { generateKeyPairSync } from 'node:crypto';
import { loadSigningKey } from '../../src/audit/keys.js';
import { sealTimeOf } from '../../src/audit/retention.js';
import { errorKinds, manualClock, recordStatements, recordThenRotate, readLinesOf, recordSession, segmentFiles, tempDataDir, testConfig, transcriptsDir, verifyStore, writeLinesTo } from './audit-support.js';

const DAY = 24 * 60 * 60 * 1000;

let data: ReturnType<typeof tempDataDir>;
let store: TranscriptStore | undefined;

afterEach(async () => {
  await store?.close();
  store = undefined;
  data?.cleanup();
});

/** Opens a store whose segments rotate every hour of `clock`, with the given retention, ticking every 20 ms. */
function openWith(clock: ReturnType<typeof manualClock>, retentionMs: number | undefined, keepFromSeq?: () => number | undefined): Promise<TranscriptStore> {
  return TranscriptStore.open(testConfig(data.dir, { segmentMaxAgeMs: 60 * 60 * 1000, fsyncIntervalMs: 20, ...(retentionMs === undefined ? {} : { retentionMs }) }), {
    clock: clock.now,
    ...(keepFromSeq ? { keepFromSeq } : {}),
  });
}

/** Records a session, then moves the clock on a day and waits for the writer's tick to rotate. */
const day = (s: TranscriptStore, clock: ReturnType<typeof manualClock>, n: number): Promise<void> => recordThenRotate(s, clock, `sess-day-${n}`, 3, DAY);

/** Waits until the oldest segment left is the one numbered as `prefix` says (e.g. /^w1_00000004_/). */
const oldestBecomes = (prefix: RegExp): Promise<void> =>
  vi.waitFor(() => expect(basename(segmentFiles(data.dir)[0] as string)).toMatch(prefix), { timeout: 5000, interval: 10 });

describe('transcripts.retention', () => {
  it('removes the segments older than the retention, and verify accepts the signed new beginning', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, 2 * DAY);
    for (let n = 0; n < 5; n++) await day(store, clock, n);
    // The tick after a rotation looks for segments past the retention at most once a clock minute.
    clock.advance(2 * 60 * 1000);
    await vi.waitFor(() => expect(segmentFiles(data.dir).length).toBeLessThan(6), { timeout: 5000, interval: 10 });
    const names = segmentFiles(data.dir).map((p) => basename(p));
    // Segment n+1 was started at 00:00 on day n (January n+1) and ended when n+2 was started. Now
    // is 00:02 on day 5 (January 6), so everything that ended by 00:02 on day 3 is past the two
    // days: segments 1 to 3 are gone; 4, 5 and the active 6 stay.
    expect(names.map((n) => n.split('_')[1])).toEqual(['00000004', '00000005', '00000006']);
    await store.close();
    store = undefined;
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual([]);
    expect(report.ok).toBe(true);
    const note = report.findings.find((f) => f.kind === 'retention');
    expect(note?.severity).toBe('info');
    expect(note?.message).toMatch(/records before seq \d+ \(the segments before w1_00000004_20260104T000000Z\.jsonl\) were removed by retention at 2026-01-06T00:0/);
    expect(report.instances[0]?.retention).toMatchObject({ file: 'w1_00000004_20260104T000000Z.jsonl' });
    // Readers see the sessions that are left.
    const sessions = await listSessions(transcriptsDir(data.dir));
    expect(sessions.map((s) => s.sessionId).sort()).toEqual(['sess-day-3', 'sess-day-4']);
  });

  it('still reports a kept segment that goes missing, and the beginning survives a restart', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, 2 * DAY);
    for (let n = 0; n < 4; n++) await day(store, clock, n);
    clock.advance(2 * 60 * 1000);
    await vi.waitFor(() => expect(segmentFiles(data.dir).length).toBeLessThan(5), { timeout: 5000, interval: 10 });
    await store.close();
    // A restart continues the chain: its marks still say where the chain begins.
    clock.advance(60 * 1000);
    store = await openWith(clock, 2 * DAY);
    await recordSession(store, 'sess-after-restart', 2);
    await store.close();
    store = undefined;
    const intact = await verifyStore(data.dir);
    expect(errorKinds(intact)).toEqual([]);
    expect(intact.findings.some((f) => f.kind === 'retention')).toBe(true);

    // The oldest segment left is what the signed beginning names: removing it is tampering.
    const files = segmentFiles(data.dir);
    const kept = files[0] as string;
    const spare = join(mkdtempSync(join(tmpdir(), 'warden-retention-')), basename(kept));
    copyFileSync(kept, spare);
    unlinkSync(kept);
    const cut = await verifyStore(data.dir);
    expect(cut.ok).toBe(false);
    const missing = cut.findings.find((f) => f.kind === 'missing-segment');
    expect(missing?.message).toMatch(/segment\(s\) 3 of instance w1 are missing: retention removed only the segments before w1_00000003_20260103T000000Z\.jsonl/);
    // So is a beginning that no longer matches (a forged first segment: another segment put in its name).
    copyFileSync(files[1] as string, kept);
    const forged = await verifyStore(data.dir);
    expect(forged.ok).toBe(false);
    copyFileSync(spare, kept);
    rmSync(join(spare, '..'), { recursive: true, force: true });
    expect((await verifyStore(data.dir)).ok).toBe(true);
  });

  it('keeps segments whose records are not shipped yet, however old', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    let keepFrom: number | undefined = 0;
    store = await openWith(clock, DAY, () => keepFrom);
    for (let n = 0; n < 4; n++) await day(store, clock, n);
    clock.advance(2 * 60 * 1000);
    // Give the tick its chance: nothing may go while nothing is shipped.
    await new Promise((r) => setTimeout(r, 200));
    expect(segmentFiles(data.dir)).toHaveLength(5);
    // Shipped up to the end of segment 2: segments 1 and 2 may go, 3 (not all shipped) stays.
    keepFrom = firstSeqOf(segmentFiles(data.dir)[2] as string);
    clock.advance(2 * 60 * 1000);
    await vi.waitFor(() => expect(segmentFiles(data.dir)).toHaveLength(3), { timeout: 5000, interval: 10 });
    expect(basename(segmentFiles(data.dir)[0] as string)).toMatch(/^w1_00000003_/);
    await store.close();
    store = undefined;
    expect(errorKinds(await verifyStore(data.dir))).toEqual([]);
  });

  it('trusts no file name: segments renamed to older dates are not removed', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, undefined);
    for (let n = 0; n < 4; n++) await day(store, clock, n);
    await store.close();
    // Segments 2 to 4 made to look as if they were started in 2020 (their index kept).
    for (const f of segmentFiles(data.dir).slice(1, 4)) renameSync(f, f.replace(/_2026\d{4}T/, '_20200101T'));
    const before = segmentFiles(data.dir).map((f) => basename(f));
    store = await openWith(clock, 400 * DAY);
    await store.close();
    store = undefined;
    // Nothing is older than 400 days by any signed seal: everything stays (and one more segment).
    expect(segmentFiles(data.dir).map((f) => basename(f)).slice(0, before.length)).toEqual(before);
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual(['segment-order']);
    expect(report.findings.some((f) => f.kind === 'retention')).toBe(false);
  });

  it('segments left over from a removal that did not finish are noted, not taken for tampering', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, 2 * DAY);
    for (let n = 0; n < 3; n++) await day(store, clock, n);
    // The second oldest segment as it was before retention reached it, to put back later (a crash before its unlink).
    const spareDir = mkdtempSync(join(tmpdir(), 'warden-retention-'));
    const second = segmentFiles(data.dir)[1] as string;
    copyFileSync(second, join(spareDir, basename(second)));
    for (let n = 3; n < 5; n++) await day(store, clock, n);
    clock.advance(2 * 60 * 1000);
    await oldestBecomes(/^w1_00000004_/);
    await store.close();
    store = undefined;
    copyFileSync(join(spareDir, basename(second)), second);
    rmSync(spareDir, { recursive: true, force: true });
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual([]);
    const notes = report.findings.filter((f) => f.kind === 'retention').map((f) => f.message);
    // (Segment 2 had gone by then already: what is left is segment 3 alone, before the beginning.)
    expect(basename(second)).toMatch(/^w1_00000003_/);
    expect(notes).toContainEqual(expect.stringMatching(/^1 segment before the chain's signed beginning \(w1_00000004_\S+, seq \d+\) is still present \(w1_00000003_/));
  });

  it('a head file older than the segments does not move the beginning back at a restart', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, 2 * DAY);
    for (let n = 0; n < 4; n++) await day(store, clock, n);
    clock.advance(2 * 60 * 1000);
    await oldestBecomes(/^w1_00000003_/);
    const head = join(transcriptsDir(data.dir), 'w1.head.json');
    await vi.waitFor(() => expect(readFileSync(head, 'utf8')).toContain('jws'), { timeout: 5000, interval: 10 });
    const oldHead = readFileSync(head);
    for (let n = 4; n < 6; n++) await day(store, clock, n);
    clock.advance(2 * 60 * 1000);
    await oldestBecomes(/^w1_00000005_/);
    await store.close();
    // The head as it was two removals ago (a crash before it was rewritten, or a copy put back).
    writeFileSync(head, oldHead);
    store = await openWith(clock, 2 * DAY);
    await recordSession(store, 'sess-after', 1);
    await store.close();
    store = undefined;
    const report = await verifyStore(data.dir);
    expect(errorKinds(report)).toEqual([]);
    expect(report.instances[0]?.retention?.file).toMatch(/^w1_00000005_/);
  });

  it("dates a segment by its seal only when the writer's own key signed it", async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, undefined);
    await recordSession(store, 'sess-sealed', 2);
    clock.advance(5 * 60 * 1000);
    await store.close();
    store = undefined;
    const file = segmentFiles(data.dir)[0] as string;
    const key = await loadSigningKey(testConfig(data.dir).keyFile, { create: false });
    expect(sealTimeOf(file, key.publicKey)).toBe(Date.parse('2026-01-01T00:05:00Z'));
    // Another key's signature, or a seal whose signed time was edited, dates nothing.
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(sealTimeOf(file, other)).toBeUndefined();
    const lines = readLinesOf(file);
    const seal = JSON.parse(lines[lines.length - 1] as string) as { d: { jws: string } };
    const [h, p, sig] = seal.d.jws.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { ts: string };
    payload.ts = '2020-01-01T00:00:00.000Z';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
    writeLinesTo(file, [...lines.slice(0, -1), (lines[lines.length - 1] as string).replace(seal.d.jws, forged)]);
    expect(sealTimeOf(file, key.publicKey)).toBeUndefined();
    // Nor does a segment that ends without a seal.
    writeLinesTo(file, lines.slice(0, -1));
    expect(sealTimeOf(file, key.publicKey)).toBeUndefined();
  });

  it('a session open across the boundary keeps its principal: listing, review and replay take it from the carried start', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, 2 * DAY);
    // A pooled connection: started on day 0 and still running on day 5.
    const long = await recordSession(store, 'sess-pooled', 2);
    for (let n = 0; n < 5; n++) {
      await recordStatements(long, 2, n);
      await day(store, clock, n);
    }
    clock.advance(2 * 60 * 1000);
    await oldestBecomes(/^w1_00000004_/);
    // Every segment after the first opens with the pooled session's start, carried over.
    const carried = readLinesOf(segmentFiles(data.dir)[0] as string).filter((l) => l.includes('"session-continued"'));
    expect(carried).toHaveLength(1); // the days' own sessions had ended
    expect(JSON.parse(carried[0] as string)).toMatchObject({ k: 'event', sid: 'sess-pooled', d: { kind: 'session-continued', detail: { startedAt: '2026-01-01T00:00:00.000Z', statements: 8, start: { target: 'shop', principal: { name: 'reporting-agent' } } } } });
    await recordStatements(long, 1, 9);
    await long.sessionEnd('client closed');
    await store.close();
    store = undefined;
    expect((await verifyStore(data.dir)).ok).toBe(true);

    const pooled = (await listSessions(transcriptsDir(data.dir), { principal: 'reporting-agent' })).find((s) => s.sessionId === 'sess-pooled');
    // Kept: day 3's two statements (segment 4), day 4's two (segment 5), and the last one (segment 6).
    expect(pooled).toMatchObject({ target: 'shop', protocol: 'postgres', startedAt: '2026-01-01T00:00:00.000Z', removedStatements: 8, statements: 5, endReason: 'client closed' });
    expect(pooled?.principal?.name).toBe('reporting-agent');

    const review = await buildReview(transcriptsDir(data.dir), { principal: 'reporting-agent', since: new Date('2026-01-01T00:00:00Z'), until: new Date('2026-01-07T00:00:00Z') });
    expect(review.targets.find((t) => t.target === 'shop')?.statements).toBe(5 + 3 + 3); // the pooled session's kept statements, and days 3 and 4's own sessions
    const replay = await loadSession(transcriptsDir(data.dir), 'sess-pooled');
    expect(replay.summary.principal?.name).toBe('reporting-agent');
    expect(replay.entries.filter((e) => e.kind === 'statement')).toHaveLength(5);
    expect(replay.entries.some((e) => e.kind === 'event')).toBe(false);
    expect(renderSessionHeader(replay.summary)).toMatch(/the records before 2026-01-04T00:00:00\.000Z were removed by retention \(8 statements\)/);
  });

  it('a session that started and ended within one segment is not carried over', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, undefined);
    const open = await recordSession(store, 'sess-open', 1);
    await day(store, clock, 0); // day 0's session ends before the rotation
    await open.sessionEnd('client closed');
    await day(store, clock, 1);
    await store.close();
    store = undefined;
    const [first, second, third] = segmentFiles(data.dir).map((f) => readLinesOf(f).filter((l) => l.includes('"session-continued"')));
    expect(first).toEqual([]);
    // Only the session open at the rotation.
    expect(second?.map((l) => (JSON.parse(l) as { sid: string }).sid)).toEqual(['sess-open']);
    expect(third).toEqual([]);
    // Whole store: the carried start changes nothing while the original is there.
    const s = (await listSessions(transcriptsDir(data.dir))).find((x) => x.sessionId === 'sess-open');
    expect(s?.removedStatements).toBeUndefined();
    expect(s?.startedAt).toBe('2026-01-01T00:00:00.000Z');
    expect((await loadSession(transcriptsDir(data.dir), 'sess-open')).entries.map((e) => e.kind)).toEqual(['session-start', 'statement', 'result', 'session-end']);
  });

  it('without retention, removing the oldest segment is reported as before', async () => {
    data = tempDataDir();
    const clock = manualClock('2026-01-01T00:00:00Z');
    store = await openWith(clock, undefined);
    for (let n = 0; n < 3; n++) await day(store, clock, n);
    await store.close();
    store = undefined;
    const first = segmentFiles(data.dir)[0] as string;
    unlinkSync(first);
    expect(existsSync(first)).toBe(false);
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(false);
    expect(report.findings.find((f) => f.kind === 'missing-segment')?.message).toMatch(/the start of instance w1's chain is missing/);
    expect(report.findings.some((f) => f.kind === 'retention')).toBe(false);
  });
});

function firstSeqOf(path: string): number {
  const text = readFileSync(path, 'utf8');
  return (JSON.parse(text.slice(0, text.indexOf('\n'))) as { seq: number }).seq;
}

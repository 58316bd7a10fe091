// The statement and result records as the relays write them under fsync `interval`: serialized by
// hand (the same JSON as JSON.stringify), and a statement whose first result comes back before its
// record is written stored as one line that readers split back into the two records.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expandRecord, GENESIS_HASH, parseLine, type TranscriptRecord } from '../../src/audit/frame.js';
import { readStore } from '../../src/audit/reader.js';
import { resultJson, statementJson, statementMembers } from '../../src/audit/record-json.js';
import { TranscriptStore } from '../../src/audit/recorder.js';
import { loadSession } from '../../src/audit/replay.js';
import type { CapturedRows, ResultData, StatementData } from '../../src/audit/types.js';
import { errorKinds, openStore, PRINCIPAL, readLinesOf, segmentFiles, tempDataDir, transcriptsDir, verifyStore, writeLinesTo } from './audit-support.js';

let data: { dir: string; cleanup: () => void };
let store: TranscriptStore | undefined;

beforeEach(() => {
  data = tempDataDir('warden-audit-merged-');
});
afterEach(async () => {
  await store?.close();
  store = undefined;
  data.cleanup();
});

const text = fc.string({ unit: 'binary', maxLength: 40 });
const opt = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const count = fc.oneof(fc.nat(), fc.double({ noNaN: false }), fc.constantFrom(Number.MAX_SAFE_INTEGER, -0, 1e21));

/** Drops undefined members, as JSON.stringify does. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const statementData: fc.Arbitrary<StatementData> = fc
  .record({
    st: fc.nat(),
    text,
    cls: fc.record({ class: text, relations: fc.array(text, { maxLength: 3 }), kinds: fc.array(text, { maxLength: 2 }) }),
    verdict: fc.constantFrom('allow', 'deny', 'hold', 'mask' as const),
    textBytes: opt(fc.nat()),
    textSha256: opt(text),
    params: opt(fc.array(fc.record({ type: text, value: fc.option(text, { nil: null }), name: opt(text), fullBytes: opt(fc.nat()) }).map(defined), { maxLength: 3 })),
    paramsDropped: opt(fc.nat()),
    rule: opt(text),
    reason: opt(text),
    approval: opt(fc.record({ requestId: text, decision: opt(fc.constantFrom('approved', 'denied', 'expired', 'cancelled' as const)), approver: opt(text), reason: opt(text) }).map(defined)),
    via: opt(text),
    name: opt(text),
  })
  .map((o) => defined(o) as StatementData);

const capture: fc.Arbitrary<CapturedRows> = fc.oneof(
  fc.constant({ mode: 'none' as const }),
  fc.record({ mode: fc.constant('digest' as const), sha256: text, rows: fc.nat() }),
  fc.record({ mode: fc.constant('first' as const), limit: fc.nat(), rows: fc.array(fc.array(fc.option(text, { nil: null }), { maxLength: 3 }), { maxLength: 3 }), truncated: fc.boolean() }),
  fc.record({ mode: fc.constant('all' as const), rows: fc.array(fc.array(fc.option(text, { nil: null }), { maxLength: 3 }), { maxLength: 3 }), truncated: fc.boolean() }),
);

const resultData: fc.Arbitrary<ResultData> = fc
  .record({
    st: fc.nat(),
    columns: fc.array(fc.record({ name: text, type: text, masked: fc.option(text, { nil: null }), table: opt(text) }).map(defined), { maxLength: 4 }),
    rows: count,
    bytes: count,
    capture,
    set: opt(fc.nat()),
    ms: opt(count),
    error: opt(fc.record({ code: text, message: text })),
    tag: opt(text),
  })
  .map((o) => defined(o) as ResultData);

/** What a reader makes of a statement record's `d` as written (frame.ts puts back what format 2 leaves out). */
function readStatement(json: string): unknown {
  return expandRecord({ seq: 1, ts: '2026-01-01T00:00:00.000Z', prev: GENESIS_HASH, k: 'statement', d: JSON.parse(json) as unknown, hash: GENESIS_HASH })[0]?.d;
}

function readResult(json: string): unknown {
  return expandRecord({ seq: 1, ts: '2026-01-01T00:00:00.000Z', prev: GENESIS_HASH, k: 'result', d: JSON.parse(json) as unknown, hash: GENESIS_HASH })[0]?.d;
}

/** The data as JSON.stringify would have written it, read back. */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

describe('hand-built record JSON', () => {
  it('reads back as what JSON.stringify writes, for any statement and result, in no more bytes', () => {
    fc.assert(
      fc.property(statementData, resultData, (st, res) => {
        expect(readStatement(statementJson(st))).toEqual(asJson(st));
        expect(`${statementMembers(st)}}`).toBe(statementJson(st));
        expect(statementJson(st).length).toBeLessThanOrEqual(JSON.stringify(st).length);
        expect(readResult(resultJson(res))).toEqual(asJson(res));
        expect(resultJson(res).length).toBeLessThanOrEqual(JSON.stringify(res).length);
        expect(resultJson(res, false)).toBe(`{${resultJson(res).slice(`{"st":${JSON.stringify(res.st)},`.length)}`);
        expect(readResult(`{"st":${JSON.stringify(res.st)},${resultJson(res, false).slice(1)}`)).toEqual(asJson(res));
        expect(JSON.parse(resultJson(res, false))).not.toHaveProperty('st');
      }),
      { numRuns: 500 },
    );
  });

  it('leaves out the defaults every statement would repeat, and writes the rest as JSON.stringify does', () => {
    const cls = { class: 'read', relations: ['public.t'] };
    expect(statementJson({ st: 1, text: 'SELECT 1', cls, verdict: 'allow', via: 'simple' })).toBe('{"st":1,"text":"SELECT 1","cls":{"class":"read","relations":["public.t"]},"via":"simple"}');
    expect(statementJson({ st: 1, text: 'SELECT 1', cls, verdict: 'mask' })).toBe('{"st":1,"text":"SELECT 1","cls":{"class":"read","relations":["public.t"]},"verdict":"mask"}');
    const columns = [
      { name: 'a', type: 'int4', masked: null },
      { name: 'b', type: 'text', masked: 'email-partial', table: 'public.t' },
    ];
    const sha256 = 'ab'.repeat(32);
    expect(resultJson({ st: 2, columns, rows: 3, bytes: 9, capture: { mode: 'digest', sha256, rows: 3 }, tag: 'SELECT 3' })).toBe(
      `{"st":2,"columns":[{"name":"a","type":"int4"},{"name":"b","type":"text","masked":"email-partial","table":"public.t"}],"rows":3,"bytes":9,"sha256":"${sha256}","tag":"SELECT 3"}`,
    );
    // A digest of fewer rows than the result counts (rows from the command tag) keeps its own count.
    expect(resultJson({ st: 2, columns: [], rows: 5, bytes: 0, capture: { mode: 'digest', sha256, rows: 0 } })).toBe(`{"st":2,"columns":[],"rows":5,"bytes":0,"capture":{"mode":"digest","sha256":"${sha256}","rows":0}}`);
    expect(resultJson({ st: 2, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' } })).toBe('{"st":2,"columns":[],"rows":0,"bytes":0}');
    expect(readResult('{"st":2,"columns":[],"rows":0,"bytes":0}')).toEqual({ st: 2, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' } });
  });

  it('writes durations rounded to microseconds as JSON does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.double({ min: 0, max: 2e9, noNaN: true }), fc.integer({ min: 0, max: 5000 }).map((k) => k / 1000)), (x) => {
        const ms = Math.round(x * 1000) / 1000;
        const d: ResultData = { st: 1, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' }, ms };
        expect(resultJson(d)).toBe(`{"st":1,"columns":[],"rows":0,"bytes":0,"ms":${JSON.stringify(ms)}}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes frozen columns (serialized once per array) as it writes any other', () => {
    fc.assert(
      fc.property(resultData, (res) => {
        const frozen: ResultData = { ...res, columns: Object.freeze(res.columns.map((c) => Object.freeze({ ...c }))) as ResultData['columns'] };
        expect(resultJson(frozen)).toBe(resultJson(res));
        expect(resultJson({ ...frozen, st: frozen.st + 1 })).toBe(resultJson({ ...res, st: res.st + 1 }));
        expect(readResult(resultJson(frozen))).toEqual(asJson(res));
      }),
      { numRuns: 300 },
    );
  });

  it('reuses the serialized classification of a summary object', () => {
    const cls = { class: 'read', relations: ['public.t'] };
    const a = statementJson({ st: 1, text: 'SELECT 1', cls, verdict: 'allow' });
    const b = statementJson({ st: 2, text: 'SELECT 2', cls, verdict: 'allow' });
    expect(a).toContain('"cls":{"class":"read","relations":["public.t"]}');
    expect(b).toContain('"cls":{"class":"read","relations":["public.t"]}');
  });
});

async function startSession(s: TranscriptStore, sessionId: string) {
  const rec = s.recorder();
  await rec.sessionStart({ sessionId, protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
  return rec;
}

const digest: CapturedRows = { mode: 'digest', sha256: 'ab'.repeat(32), rows: 1 };

function fileRecords(): TranscriptRecord[] {
  return segmentFiles(data.dir).flatMap((f) =>
    readLinesOf(f).map((l) => {
      const p = parseLine(Buffer.from(l));
      if (!p.ok || !p.hashOk) throw new Error(`bad line ${l}`);
      return p.record;
    }),
  );
}

async function storeRecords(): Promise<TranscriptRecord[]> {
  const out: TranscriptRecord[] = [];
  for await (const r of readStore(transcriptsDir(data.dir))) out.push(r.record);
  return out;
}

describe('a statement and its result in one record', () => {
  it('joins a result that comes back before the statement is written, and reads it back as two records', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const rec = await startSession(store, 's-1');
    const st = rec.statementNoWait({ text: 'SELECT abalance FROM accounts WHERE aid = 7', classification: { class: 'read', relations: ['accounts'] }, verdict: 'allow', via: 'simple' });
    rec.resultNoWait({ statementId: st, columns: [{ name: 'abalance', type: 'int4', masked: null }], rows: 1, bytes: 11, capture: digest, tag: 'SELECT 1' });
    // A second result set of the same statement is a record of its own.
    rec.resultNoWait({ statementId: st, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' }, tag: 'SELECT 0', set: 2 });
    await rec.sessionEnd('done');
    await store.close();

    const lines = fileRecords();
    expect(lines.map((r) => r.k)).toEqual(['open', 'session-start', 'statement', 'result', 'session-end', 'seal']);
    const merged = lines[2] as TranscriptRecord<StatementData & { result: Omit<ResultData, 'st'> }>;
    // As written (format 2): no verdict `allow`, no `"masked":null`, the digest as `sha256`.
    expect(merged.d).not.toHaveProperty('verdict');
    expect(merged.d.result).toEqual({ columns: [{ name: 'abalance', type: 'int4' }], rows: 1, bytes: 11, sha256: digest.sha256, ms: expect.any(Number), tag: 'SELECT 1' });

    const read = await storeRecords();
    expect(read.map((r) => r.k)).toEqual(['open', 'session-start', 'statement', 'result', 'result', 'session-end', 'seal']);
    const [statement, first, second] = read.slice(2, 5) as TranscriptRecord<Record<string, unknown>>[];
    expect(statement?.d).not.toHaveProperty('result');
    expect(statement?.d).toMatchObject({ st, text: 'SELECT abalance FROM accounts WHERE aid = 7', verdict: 'allow', via: 'simple' });
    expect(first?.d).toMatchObject({ st, columns: [{ name: 'abalance', type: 'int4', masked: null }], rows: 1, capture: digest, tag: 'SELECT 1' });
    expect(Object.keys(first?.d ?? {})[0]).toBe('st');
    expect(first?.seq).toBe(statement?.seq);
    expect(Date.parse(first?.ts ?? '')).toBeGreaterThanOrEqual(Date.parse(statement?.ts ?? ''));
    expect(second?.d).toMatchObject({ st, set: 2, tag: 'SELECT 0', capture: { mode: 'none' } });

    expect((await verifyStore(data.dir)).findings).toEqual([]);
    const replay = await loadSession(transcriptsDir(data.dir), 's-1');
    expect(replay.entries.map((e) => e.kind)).toEqual(['session-start', 'statement', 'result', 'result', 'session-end']);
    expect(replay.summary).toMatchObject({ statements: 1, rows: 1, bytes: 11 });
  });

  it('chains a record as soon as it and the records before it are complete; an open one holds the rest back', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const w = store.writer;
    const a = w.appendOpen('statement', '"a"', '{"st":1');
    const b = w.appendJson('result', '"b"', '{"st":1}');
    const c = w.appendOpen('statement', '"c"', '{"st":1');
    expect([a.chained, b.chained, c.chained]).toEqual([false, false, false]);
    // a's result joins it; a and b are chained at once, c waits for its own.
    expect(w.extend(a, 'result', '{"rows":1}')).toBe(true);
    expect([a.chained, b.chained, c.chained]).toEqual([true, true, false]);
    // Settled without a result: chained, and it can gain nothing more.
    w.settle(c);
    expect(c.chained).toBe(true);
    expect(w.extend(c, 'result', '{"rows":2}')).toBe(false);
    const d = w.appendOpen('statement', '"d"', '{"st":1');
    await store.close(); // writing the batch chains an open record as it is
    store = undefined;
    expect(d.chained).toBe(true);
    const lines = fileRecords();
    expect(lines.map((r) => [r.k, r.sid, r.d])).toEqual([
      ['open', undefined, expect.anything()],
      ['statement', 'a', { st: 1, result: { rows: 1 } }],
      ['result', 'b', { st: 1 }],
      ['statement', 'c', { st: 1 }],
      ['statement', 'd', { st: 1 }],
      ['seal', undefined, expect.anything()],
    ]);
    expect((await verifyStore(data.dir)).findings.filter((f) => f.kind !== 'open-segment')).toEqual([]);
  });

  it('holds an open statement over one batch write under fsync interval, so a result just after it still joins it', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const w = store.writer;
    const write = (): boolean => (w as unknown as { flushNow(): boolean }).flushNow();
    const a = w.appendOpen('statement', '"a"', '{"st":1');
    const b = w.appendJson('result', '"b"', '{"st":9}');
    write(); // a is held over, and b behind it
    expect([a.chained, b.chained]).toEqual([false, false]);
    expect(w.extend(a, 'result', '{"rows":1}')).toBe(true);
    const c = w.appendOpen('statement', '"c"', '{"st":1');
    write(); // a (with its result) and b go out; c is held over
    expect([a.chained, b.chained, c.chained]).toEqual([true, true, false]);
    write(); // c was held over once: it goes out as it is
    expect(c.chained).toBe(true);
    expect(w.extend(c, 'result', '{"rows":2}')).toBe(false);
    // A record someone waits for is never held back behind an open one.
    const d = w.appendOpen('statement', '"d"', '{"st":1');
    const e = w.appendJson('event', '"e"', '{"kind":"x"}', true);
    write();
    expect([d.chained, e.chained]).toEqual([true, true]);
    await e.done;
    // Held over with nothing appended after it: the next batch write comes anyway.
    const f = w.appendOpen('statement', '"f"', '{"st":1');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(f.chained).toBe(true);
    expect(readFileSync(w.activeFile, 'utf8')).toContain('"sid":"f"');
    await store.close();
    store = undefined;
    expect(fileRecords().map((r) => [r.k, r.sid, r.d])).toEqual([
      ['open', undefined, expect.anything()],
      ['statement', 'a', { st: 1, result: { rows: 1 } }],
      ['result', 'b', { st: 9 }],
      ['statement', 'c', { st: 1 }],
      ['statement', 'd', { st: 1 }],
      ['event', 'e', { kind: 'x' }],
      ['statement', 'f', { st: 1 }],
      ['seal', undefined, expect.anything()],
    ]);
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });

  it('holds nothing over a batch write under fsync each', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000, fsync: 'each' });
    const w = store.writer;
    const a = w.appendOpen('statement', '"a"', '{"st":1');
    (w as unknown as { flushNow(): boolean }).flushNow();
    expect(a.chained).toBe(true);
  });

  it('a waited-for result that joins a statement held behind an open one resolves once it is written', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const w = store.writer;
    const a = w.appendOpen('statement', '"a"', '{"st":1');
    const b = w.appendOpen('statement', '"b"', '{"st":1');
    const joined = w.extend(b, 'result', '{"rows":1}', true) as Promise<void>;
    (w as unknown as { flushNow(): boolean }).flushNow();
    expect([a.chained, b.chained]).toEqual([true, true]);
    await joined;
    expect(readFileSync(w.activeFile, 'utf8')).toContain('"sid":"b","d":{"st":1,"result":{"rows":1}}');
  });

  it('times the results of pipelined statements from their own statements, up to 4096 open ones', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 100_000 });
    const rec = await startSession(store, 's-pipe');
    const cls = { class: 'read', relations: [] };
    const ids: number[] = [];
    for (let i = 0; i < 5000; i++) ids.push(rec.statementNoWait({ text: `SELECT ${i}`, classification: cls, verdict: 'allow' }));
    // Statements 1 to 904 were dropped from the 4096 open ones kept; 905 on are timed; a result
    // closes the statements before it, and a second result set is timed like the first.
    for (const st of [1, 904, 905, 906, 4999, 4999, 5000, 3]) {
      rec.resultNoWait({ statementId: st, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' }, ...(st === 4999 ? { set: 2 } : {}) });
    }
    await rec.sessionEnd('done');
    await store.close();
    const results = (await storeRecords()).filter((r) => r.k === 'result').map((r) => r.d as ResultData);
    expect(results.map((r) => [r.st, r.ms !== undefined])).toEqual([
      [1, false],
      [904, false],
      [905, true],
      [906, true],
      [4999, true],
      [4999, true],
      [5000, true],
      [3, false],
    ]);
    expect(ids[4999]).toBe(5000);
  });

  it('writes the result apart when the statement was written first, or another record of the session came between', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const rec = await startSession(store, 's-2');
    const cls = { class: 'write', relations: ['orders'] };
    const a = await rec.statement({ text: 'DELETE FROM orders WHERE id = 1', classification: cls, verdict: 'hold', approval: { requestId: 'r-1' } });
    rec.resultNoWait({ statementId: a, columns: [], rows: 1, bytes: 0, capture: { mode: 'none' }, tag: 'DELETE 1' });
    const b = rec.statementNoWait({ text: 'DELETE FROM orders WHERE id = 2', classification: cls, verdict: 'hold', approval: { requestId: 'r-2' } });
    await rec.statementDecision({ statementId: b, decision: 'approved', approver: 'alice', reason: 'ok' });
    rec.resultNoWait({ statementId: b, columns: [], rows: 1, bytes: 0, capture: { mode: 'none' }, tag: 'DELETE 1' });
    const c = rec.statementNoWait({ text: 'SELECT 1', classification: { class: 'read', relations: [] }, verdict: 'allow' });
    await rec.event({ kind: 'notice', statementId: c, message: 'hello' });
    rec.resultNoWait({ statementId: c, columns: [], rows: 1, bytes: 0, capture: { mode: 'none' } });
    await rec.sessionEnd('done');
    await store.close();
    const kinds = fileRecords().map((r) => r.k);
    expect(kinds).toEqual(['open', 'session-start', 'statement', 'result', 'statement', 'decision', 'result', 'statement', 'event', 'result', 'session-end', 'seal']);
    expect(fileRecords().some((r) => 'result' in (r.d as object))).toBe(false);
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });

  it('keeps each session in order when several sessions interleave in one batch', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const recs = await Promise.all(['s-a', 's-b', 's-c'].map((id) => startSession(store as TranscriptStore, id)));
    for (let i = 0; i < 5; i++) {
      const ids = recs.map((r) => r.statementNoWait({ text: `SELECT ${i}`, classification: { class: 'read', relations: [] }, verdict: 'allow' }));
      recs.forEach((r, n) => r.resultNoWait({ statementId: ids[n] as number, columns: [], rows: i, bytes: 0, capture: { mode: 'none' } }));
    }
    await store.close();
    const lines = fileRecords();
    expect(lines.filter((r) => r.k === 'result')).toHaveLength(0);
    lines.forEach((r, i) => expect(r.seq).toBe(i + 1));
    const read = await storeRecords();
    for (const sid of ['s-a', 's-b', 's-c']) {
      const mine = read.filter((r) => r.sid === sid && (r.k === 'statement' || r.k === 'result'));
      expect(mine.map((r) => `${r.k}:${(r.d as { st: number }).st}`)).toEqual([1, 2, 3, 4, 5].flatMap((st) => [`statement:${st}`, `result:${st}`]));
      expect(mine.filter((r) => r.k === 'result').map((r) => (r.d as ResultData).rows)).toEqual([0, 1, 2, 3, 4]);
    }
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });

  it('detects an edit to the result inside a statement record', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000 });
    const rec = await startSession(store, 's-3');
    const st = rec.statementNoWait({ text: 'SELECT email FROM customers', classification: { class: 'read', relations: ['customers'] }, verdict: 'allow' });
    rec.resultNoWait({ statementId: st, columns: [{ name: 'email', type: 'text', masked: 'email' }], rows: 20, bytes: 400, capture: digest, tag: 'SELECT 20' });
    await store.close();
    const [file] = segmentFiles(data.dir);
    const lines = readLinesOf(file as string);
    const at = lines.findIndex((l) => l.includes('"rows":20'));
    expect(at).toBeGreaterThan(0);
    lines[at] = (lines[at] as string).replace('"rows":20', '"rows":2');
    writeLinesTo(file as string, lines);
    expect(readFileSync(file as string, 'utf8')).toContain('"rows":2,');
    expect(errorKinds(await verifyStore(data.dir))).toEqual(['edited']);
  });

  it('refuses to join a result that would take the record over the size limit', async () => {
    store = await openStore(data.dir, { limits: { textBytes: 1 << 20, valueBytes: 1 << 20, params: 10, captureBytes: 1 << 20, messageBytes: 1 << 20, recordBytes: 4096 } });
    const rec = await startSession(store, 's-4');
    const st = rec.statementNoWait({ text: 'x'.repeat(3000), classification: { class: 'read', relations: [] }, verdict: 'allow' });
    rec.resultNoWait({ statementId: st, columns: [], rows: 0, bytes: 0, capture: { mode: 'none' }, error: { code: '42000', message: 'y'.repeat(2000) } });
    await store.close();
    expect(fileRecords().map((r) => r.k)).toEqual(['open', 'session-start', 'statement', 'result', 'seal']);
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });
});

describe('expandRecord', () => {
  it('leaves every other record as it is', () => {
    const r: TranscriptRecord = { seq: 4, ts: '2026-01-01T00:00:00.000Z', prev: GENESIS_HASH, k: 'statement', sid: 's', d: { st: 1, text: 'SELECT 1', verdict: 'deny' }, hash: GENESIS_HASH };
    expect(expandRecord(r)).toEqual([r]);
    // Format 2 leaves a verdict `allow` out; readers get it back.
    expect(expandRecord({ ...r, d: { st: 1, text: 'SELECT 1' } })).toEqual([{ ...r, d: { st: 1, text: 'SELECT 1', verdict: 'allow' } }]);
    expect(expandRecord({ ...r, k: 'event', d: { kind: 'x', result: { rows: 1 } } })).toHaveLength(1);
    expect(expandRecord({ ...r, d: { st: 1, result: 'not an object' } })).toHaveLength(1);
  });

  it('moves the result on by its duration', () => {
    const r: TranscriptRecord = {
      seq: 4,
      ts: '2026-01-01T00:00:00.000Z',
      prev: GENESIS_HASH,
      k: 'statement',
      sid: 's',
      d: { st: 3, text: 'SELECT 1', result: { columns: [], rows: 1, bytes: 0, capture: { mode: 'none' }, ms: 1500.4 } },
      hash: GENESIS_HASH,
    };
    const [st, res] = expandRecord(r);
    expect(st?.d).toEqual({ st: 3, text: 'SELECT 1', verdict: 'allow' });
    expect(res).toMatchObject({ k: 'result', seq: 4, sid: 's', ts: '2026-01-01T00:00:01.500Z', d: { st: 3, rows: 1, ms: 1500.4 } });
  });
});

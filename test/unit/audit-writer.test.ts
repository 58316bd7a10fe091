// The recorder and segment writer: what lands in the files, chain continuity across rotation and
// restarts, checkpoints, limits, locking, and failing closed when the file cannot be written.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/audit/config.js';
import { TranscriptWriteError } from '../../src/audit/errors.js';
import { parseLine, type TranscriptRecord } from '../../src/audit/frame.js';
import { peekMark } from '../../src/audit/jws.js';
import { RowCapture, TranscriptStore, type Recorder } from '../../src/audit/recorder.js';
import type { OpenData } from '../../src/audit/segment-writer.js';
import type { ResultData, SessionStartData, StatementData, StatementInfo } from '../../src/audit/types.js';
import { openStore, PRINCIPAL, readLinesOf, recordSession, segmentFiles, tempDataDir, testConfig, transcriptsDir, verifyStore } from './audit-support.js';

let data: { dir: string; cleanup: () => void };
let store: TranscriptStore | undefined;

beforeEach(() => {
  data = tempDataDir();
});
afterEach(async () => {
  await store?.close();
  store = undefined;
  data.cleanup();
});

function records(path: string): TranscriptRecord[] {
  return readLinesOf(path).map((l) => {
    const p = parseLine(Buffer.from(l));
    if (!p.ok || !p.hashOk) throw new Error(`bad line ${l}`);
    return p.record;
  });
}

function allRecords(dataDir: string): TranscriptRecord[] {
  return segmentFiles(dataDir).flatMap(records);
}

describe('recorder → segment files → verify', () => {
  it('writes each call as one chained record, in order, and the store verifies', async () => {
    store = await openStore(data.dir, { fsync: 'each' });
    const rec = store.recorder();
    await rec.sessionStart({
      sessionId: 's-1',
      protocol: 'tds',
      target: 'sales',
      // A principal object that also carries a token: only whitelisted fields may be copied.
      principal: { ...PRINCIPAL, expiresAt: new Date('2026-01-01T00:00:00Z'), token: 'eyJhbGciOi.secret.token' } as typeof PRINCIPAL,
      client: { address: '10.0.0.5', port: 50123, tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, application: 'agent-x' },
    });
    const st = await rec.statement({
      text: 'EXEC sp_executesql N\'SELECT * FROM dbo.customers WHERE id = @id\'',
      params: [{ name: '@id', type: 'int', value: '7' }],
      classification: { class: 'read', relations: ['dbo.customers'] },
      verdict: 'hold',
      approval: { requestId: 'req-1' },
      via: 'rpc',
    });
    expect(st).toBe(1);
    await rec.statementDecision({ statementId: st, decision: 'approved', approver: 'alice@example.com', reason: 'ticket 42' });
    await rec.result({
      statementId: st,
      columns: [{ name: 'email', type: 'nvarchar', masked: 'email' }],
      rows: 1,
      bytes: 33,
      capture: { mode: 'all', rows: [['a***@example.com']], truncated: false },
    });
    await rec.event({ kind: 'notice', message: 'hello' });
    await rec.sessionEnd('client closed');
    await store.close();

    const all = allRecords(data.dir);
    expect(all.map((r) => r.k)).toEqual(['open', 'session-start', 'statement', 'decision', 'result', 'event', 'session-end', 'seal']);
    all.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      if (i > 0) expect(r.prev).toBe(all[i - 1]?.hash);
    });
    const start = all[1]?.d as SessionStartData;
    expect(start.principal).toEqual({ ...PRINCIPAL, tokenExpiresAt: '2026-01-01T00:00:00.000Z' });
    expect(start.client.tls).toEqual({ version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    const text = segmentFiles(data.dir).map((f) => readFileSync(f, 'utf8')).join('');
    expect(text).not.toContain('secret.token');
    expect((all[2]?.d as StatementData).params).toEqual([{ name: '@id', type: 'int', value: '7' }]);
    expect(all[2]?.sid).toBe('s-1');
    expect((all[4]?.d as ResultData).ms).toBeGreaterThanOrEqual(0);

    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(true);
    expect(report.findings).toEqual([]);
  });

  it('resolves `each` promises only once the record is in the file', async () => {
    store = await openStore(data.dir, { fsync: 'each' });
    const rec = store.recorder();
    await rec.sessionStart({ sessionId: 's-each', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    for (let i = 0; i < 5; i++) {
      const st = await rec.statement({ text: `SELECT ${i}`, classification: { class: 'read', relations: [] }, verdict: 'allow' });
      const onDisk = readFileSync(store.writer.activeFile, 'utf8');
      expect(onDisk).toContain(`"st":${st},"text":"SELECT ${i}"`);
    }
  });

  it('cuts long text and values to the limits, keeping the full size and a digest', async () => {
    store = await openStore(data.dir, { limits: { textBytes: 100, valueBytes: 10, params: 2, captureBytes: 25, messageBytes: 50, recordBytes: 64 * 1024 } });
    const rec = store.recorder();
    await rec.sessionStart({ sessionId: 's-big', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    const text = `SELECT '${'x'.repeat(500)}'`;
    const st = await rec.statement({
      text,
      params: [{ type: 'text', value: 'y'.repeat(50) }, { type: 'int4', value: '1' }, { type: 'int4', value: '2' }],
      classification: { class: 'read', relations: [] },
      verdict: 'allow',
    });
    await rec.result({ statementId: st, columns: [], rows: 3, bytes: 0, capture: { mode: 'all', rows: [['a'.repeat(20)], ['b'.repeat(20)], ['c'.repeat(20)]], truncated: false } });
    await store.close();
    const all = allRecords(data.dir);
    const s = all.find((r) => r.k === 'statement')?.d as StatementData;
    expect(Buffer.byteLength(s.text)).toBe(100);
    expect(s.textBytes).toBe(Buffer.byteLength(text));
    expect(s.textSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.params).toEqual([{ type: 'text', value: 'y'.repeat(10), fullBytes: 50 }, { type: 'int4', value: '1' }]);
    expect(s.paramsDropped).toBe(1);
    const r = all.find((x) => x.k === 'result')?.d as ResultData;
    expect(r.capture).toEqual({ mode: 'all', rows: [['a'.repeat(10)], ['b'.repeat(10)]], truncated: true });
  });

  it('refuses a record over the hard cap without harming the writer', async () => {
    store = await openStore(data.dir, { limits: { textBytes: 1 << 20, valueBytes: 1 << 20, params: 10, captureBytes: 1 << 20, messageBytes: 1000, recordBytes: 4096 } });
    const rec = store.recorder();
    await rec.sessionStart({ sessionId: 's-cap', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    const err = await rec.statement({ text: 'x'.repeat(10_000), classification: { class: 'read', relations: [] }, verdict: 'allow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TranscriptWriteError);
    expect((err as TranscriptWriteError).code).toBe('ERECORDTOOLARGE');
    expect(store.healthy).toBe(true);
    await expect(rec.statement({ text: 'SELECT 1', classification: { class: 'read', relations: [] }, verdict: 'allow' })).resolves.toBe(2);
    await store.close();
    expect((await verifyStore(data.dir)).ok).toBe(true);
  });

  it('refuses a record that cannot be encoded as JSON, and stays healthy', async () => {
    store = await openStore(data.dir);
    const rec = store.recorder();
    await rec.sessionStart({ sessionId: 's-enc', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    const cls = { class: 'read', relations: [], oops: 1n } as unknown as { class: string; relations: string[] };
    const err = await rec.statement({ text: 'SELECT 1', classification: cls, verdict: 'allow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TranscriptWriteError);
    expect((err as TranscriptWriteError).code).toBe('EENCODE');
    expect(store.healthy).toBe(true);
  });

  it('rejects calls out of order', async () => {
    store = await openStore(data.dir);
    const rec: Recorder = store.recorder();
    await expect(rec.statement({ text: 'SELECT 1', classification: { class: 'read', relations: [] }, verdict: 'allow' })).rejects.toThrow(/before sessionStart/);
    await rec.sessionStart({ sessionId: 's', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    await rec.sessionEnd('done');
    await expect(rec.event({ kind: 'notice' })).rejects.toThrow(/outside a session/);
  });
});

describe('segments, checkpoints, restarts', () => {
  it('rotates by size, links every segment to the previous one, and signs checkpoints', async () => {
    store = await openStore(data.dir, { segmentMaxBytes: 8 * 1024, checkpointEveryRecords: 10 });
    await recordSession(store, 's-rot', 40);
    await store.close();
    const files = segmentFiles(data.dir);
    expect(files.length).toBeGreaterThan(3);
    let previousLast: TranscriptRecord | undefined;
    files.forEach((file, i) => {
      const recs = records(file);
      const open = recs[0]?.d as OpenData;
      expect(open.segment).toBe(i + 1);
      expect(recs[recs.length - 1]?.k).toBe('seal');
      if (previousLast) {
        expect(open.after).toMatchObject({ segment: i, lastSeq: previousLast.seq, lastHash: previousLast.hash, sealed: true });
        expect(recs[0]?.prev).toBe(previousLast.hash);
      } else {
        expect(open.after).toBeNull();
      }
      previousLast = recs[recs.length - 1];
      for (const r of recs.filter((x) => x.k === 'checkpoint')) {
        const mark = peekMark((r.d as { jws: string }).jws);
        expect(mark?.seq).toBe(r.seq - 1);
        expect(mark?.hash).toBe(r.prev);
      }
    });
    expect(allRecords(data.dir).filter((r) => r.k === 'checkpoint').length).toBeGreaterThanOrEqual(files.length - 1);
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });

  it('signs a checkpoint after the interval even below the record count, and publishes it in the head file', async () => {
    store = await openStore(data.dir, { checkpointEveryRecords: 1000, checkpointIntervalMs: 30, fsyncIntervalMs: 10 });
    await recordSession(store, 's-time', 2);
    const deadline = Date.now() + 3000;
    const headPath = join(transcriptsDir(data.dir), 'w1.head.json');
    let head: string | undefined;
    while (Date.now() < deadline) {
      try {
        head = readFileSync(headPath, 'utf8');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(head).toBeDefined();
    expect(peekMark((JSON.parse(head as string) as { jws: string }).jws)?.typ).toBe('checkpoint');
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(true);
    expect(report.instances[0]?.lastSigned).toBeGreaterThanOrEqual(5);
  });

  it('continues the chain across a restart of the same instance', async () => {
    store = await openStore(data.dir);
    await recordSession(store, 's-1', 3);
    await store.close();
    store = await openStore(data.dir);
    await recordSession(store, 's-2', 3);
    await store.close();
    const files = segmentFiles(data.dir);
    expect(files).toHaveLength(2);
    const second = records(files[1] as string);
    const firstLast = records(files[0] as string).pop();
    expect((second[0]?.d as OpenData).after).toMatchObject({ segment: 1, lastSeq: firstLast?.seq, sealed: true, tornBytes: 0 });
    expect((await verifyStore(data.dir)).findings).toEqual([]);
  });

  it('allows one writer per instance', async () => {
    store = await openStore(data.dir);
    const err = await TranscriptStore.open(testConfig(data.dir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TranscriptWriteError);
    expect((err as TranscriptWriteError).code).toBe('ELOCKED');
    const other = await TranscriptStore.open(testConfig(data.dir, { instanceId: 'w2' }));
    await other.close();
    expect(readdirSync(transcriptsDir(data.dir)).filter((n) => n.startsWith('w2_'))).toHaveLength(1);
  });

  it('takes over a lock left by an earlier process with the same pid (a restarted container)', async () => {
    mkdirSync(transcriptsDir(data.dir), { recursive: true });
    writeFileSync(join(transcriptsDir(data.dir), 'w1.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00Z' }));
    store = await openStore(data.dir);
    expect(store.healthy).toBe(true);
  });

  it('fails closed when the segment file cannot be written, and keeps what was written', async () => {
    const unhealthy: TranscriptWriteError[] = [];
    store = await TranscriptStore.open(testConfig(data.dir, { fsync: 'each' }), { onUnhealthy: (e) => unhealthy.push(e) });
    const rec = await recordSession(store, 's-fd', 3);
    closeSync(store.writer.activeFd); // the descriptor goes away under the writer (EBADF)
    const err = await rec.statement({ text: 'SELECT 2', classification: { class: 'read', relations: [] }, verdict: 'allow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TranscriptWriteError);
    expect((err as TranscriptWriteError).code).toBe('EBADF');
    expect(store.healthy).toBe(false);
    expect(store.health()).toMatchObject({ healthy: false, code: 'EBADF' });
    expect(unhealthy).toHaveLength(1);
    await expect(rec.sessionEnd('x')).rejects.toBeInstanceOf(TranscriptWriteError);
    await expect(store.recorder().sessionStart({ sessionId: 'n', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } })).rejects.toBeInstanceOf(
      TranscriptWriteError,
    );
    await store.close();
    store = undefined;
    const report = await verifyStore(data.dir);
    expect(report.ok).toBe(true);
    expect(report.findings.map((f) => f.kind)).toEqual(['open-segment']);
  });
});

describe('sessions still open at a rotation', () => {
  it('are carried over into the new segment, at most half a segment of them', async () => {
    // The 30 starts (~550 bytes each) fit in the first segment, but not in half of one.
    store = await openStore(data.dir, { segmentMaxBytes: 24 * 1024 });
    const open: Recorder[] = [];
    for (let i = 0; i < 30; i++) open.push(await recordSession(store, `s-${String(i).padStart(2, '0')}`, 0));
    // One session runs statements until the writer has rotated three times.
    const busy = open[0] as Recorder;
    const deadline = Date.now() + 10_000;
    let n = 0;
    while (segmentFiles(data.dir).length < 4 && Date.now() < deadline) {
      const st = await busy.statement({ text: `SELECT ${n++}`, classification: { class: 'read', relations: [] }, verdict: 'allow' });
      await busy.result({ statementId: st, columns: [{ name: 'x', type: 'int4', masked: null }], rows: 1, bytes: 10, capture: { mode: 'none' } });
    }
    for (const r of open) await r.sessionEnd('client closed');
    await store.close();
    store = undefined;
    const [first, ...later] = segmentFiles(data.dir);
    expect(later.length).toBeGreaterThanOrEqual(3);
    expect(readLinesOf(first as string).some((l) => l.includes('"session-continued"'))).toBe(false);
    for (const [i, file] of later.entries()) {
      const lines = readLinesOf(file);
      const carried = lines.filter((l) => l.includes('"session-continued"'));
      // The sessions opened last are left out.
      expect(carried.length).toBeGreaterThan(3);
      expect(carried.length).toBeLessThan(30);
      expect(carried.reduce((a, l) => a + Buffer.byteLength(l) + 1, 0)).toBeLessThanOrEqual((24 * 1024) / 2);
      // Right after the segment's open record; the rest of a full segment is the busy session's
      // work (the last one holds the sessions' ends).
      expect(lines.slice(1, 1 + carried.length)).toEqual(carried);
      if (i < later.length - 1) expect(lines.filter((l) => l.includes('"k":"statement"')).length).toBeGreaterThan(5);
    }
    expect((await verifyStore(data.dir)).ok).toBe(true);
  });
});

describe('a segment taken away from the writer', () => {
  const statement: StatementInfo = { text: 'SELECT 2', classification: { class: 'read', relations: [] }, verdict: 'allow' };

  it('fails closed at the next write when its live segment is removed', async () => {
    const unhealthy: TranscriptWriteError[] = [];
    store = await TranscriptStore.open(testConfig(data.dir, { fsync: 'each' }), { onUnhealthy: (e) => unhealthy.push(e) });
    const rec = await recordSession(store, 's-rm', 2);
    const file = store.writer.activeFile;
    unlinkSync(file);
    const err = await rec.statement(statement).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TranscriptWriteError);
    expect((err as TranscriptWriteError).code).toBe('EREMOVED');
    expect((err as Error).message).toContain(`${file.split('/').pop()} was removed or moved while warden was writing it`);
    expect(store.health()).toMatchObject({ healthy: false, code: 'EREMOVED' });
    expect(unhealthy).toHaveLength(1);
    await expect(rec.statement(statement)).rejects.toBeInstanceOf(TranscriptWriteError);
  });

  it('fails closed within a tick when its live segment is renamed', async () => {
    store = await openStore(data.dir, { fsync: 'interval', fsyncIntervalMs: 20 });
    const rec = await recordSession(store, 's-mv', 2);
    expect(store.healthy).toBe(true);
    renameSync(store.writer.activeFile, join(transcriptsDir(data.dir), 'moved-away.jsonl'));
    const deadline = Date.now() + 5_000;
    while (store.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(store.health()).toMatchObject({ healthy: false, code: 'EREMOVED' });
    await expect(rec.statement(statement)).rejects.toBeInstanceOf(TranscriptWriteError);
  });

  it('a segment opened by age holds its open record at once, so verify sees no writer that died creating it', async () => {
    store = await openStore(data.dir, { fsync: 'interval', fsyncIntervalMs: 20, segmentMaxAgeMs: 100 });
    await recordSession(store, 's-age', 2);
    const deadline = Date.now() + 5_000;
    while (segmentFiles(data.dir).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const files = segmentFiles(data.dir);
    expect(files.length).toBeGreaterThanOrEqual(2);
    // Its open record, and the start of the session still open, carried over.
    expect(records(files.at(-1) as string).map((r) => [r.k, r.sid])).toEqual([
      ['open', undefined],
      ['event', 's-age'],
    ]);
    // The head file names the seal once it is durable, just after.
    const head = join(transcriptsDir(data.dir), 'w1.head.json');
    while (!existsSync(head) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const report = await verifyStore(data.dir);
    expect(report.findings.map((f) => f.kind)).toEqual(['open-segment']);
  });

  it('a start that cannot write its first record leaves no empty segment behind', async () => {
    store = await openStore(data.dir);
    await recordSession(store, 's-ok', 1);
    await store.close();
    store = undefined;
    const before = segmentFiles(data.dir);
    // A record limit the segment's own `open` record exceeds: the start fails after making its file.
    for (let i = 0; i < 2; i++) {
      await expect(openStore(data.dir, { limits: { ...DEFAULT_LIMITS, recordBytes: 64 } })).rejects.toBeInstanceOf(TranscriptWriteError);
    }
    expect(segmentFiles(data.dir)).toEqual(before);
    store = await openStore(data.dir);
    await recordSession(store, 's-after', 1);
    await store.close();
    store = undefined;
    const report = await verifyStore(data.dir);
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('record times', () => {
  it('are the ISO form of the clock, millisecond by millisecond, across seconds and days', async () => {
    const times = [
      Date.UTC(2026, 10, 29, 23, 59, 58, 999), Date.UTC(2026, 10, 29, 23, 59, 59, 0), Date.UTC(2026, 10, 29, 23, 59, 59, 7),
      Date.UTC(2026, 10, 29, 23, 59, 59, 42), Date.UTC(2026, 10, 29, 23, 59, 59, 999), Date.UTC(2026, 10, 30, 0, 0, 0, 0),
      Date.UTC(2026, 10, 30, 0, 0, 0, 100), Date.UTC(2026, 10, 30, 0, 0, 1, 10), 0, 999, 1000, 1_700_000_000_123.5,
    ];
    let now = times[0] as number;
    store = await TranscriptStore.open(testConfig(data.dir), { clock: () => now });
    const rec = store.recorder();
    await rec.sessionStart({ sessionId: 's', protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '127.0.0.1', port: 1, tls: null } });
    for (const t of times) {
      now = t;
      await rec.event({ kind: 'notice', message: String(t) });
    }
    await store.close();
    store = undefined;
    const events = segmentFiles(data.dir).flatMap(records).filter((r) => r.k === 'event');
    expect(events.map((r) => r.ts)).toEqual(times.map((t) => new Date(t).toISOString()));
  });
});

describe('RowCapture', () => {
  it('digests the rows as sent', () => {
    const c = new RowCapture({ mode: 'digest', firstRows: 0 });
    expect(c.wantsWire).toBe(true);
    expect(c.wantsValues).toBe(false);
    c.add(Buffer.from('row-1'));
    c.add(Buffer.from('row-2'));
    // A running SHA-256 over the rows as sent is the SHA-256 of their concatenation.
    expect(c.finish()).toEqual({ mode: 'digest', rows: 2, sha256: createHash('sha256').update('row-1row-2').digest('hex') });
    expect(c.bytes).toBe(10);
  });

  it('digests no rows, one row, a few rows and many rows as the SHA-256 of the rows as sent', () => {
    for (const n of [0, 1, 3, 2000]) {
      const c = new RowCapture({ mode: 'digest', firstRows: 0 });
      const rows = Array.from({ length: n }, (_, i) => Buffer.from(`D-row-${i}-${'x'.repeat(i % 17)}`));
      for (const r of rows) c.add(r);
      expect(c.finish()).toEqual({ mode: 'digest', rows: n, sha256: createHash('sha256').update(Buffer.concat(rows)).digest('hex') });
    }
  });

  it('keeps the first N rows and says when there were more', () => {
    const c = new RowCapture({ mode: 'first', firstRows: 2 });
    for (let i = 0; i < 5; i++) {
      c.add(null, c.wantsValues ? [String(i), null] : undefined);
    }
    expect(c.finish()).toEqual({ mode: 'first', limit: 2, rows: [['0', null], ['1', null]], truncated: true });
  });
});

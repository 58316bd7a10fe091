// Shared by the transcript tests: temporary data directories, a store with small segments, a
// scripted session, and file surgery helpers for the tamper tests.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { transcriptConfig, type TranscriptConfig } from '../../src/audit/config.js';
import { loadVerifyKey } from '../../src/audit/keys.js';
import { RowCapture, TranscriptStore, type Recorder } from '../../src/audit/recorder.js';
import { parseSegmentFileName } from '../../src/audit/segment-files.js';
import { verify, type VerifyReport } from '../../src/audit/verify.js';

export function tempDataDir(prefix = 'warden-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function testConfig(dataDir: string, overrides: Partial<TranscriptConfig> = {}): TranscriptConfig {
  return transcriptConfig(dataDir, { instanceId: 'w1', fsync: 'interval', checkpointEveryRecords: 10, ...overrides });
}

export async function openStore(dataDir: string, overrides: Partial<TranscriptConfig> = {}): Promise<TranscriptStore> {
  return TranscriptStore.open(testConfig(dataDir, overrides));
}

export const PRINCIPAL = {
  name: 'reporting-agent',
  issuer: 'https://login.example.test/tenant/v2.0',
  issuerName: 'dev',
  subject: 'app-1234',
  appId: 'app-1234',
  roles: ['reader'],
  groups: [],
};

/** Records one session of `statements` simple statements with results. Returns the recorder. */
export async function recordSession(store: TranscriptStore, sessionId: string, statements: number, target = 'shop'): Promise<Recorder> {
  const rec = store.recorder();
  await rec.sessionStart({ sessionId, protocol: 'postgres', target, principal: PRINCIPAL, client: { address: '127.0.0.1', port: 50000, tls: null } });
  await recordStatements(rec, statements);
  return rec;
}

/** Records `statements` masked reads with their results in an open session (`from`: the first one's number in their text). */
export async function recordStatements(rec: Recorder, statements: number, from = 0): Promise<void> {
  for (let n = 0; n < statements; n++) {
    const i = from + n;
    const st = await rec.statement({
      text: `SELECT id, email FROM customers WHERE id = $1 /* ${i} */`,
      params: [{ type: 'int4', value: String(i) }],
      classification: { class: 'read', relations: ['public.customers'] },
      verdict: 'mask',
    });
    await rec.result({
      statementId: st,
      columns: [
        { name: 'id', type: 'int4', masked: null },
        { name: 'email', type: 'text', masked: 'email-partial' },
      ],
      rows: 1,
      bytes: 40,
      capture: { mode: 'first', limit: 5, rows: [[String(i), 'j***@example.com']], truncated: false },
      tag: 'SELECT 1',
    });
  }
}

export function transcriptsDir(dataDir: string): string {
  return join(dataDir, 'transcripts');
}

/** Segment files of an instance in chain order (full paths). */
export function segmentFiles(dataDir: string, instance = 'w1'): string[] {
  const dir = transcriptsDir(dataDir);
  return readdirSync(dir)
    .map((n) => parseSegmentFileName(n))
    .filter((s): s is NonNullable<typeof s> => s !== undefined && s.instance === instance)
    .sort((a, b) => a.index - b.index)
    .map((s) => join(dir, s.name));
}

/** A file's lines without the final empty string (the text after the last '\n'). */
export function readLinesOf(path: string): string[] {
  const parts = readFileSync(path, 'utf8').split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function writeLinesTo(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
}

export async function verifyStore(dataDir: string): Promise<VerifyReport> {
  const key = await loadVerifyKey(join(dataDir, 'keys', 'transcript-ed25519.pub.pem'));
  return verify(transcriptsDir(dataDir), { publicKey: key });
}

export function errorKinds(report: VerifyReport): string[] {
  return [...new Set(report.findings.filter((f) => f.severity === 'error').map((f) => f.kind))].sort();
}

/**
 * Records a session of `statements` statements and its end, moves `clock` on by `ms` and waits for the store's
 * tick to rotate (a store whose segments rotate by age, ticking often).
 */
export async function recordThenRotate(store: TranscriptStore, clock: { advance: (ms: number) => void }, sessionId: string, statements: number, ms: number): Promise<void> {
  await (await recordSession(store, sessionId, statements)).sessionEnd('client closed');
  const before = store.health().segment;
  clock.advance(ms);
  await vi.waitFor(() => expect(store.health().segment).not.toBe(before), { timeout: 5000, interval: 10 });
}

/** A clock the scenario moves by hand. */
export function manualClock(startIso: string): { now: () => number; advance: (ms: number) => void; set: (iso: string) => void } {
  let t = Date.parse(startIso);
  return { now: () => t, advance: (ms) => (t += ms), set: (iso) => (t = Date.parse(iso)) };
}

export const SCENARIO = {
  /** reporting-agent on shop: masked read, approved delete, policy-denied DDL, approver-denied update. */
  a: 'sess-a-7f3e9c',
  /** reporting-agent on sales (TDS): a read with an error. */
  b: 'sess-b-41d2aa',
  /** other-agent on shop. */
  c: 'sess-c-90be17',
  /** reporting-agent on archive, in December (outside January reviews). */
  d: 'sess-d-0c55f1',
  /** reporting-agent on shop: quick statements, each one line with its result (recordQuickStatements). */
  e: 'sess-e-5a5a5a',
} as const;

const OTHER = { ...PRINCIPAL, name: 'other-agent', subject: 'app-9999', appId: 'app-9999', roles: [] };

/** Several sessions with holds, approvals, denials and masked columns, at fixed times. */
export async function recordScenario(dataDir: string): Promise<void> {
  const clock = manualClock('2025-12-01T09:00:00Z');
  const store = await TranscriptStore.open(testConfig(dataDir), { clock: clock.now });
  const client = { address: '10.1.2.3', port: 52100, tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, application: 'agent-runner' };

  const d = store.recorder();
  await d.sessionStart({ sessionId: SCENARIO.d, protocol: 'postgres', target: 'archive', principal: PRINCIPAL, client });
  const d1 = await d.statement({ text: 'SELECT * FROM old_orders', classification: { class: 'read', relations: ['public.old_orders'] }, verdict: 'allow' });
  await d.result({ statementId: d1, columns: [{ name: 'id', type: 'int4', masked: null }], rows: 3, bytes: 60, capture: { mode: 'none' } });
  await d.sessionEnd('client closed');

  clock.set('2026-01-10T10:00:00Z');
  const a = store.recorder();
  await a.sessionStart({ sessionId: SCENARIO.a, protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client });
  clock.advance(120);
  const a1 = await a.statement({
    text: 'SELECT id, email, card_number FROM customers WHERE id = $1',
    params: [{ type: 'int4', value: '5' }],
    classification: { class: 'read', relations: ['public.customers'] },
    verdict: 'mask',
    via: 'extended',
  });
  clock.advance(4);
  await a.result({
    statementId: a1,
    columns: [
      { name: 'id', type: 'int4', masked: null, table: 'public.customers' },
      { name: 'email', type: 'text', masked: 'email-partial', table: 'public.customers' },
      { name: 'card_number', type: 'text', masked: 'card-last4', table: 'public.customers' },
    ],
    rows: 1,
    bytes: 96,
    capture: { mode: 'first', limit: 10, rows: [['5', 'j***@example.com', '************4242']], truncated: false },
    tag: 'SELECT 1',
  });
  clock.advance(1000);
  const a2 = await a.statement({
    text: 'DELETE FROM orders WHERE id = $1',
    params: [{ type: 'int4', value: '31' }],
    classification: { class: 'write', relations: ['public.orders'] },
    verdict: 'hold',
    rule: 'writes-need-approval',
    approval: { requestId: 'req-1' },
  });
  clock.advance(30_000);
  await a.statementDecision({ statementId: a2, decision: 'approved', requestId: 'req-1', approver: 'alice@example.com', reason: 'ticket 42: remove test order' });
  clock.advance(5);
  await a.result({ statementId: a2, columns: [], rows: 1, bytes: 0, capture: { mode: 'none' }, tag: 'DELETE 1' });
  clock.advance(2000);
  await a.statement({
    text: 'DROP TABLE customers',
    classification: { class: 'ddl', relations: ['public.customers'] },
    verdict: 'deny',
    rule: 'no-ddl',
    reason: 'DDL is never allowed for agents',
  });
  clock.advance(1000);
  const a4 = await a.statement({
    text: "UPDATE customers SET email = '<script>alert(1)</script>' WHERE id = 5",
    classification: { class: 'write', relations: ['public.customers'] },
    verdict: 'hold',
    approval: { requestId: 'req-2' },
  });
  clock.advance(60_000);
  await a.statementDecision({ statementId: a4, decision: 'denied', requestId: 'req-2', approver: 'bob@example.com', reason: 'not during business hours' });
  clock.advance(10);
  await a.event({ kind: 'cancel', message: 'client sent CancelRequest' });
  clock.advance(10);
  await a.sessionEnd('client closed');

  clock.set('2026-01-11T08:00:00Z');
  const b = store.recorder();
  await b.sessionStart({ sessionId: SCENARIO.b, protocol: 'tds', target: 'sales', principal: PRINCIPAL, client: { ...client, tls: null } });
  clock.advance(50);
  const b1 = await b.statement({
    text: 'SELECT TOP 5 * FROM dbo.invoices\u001b[31m',
    params: [{ name: '@region', type: 'nvarchar(10)', value: 'EU\u001b[2J' }],
    classification: { class: 'read', relations: ['dbo.invoices'] },
    verdict: 'allow',
    via: 'rpc',
  });
  clock.advance(7);
  await b.result({ statementId: b1, columns: [], rows: 0, bytes: 0, error: { code: '208', message: "Invalid object name 'dbo.invoices'." }, capture: { mode: 'none' } });
  await b.sessionEnd('client closed');

  clock.set('2026-01-12T12:00:00Z');
  const c = store.recorder();
  await c.sessionStart({ sessionId: SCENARIO.c, protocol: 'postgres', target: 'shop', principal: OTHER, client });
  const c1 = await c.statement({ text: 'SELECT name, price FROM products', classification: { class: 'read', relations: ['public.products'] }, verdict: 'allow' });
  await c.result({ statementId: c1, columns: [{ name: 'name', type: 'text', masked: null }], rows: 12, bytes: 400, capture: { mode: 'digest', sha256: 'ab'.repeat(32), rows: 12 } });
  await c.sessionEnd('client closed');
  await store.close();
}

/**
 * A relay's quick statements under fsync interval, in a second writer run (a new segment): each
 * statement and its digest result written as one line.
 */
export async function recordQuickStatements(dataDir: string): Promise<void> {
  const clock = manualClock('2026-01-13T07:00:00Z');
  const store = await TranscriptStore.open(testConfig(dataDir), { clock: clock.now });
  const r = store.recorder();
  await r.sessionStart({ sessionId: SCENARIO.e, protocol: 'postgres', target: 'shop', principal: PRINCIPAL, client: { address: '10.1.2.4', port: 52200, tls: null } });
  const columns = Object.freeze([Object.freeze({ name: 'abalance', type: 'int4', masked: null, table: 'public.pgbench_accounts' })]);
  for (let i = 0; i < 3; i++) {
    const st = r.statementNoWait({ text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${i + 1};`, classification: { class: 'read', relations: ['public.pgbench_accounts'] }, verdict: 'allow', via: 'simple' });
    const c = new RowCapture({ mode: 'digest', firstRows: 10 });
    c.add(Buffer.from([0x44, 0, 0, 0, 11, 0, 1, 0, 0, 0, 1, 0x30 + i]));
    r.resultNoWait({ statementId: st, columns, rows: 1, bytes: c.bytes, capture: c.finish(), tag: 'SELECT 1' });
    clock.advance(3);
  }
  const st = r.statementNoWait({ text: 'UPDATE pgbench_accounts SET abalance = 1', classification: { class: 'write', relations: ['public.pgbench_accounts'] }, verdict: 'allow', via: 'simple' });
  r.resultNoWait({ statementId: st, columns: [], rows: 0, bytes: 0, capture: new RowCapture({ mode: 'digest', firstRows: 10 }).finish(), tag: 'UPDATE 7' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  await r.sessionEnd('client closed');
  await store.close();
}

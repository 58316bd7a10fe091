// One agent session through warden with every kind of statement a reviewer cares about, recorded
// with `transcripts: { capture: all }` under statement rules, approvals and masking — then read
// back from the store as an auditor would: the records (readStore), the session's timeline
// (loadSession), the access-review report (buildReview), and integrity (verify() and the
// `warden audit verify` CLI). The session uses node-postgres: simple queries, extended queries
// with text and binary parameters, COPY TO STDOUT and COPY FROM STDIN (node-postgres' Submittable
// interface, as pg-copy-streams uses it), a held statement approved, one held and denied, one
// denied by a rule, and queries over masked columns.
import { wardenCli } from '../helpers/warden-cli.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { loadVerifyKey, publicKeyFileFor } from '../../src/audit/keys.js';
import { readStore } from '../../src/audit/reader.js';
import { loadSession, type SessionReplay } from '../../src/audit/replay.js';
import { buildReview, type ReviewReport } from '../../src/audit/review.js';
import type { DecisionData, ResultData, StatementData } from '../../src/audit/types.js';
import { verify } from '../../src/audit/verify.js';
import { direct } from '../helpers/pg-env.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

const RUN = Math.random().toString(36).slice(2, 8);
const SCRATCH = `te2e_scratch_${RUN}`;
const MADE = `te2e_made_${RUN}`;

const CONFIG = `
rules:
  - name: ddl
    match: { kinds: [create, alter, drop, truncate] }
    action: hold
    message: schema changes need a DBA
  - name: no-unbounded-delete
    match: { flags: [no_where] }
    action: deny
    message: DELETE and UPDATE need a WHERE clause
approvals:
  timeout: 30s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
masking:
  rules:
    - { name: national-ids, columns: [customers.ssn], strategy: partial, options: { keep_last: 4 } }
    - { name: emails, columns: [customers.email], strategy: email }
transcripts:
  capture: all
  instance_id: e2e-a
  fsync: each
`;

/** The statements of the session, in the order sent. */
const S = {
  simple: 'SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id',
  textParams: 'SELECT $1::int + 1 AS n, $2::text AS s',
  binaryParams: 'SELECT length($1::bytea) AS n, $2::int AS v',
  copyOut: 'COPY (SELECT id, status FROM orders WHERE id <= 5 ORDER BY id) TO STDOUT',
  copyIn: `COPY ${SCRATCH} (id, note) FROM STDIN`,
  approved: `CREATE TABLE ${MADE} (id int)`,
  refused: `DROP TABLE ${SCRATCH}`,
  denied: `DELETE FROM ${SCRATCH}`,
  masked: 'SELECT id, email, ssn FROM customers WHERE id <= 3 ORDER BY id',
  maskedCopy: 'COPY (SELECT id, ssn FROM customers WHERE id <= 3 ORDER BY id) TO STDOUT',
  maskedParam: 'SELECT email FROM customers WHERE id = $1',
} as const;

let w: TestWarden;
let approverToken: string;
let transcripts: string;
let records: TranscriptRecord[] = [];
let sessionId: string;
/** What the agent saw, per statement. */
const seen: Record<string, unknown> = {};
const requestIds: { approved?: string; refused?: string } = {};
/** Sensitive values as stored (read directly), which must never reach the transcript. */
let clearValues: string[] = [];

/** The few Connection methods a COPY needs (node-postgres does not type them). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** A COPY through node-postgres' Submittable interface: COPY TO STDOUT collects the data, COPY FROM STDIN sends `input`. */
class Copy implements pg.Submittable {
  readonly done: Promise<{ tag: string; data: string }>;
  private readonly chunks: Buffer[] = [];
  private tag = '';
  private error: Error | undefined;
  private settle!: (err: Error | undefined) => void;

  constructor(private readonly text: string, private readonly input?: string) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve({ tag: this.tag, data: Buffer.concat(this.chunks).toString('utf8') }));
    });
  }

  submit(connection: pg.Connection): void {
    (connection as unknown as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    if (this.input) connection.sendCopyFromChunk(Buffer.from(this.input));
    connection.endCopyFrom();
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    this.chunks.push(msg.chunk);
  }

  handleCommandComplete(msg: { text: string }): void {
    this.tag = msg.text;
  }

  handleError(err: Error): void {
    this.error = err;
  }

  handleReadyForQuery(): void {
    this.settle(this.error);
  }
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${w.warden.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${approverToken}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function heldId(notices: string[], from: number): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const id = notices.slice(from).map((n) => /request (apr_\w+),/.exec(n)?.[1]).find(Boolean);
    if (id) return id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the statement was not held');
}

beforeAll(async () => {
  await direct(`CREATE TABLE ${SCRATCH} (id int, note text)`);
  clearValues = (await direct('SELECT email, ssn FROM customers WHERE id <= 3')).rows.flatMap((r: { email: string | null; ssn: string | null }) => [r.email, r.ssn]).filter((v): v is string => v !== null);
  expect(clearValues).toHaveLength(5); // Carol has no ssn

  w = await startTestWarden({ yaml: CONFIG });
  transcripts = join(w.dataDir, 'transcripts');
  approverToken = await w.token({ subject: 'dba-alice', roles: [APPROVER_ROLE] });
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, application_name: 'transcripts-e2e' });
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  try {
    seen.simple = (await c.query({ text: S.simple, rowMode: 'array' })).rows;
    seen.textParams = (await c.query({ text: S.textParams, values: [41, 'hello'], rowMode: 'array' })).rows;
    // A Buffer goes as a binary parameter; `binary: true` asks for binary results.
    const bin = await c.query({ text: S.binaryParams, values: [Buffer.from([0xde, 0xad, 0xbe, 0xef]), 7], binary: true, rowMode: 'array' } as pg.QueryArrayConfig);
    seen.binaryParams = bin.rows;
    seen.copyOut = await c.query(new Copy(S.copyOut)).done;
    seen.copyIn = await c.query(new Copy(S.copyIn, '1\tone\n2\ttwo\n3\tthree\n')).done;

    let from = notices.length;
    const approved = c.query(S.approved);
    requestIds.approved = await heldId(notices, from);
    expect((await api('POST', `/approvals/${requestIds.approved}/approve`, { reason: 'ticket 7: new table' })).status).toBe(200);
    seen.approved = (await approved).command;

    from = notices.length;
    const refused = c.query(S.refused).catch((e: pg.DatabaseError) => e);
    requestIds.refused = await heldId(notices, from);
    expect((await api('POST', `/approvals/${requestIds.refused}/deny`, { reason: 'the scratch table stays' })).status).toBe(200);
    seen.refused = ((await refused) as pg.DatabaseError).code;

    seen.denied = ((await c.query(S.denied).catch((e: pg.DatabaseError) => e)) as pg.DatabaseError).code;
    seen.masked = (await c.query({ text: S.masked, rowMode: 'array' })).rows;
    seen.maskedCopy = await c.query(new Copy(S.maskedCopy)).done;
    seen.maskedParam = (await c.query({ text: S.maskedParam, values: [2], rowMode: 'array' })).rows;
  } finally {
    await c.end();
  }
  await w.warden.close(2000); // seals the segment
  for await (const r of readStore(transcripts)) records.push(r.record);
  sessionId = records.find((r) => r.k === 'session-start')?.sid as string;
}, 60_000);

afterAll(async () => {
  await w?.stop();
  await direct(`DROP TABLE IF EXISTS ${SCRATCH}; DROP TABLE IF EXISTS ${MADE}`).catch(() => undefined);
});

const statements = () => records.filter((r) => r.k === 'statement').map((r) => r.d as StatementData);
const statementOf = (text: string): StatementData => {
  const found = statements().filter((s) => s.text === text);
  expect(found, text).toHaveLength(1);
  return found[0] as StatementData;
};
const resultsOf = (text: string): ResultData[] => records.filter((r) => r.k === 'result' && (r.d as ResultData).st === statementOf(text).st).map((r) => r.d as ResultData);
const decisionsOf = (text: string): DecisionData[] => records.filter((r) => r.k === 'decision' && (r.d as DecisionData).st === statementOf(text).st).map((r) => r.d as DecisionData);

describe('what the agent saw', () => {
  it('every statement behaved as the policy says', () => {
    expect(seen.simple).toEqual([[1, 'Alice Testperson'], [2, 'Bob Example']]);
    expect(seen.textParams).toEqual([[42, 'hello']]);
    expect(seen.copyOut).toEqual({ tag: 'COPY 5', data: expect.stringMatching(/^(\d+\t(placed|shipped|delivered|returned)\n){5}$/) });
    expect(seen.copyIn).toEqual({ tag: 'COPY 3', data: '' });
    expect(seen.approved).toBe('CREATE');
    expect(seen.refused).toBe('42501');
    expect(seen.denied).toBe('42501');
    const masked = seen.masked as string[][];
    expect(masked.map((r) => r[2])).toEqual(['*******7468', '*******4657', null]);
    for (const r of masked) expect(r[1]).toMatch(/^\*+@example\.com$/);
    expect((seen.maskedCopy as { data: string }).data).toBe('1\t*******7468\n2\t*******4657\n3\t\\N\n');
  });
});

describe('the transcript', () => {
  it('holds every statement, in the order sent, with its parameters', () => {
    expect(statements().map((s) => s.text)).toEqual(Object.values(S));
    expect(statements().map((s) => s.st)).toEqual(Object.values(S).map((_, i) => i + 1));
    expect(statements().map((s) => [s.via, s.verdict, s.cls.class, s.cls.kinds])).toEqual([
      ['simple', 'allow', 'read', ['select']],
      ['extended', 'allow', 'read', ['select']],
      ['extended', 'allow', 'read', ['select']],
      ['simple', 'allow', 'read', ['copy']],
      ['simple', 'allow', 'write', ['copy']],
      ['simple', 'hold', 'ddl', ['create']],
      ['simple', 'hold', 'ddl', ['drop']],
      ['simple', 'deny', 'write', ['delete']],
      // Statements whose results are masked are recorded before their rows exist; the masking shows in their results.
      ['simple', expect.any(String), 'read', ['select']],
      ['simple', expect.any(String), 'read', ['copy']],
      ['extended', expect.any(String), 'read', ['select']],
    ]);
    expect(statementOf(S.simple).params).toBeUndefined();
    expect(statementOf(S.textParams)).toMatchObject({ via: 'extended', params: [{ type: 'unknown', value: '41' }, { type: 'unknown', value: 'hello' }] });
    // node-postgres sends a Buffer as a binary parameter (recorded as hex: its type is not declared), the number as text.
    expect(statementOf(S.binaryParams)).toMatchObject({ via: 'extended', params: [{ value: '\\xdeadbeef' }, { value: '7' }] });
    expect(statementOf(S.maskedParam)).toMatchObject({ via: 'extended', params: [{ value: '2' }] });
    expect(statements().map((s) => s.cls.relations)).toEqual([['customers'], [], [], ['orders'], [SCRATCH], [MADE], [SCRATCH], [SCRATCH], ['customers'], ['customers'], ['customers']]);
  });

  it('records results with their rows as the agent received them (text and binary formats)', () => {
    expect(resultsOf(S.simple)).toEqual([expect.objectContaining({ tag: 'SELECT 2', rows: 2, capture: { mode: 'all', rows: [['1', 'Alice Testperson'], ['2', 'Bob Example']], truncated: false } })]);
    expect(resultsOf(S.textParams)[0]).toMatchObject({ tag: 'SELECT 1', rows: 1, capture: { rows: [['42', 'hello']] } });
    expect(resultsOf(S.binaryParams)[0]).toMatchObject({ tag: 'SELECT 1', capture: { rows: [['\\x00000004', '\\x00000007']] } });
  });

  it('records COPY in both directions with its row count', () => {
    expect(resultsOf(S.copyOut)).toEqual([expect.objectContaining({ tag: 'COPY 5', rows: 5 })]);
    expect(resultsOf(S.copyIn)).toEqual([expect.objectContaining({ tag: 'COPY 3', rows: 3 })]);
    expect(resultsOf(S.maskedCopy)).toEqual([expect.objectContaining({ tag: 'COPY 3', rows: 3 })]);
  });

  it('records held statements with the request, the decision, the approver and the reason', () => {
    expect(statementOf(S.approved)).toMatchObject({ verdict: 'hold', rule: 'ddl', approval: { requestId: requestIds.approved } });
    expect(decisionsOf(S.approved)).toEqual([{ st: statementOf(S.approved).st, decision: 'approved', requestId: requestIds.approved, approver: 'dev:dba-alice', reason: 'ticket 7: new table' }]);
    expect(resultsOf(S.approved)).toEqual([expect.objectContaining({ tag: 'CREATE TABLE' })]);

    expect(statementOf(S.refused)).toMatchObject({ verdict: 'hold', rule: 'ddl', approval: { requestId: requestIds.refused } });
    expect(decisionsOf(S.refused)).toEqual([{ st: statementOf(S.refused).st, decision: 'denied', requestId: requestIds.refused, approver: 'dev:dba-alice', reason: 'the scratch table stays' }]);
    expect(resultsOf(S.refused)).toEqual([expect.objectContaining({ error: { code: '42501', message: `statement denied by dev:dba-alice (request ${requestIds.refused})` } })]);

    // In the chain: statement, then decision, then result.
    const seqOf = (k: string, st: number) => records.find((r) => r.k === k && (r.d as { st: number }).st === st)?.seq ?? -1;
    for (const text of [S.approved, S.refused]) {
      const st = statementOf(text).st;
      expect(seqOf('statement', st)).toBeLessThan(seqOf('decision', st));
      expect(seqOf('decision', st)).toBeLessThan(seqOf('result', st));
    }
  });

  it('records a statement a rule denied, with the rule and its message', () => {
    expect(statementOf(S.denied)).toMatchObject({ verdict: 'deny', rule: 'no-unbounded-delete', reason: 'DELETE and UPDATE need a WHERE clause (DELETE without a WHERE clause)' });
    expect(statementOf(S.denied).approval).toBeUndefined();
    expect(decisionsOf(S.denied)).toEqual([]);
    expect(resultsOf(S.denied)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: '42501' }) })]);
  });

  it('records masked columns with their rule, and captured rows hold only masked values', () => {
    const [masked] = resultsOf(S.masked);
    expect(masked?.columns).toEqual([
      { name: 'id', type: 'int4', masked: null },
      // The table the masked values came from, for the access review's protected columns.
      { name: 'email', type: 'varchar', masked: 'emails', table: 'public.customers' },
      { name: 'ssn', type: 'bpchar', masked: 'national-ids', table: 'public.customers' },
    ]);
    // The captured rows are exactly what the agent received.
    const received = (seen.masked as unknown[][]).map((r) => r.map((v) => (v === null ? null : String(v))));
    expect(masked?.capture).toEqual({ mode: 'all', rows: received, truncated: false });
    expect(resultsOf(S.maskedParam)[0]).toMatchObject({ columns: [{ name: 'email', masked: 'emails' }], capture: { rows: [[expect.stringMatching(/^\*+@example\.com$/)]] } });
    // COPY names no columns on the wire: they are recorded by position, with the rule that masked each.
    expect(resultsOf(S.maskedCopy)[0]?.columns).toEqual([
      { name: 'column 1', type: 'unknown', masked: null },
      { name: 'column 2', type: 'unknown', masked: 'national-ids', table: 'public.customers' },
    ]);
    expect(resultsOf(S.copyIn)[0]?.columns.map((c) => c.masked)).toEqual([null, null]);
  });

  it('never holds a clear value of a masked column, anywhere in the transcript directory', () => {
    const files = readdirSync(transcripts).map((f) => join(transcripts, f)).filter((f) => statSync(f).isFile());
    expect(files.some((f) => f.endsWith('.jsonl'))).toBe(true);
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(bytes.includes('*******7468')).toBe(true); // the masked values are there …
    for (const clear of clearValues) expect(bytes.includes(clear), clear).toBe(false); // … the clear ones are not
  });
});

describe('reading the store as an auditor', () => {
  let replay: SessionReplay;
  let review: ReviewReport;
  beforeAll(async () => {
    replay = await loadSession(transcripts, sessionId.slice(0, 12));
    review = await buildReview(transcripts, { principal: 'agent', since: new Date(Date.now() - 3_600_000), until: new Date() });
  });

  it('replays the session as a timeline in order', () => {
    expect(replay.sessionId).toBe(sessionId);
    expect(replay.ended).toBe(true);
    expect(replay.summary).toMatchObject({ statements: 11, approved: 1, refused: 1, client: { application: 'transcripts-e2e' } });
    const kinds = replay.entries.map((e) => e.kind);
    expect(kinds[0]).toBe('session-start');
    expect(kinds[kinds.length - 1]).toBe('session-end');
    expect(replay.entries.filter((e) => e.kind === 'statement').map((e) => e.statementId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const seqs = replay.entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('the access review lists tables, protected columns, approvals with approver and reason, and denials', () => {
    expect(review.sessions.count).toBe(1);
    expect(review.targets).toEqual([expect.objectContaining({ target: 'shop', sessions: 1, statements: 11 })]);
    const relations = review.tables.map((t) => t.relation);
    for (const t of ['customers', 'orders', SCRATCH, MADE]) expect(relations.some((r) => r === t || r.endsWith(`.${t}`)), t).toBe(true);
    expect(review.protectedColumns.map((c) => [c.column, c.table, c.rule, c.rows])).toEqual([
      ['column 2', 'public.customers', 'national-ids', 3], // the COPY
      ['email', 'public.customers', 'emails', 4], // 3 rows, then 1
      ['ssn', 'public.customers', 'national-ids', 3],
    ]);
    expect(review.approvals).toEqual([
      expect.objectContaining({ text: S.approved, requestId: requestIds.approved, decision: 'approved', approver: 'dev:dba-alice', reason: 'ticket 7: new table' }),
      expect.objectContaining({ text: S.refused, requestId: requestIds.refused, decision: 'denied', approver: 'dev:dba-alice', reason: 'the scratch table stays' }),
    ]);
    expect(review.denials).toEqual([
      expect.objectContaining({ text: S.refused, by: 'approver', approver: 'dev:dba-alice', reason: 'the scratch table stays' }),
      expect.objectContaining({ text: S.denied, by: 'policy', rule: 'no-unbounded-delete' }),
    ]);
  });

  it('verifies intact, through verify() and the warden audit verify CLI', async () => {
    const publicKey = publicKeyFileFor(join(w.dataDir, 'keys', 'transcript-ed25519.pem'));
    const report = await verify(transcripts, { publicKey: await loadVerifyKey(publicKey) });
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(report.ok).toBe(true);
    const cli = await wardenCli(['audit', 'verify', transcripts, '--public-key', publicKey, '--format', 'json']);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, findings: [] });
  }, 30_000);
});

// Just-in-time approval on the live PostgreSQL connection, end to end: a real client's statement
// is held, a human (the HTTP API with an approver's token) decides, and the agent's own session
// runs it or gets an ordinary error — and the session goes on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { encodeCancelRequest } from '../../protocols/postgres/startup-message.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';
import { directUrl } from '../helpers/pg-env.js';

const RULES = `
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
  timeout: 4s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`;

let w: TestWarden;
let approverToken: string;

beforeAll(async () => {
  w = await startTestWarden({ yaml: RULES });
  approverToken = await w.token({ subject: 'dba-alice', roles: [APPROVER_ROLE] });
  const admin = new pg.Client({ connectionString: directUrl() });
  await admin.connect();
  await admin.query('CREATE TABLE IF NOT EXISTS approval_scratch (id int)');
  await admin.query('DROP TABLE IF EXISTS approval_made');
  await admin.end();
});

afterAll(async () => {
  await w?.stop();
});

async function agent(): Promise<{ c: pg.Client; notices: string[] }> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(`${n.message}|${n.hint ?? ''}`));
  await c.connect();
  return { c, notices };
}

async function api(method: string, path: string, body?: unknown, token = approverToken): Promise<{ status: number; json: any }> {
  const res = await fetch(`${w.warden.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(encodeCancelRequest(processId, secretKey)));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

/** The request id from the NOTICE, once the statement is held. */
async function heldRequest(notices: string[], from = 0): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = notices.slice(from).map((n) => /request (\S+),/.exec(n)?.[1]).find(Boolean);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('statement was not held');
}

describe('held statements on a live PostgreSQL connection', () => {
  it('holds DDL, tells the agent, and runs it in the agent session once approved', async () => {
    const { c, notices } = await agent();
    await c.query('SET application_name = \'held-session\'');
    const pending = c.query('CREATE TABLE approval_made (id int)');
    const id = await heldRequest(notices);
    expect(notices[0]).toContain('statement held for approval');
    expect(notices[0]).toContain('/approvals');
    const listed = await api('GET', '/approvals?status=pending');
    expect(JSON.stringify(listed.json)).toContain(id);
    const decided = await api('POST', `/approvals/${id}/approve`, { reason: 'planned migration' });
    expect(decided.status).toBe(200);
    await pending; // the CREATE ran
    // …in the agent's own session: its session settings are there
    const r = await c.query("SELECT current_setting('application_name') AS a, to_regclass('approval_made') IS NOT NULL AS made");
    expect(r.rows[0]).toEqual({ a: 'held-session', made: true });
    await c.end();
  });

  it('denies with an ordinary error naming the request; the session goes on', async () => {
    const { c, notices } = await agent();
    const pending = c.query('TRUNCATE approval_scratch').then(
      () => undefined,
      (e: pg.DatabaseError) => e,
    );
    const id = await heldRequest(notices);
    expect((await api('POST', `/approvals/${id}/deny`, { reason: 'not today' })).status).toBe(200);
    const err = await pending;
    expect(err?.code).toBe('42501');
    expect(err?.message).toContain(id);
    expect(err?.detail ?? '').toContain('not today');
    expect((await c.query('SELECT 1 AS ok')).rows[0]).toEqual({ ok: 1 });
    await c.end();
  });

  it('a denial inside a transaction fails the transaction as PostgreSQL would', async () => {
    const { c, notices } = await agent();
    await c.query('BEGIN');
    await c.query('INSERT INTO approval_scratch VALUES (1)');
    const pending = c.query('DROP TABLE approval_scratch').catch((e: pg.DatabaseError) => e);
    const id = await heldRequest(notices);
    await api('POST', `/approvals/${id}/deny`, { reason: 'no' });
    expect(((await pending) as pg.DatabaseError).code).toBe('42501');
    const next = await c.query('SELECT 1').catch((e: pg.DatabaseError) => e);
    expect((next as pg.DatabaseError).code).toBe('25P02'); // current transaction is aborted
    await c.query('ROLLBACK');
    expect((await c.query('SELECT 1 AS ok')).rows[0]).toEqual({ ok: 1 });
    await c.end();
  });

  it('times out into an error when nobody decides', async () => {
    const { c, notices } = await agent();
    const started = Date.now();
    const err = await c.query('DROP TABLE approval_scratch').catch((e: pg.DatabaseError) => e);
    expect((err as pg.DatabaseError).code).toBe('42501');
    expect((err as pg.DatabaseError).message).toMatch(/not approved in time/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3500);
    expect(notices).toHaveLength(1);
    expect((await c.query('SELECT count(*)::int AS n FROM approval_scratch')).rows[0]).toEqual({ n: 0 });
    await c.end();
  });

  it('denies outright what a deny rule names, without holding', async () => {
    const { c, notices } = await agent();
    const err = await c.query('DELETE FROM approval_scratch').catch((e: pg.DatabaseError) => e);
    expect((err as pg.DatabaseError).code).toBe('42501');
    expect((err as pg.DatabaseError).message).toContain('no-unbounded-delete');
    expect(notices).toEqual([]);
    // Extended protocol: the same refusal, and the pipeline behind it stays in order.
    const err2 = await c.query({ text: 'DELETE FROM approval_scratch', values: [] }).catch((e: pg.DatabaseError) => e);
    expect((err2 as pg.DatabaseError).code).toBe('42501');
    expect((await c.query({ text: 'SELECT $1::int AS v', values: [7] })).rows[0]).toEqual({ v: 7 });
    await c.end();
  });

  it('a cancel while held withdraws the request (57014) and the session continues', async () => {
    const { c, notices } = await agent();
    const pending = c.query('TRUNCATE approval_scratch').catch((e: pg.DatabaseError) => e);
    const id = await heldRequest(notices);
    // A CancelRequest on a second connection with the BackendKeyData the client was given, as libpq sends it.
    const key = c as unknown as { processID: number; secretKey: number };
    await sendCancel(w.port, key.processID, key.secretKey);
    const err = (await pending) as pg.DatabaseError;
    expect(err.code).toBe('57014');
    const shown = await api('GET', `/approvals/${id}`);
    expect(shown.json.status ?? shown.json.request?.status).toBe('withdrawn');
    expect((await c.query('SELECT 2 AS ok')).rows[0]).toEqual({ ok: 2 });
    await c.end();
  });

  it('a disconnect while held withdraws the request', async () => {
    const { c, notices } = await agent();
    c.on('error', () => undefined); // the socket is cut on purpose
    c.query('TRUNCATE approval_scratch').catch(() => undefined);
    const id = await heldRequest(notices);
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    let status = '';
    for (let i = 0; i < 40 && status !== 'withdrawn'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const shown = await api('GET', `/approvals/${id}`);
      status = shown.json.status ?? shown.json.request?.status;
    }
    expect(status).toBe('withdrawn');
  });

  it('a grant lets later statements with the same fingerprint run without waiting, until revoked', async () => {
    const { c, notices } = await agent();
    // ALTER TABLE is DDL: the first one is held; approve it with a grant.
    const first = c.query('ALTER TABLE approval_scratch ALTER COLUMN id SET DEFAULT 1');
    const id = await heldRequest(notices);
    const decided = await api('POST', `/approvals/${id}/approve`, { reason: 'batch of defaults', grant_minutes: 5 });
    expect(decided.status).toBe(200);
    await first;
    const before = notices.length;
    await c.query('ALTER TABLE approval_scratch ALTER COLUMN id SET DEFAULT 2'); // same fingerprint: no hold
    expect(notices.length).toBe(before);
    const grants = await api('GET', '/grants');
    const grantId = (grants.json.grants ?? grants.json)[0]?.id as string;
    expect(grantId).toBeTruthy();
    expect((await api('DELETE', `/grants/${grantId}`)).status).toBe(200);
    const again = c.query('ALTER TABLE approval_scratch ALTER COLUMN id SET DEFAULT 3').catch((e) => e);
    const id2 = await heldRequest(notices, before);
    await api('POST', `/approvals/${id2}/deny`, { reason: 'grant revoked' });
    expect(((await again) as pg.DatabaseError).code).toBe('42501');
    await c.end();
  });

  it('nobody approves their own request, and non-approvers cannot decide', async () => {
    const { c, notices } = await agent();
    const pending = c.query('TRUNCATE approval_scratch').catch((e: pg.DatabaseError) => e);
    const id = await heldRequest(notices);
    const self = await api('POST', `/approvals/${id}/approve`, { reason: 'me' }, await w.token({ roles: [APPROVER_ROLE] }));
    expect(self.status).toBe(403);
    const stranger = await api('POST', `/approvals/${id}/approve`, { reason: 'x' }, await w.token({ subject: 'someone-else' }));
    expect(stranger.status).toBe(403);
    const garbage = await api('POST', `/approvals/${id}/approve`, { reason: 'x' }, 'not-a-token');
    expect(garbage.status).toBe(401);
    await api('POST', `/approvals/${id}/deny`, { reason: 'cleanup' });
    expect(((await pending) as pg.DatabaseError).code).toBe('42501');
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'late' })).status).toBe(409);
    await c.end();
  });
});

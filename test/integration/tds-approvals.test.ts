// Just-in-time approval on live SQL Server (TDS) connections, end to end through the stand-in:
// tedious sends a statement a rule holds; warden answers at once with the start of the response
// (an INFO naming the request and where to decide) and waits; an approver decides over the HTTP
// API; the agent's own session runs the statement (rows as from the stand-in directly) or gets
// error 229 with the request id and reason, and the session goes on. ATTENTION (tedious
// cancel()) and a disconnect withdraw the request; a grant lets the next matching statement run
// at once; FreeTDS tsql and jTDS wait and get their rows once approved; the transcript records the
// statement with its request and the decision with approver and reason.
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Request, type Connection } from 'tedious';
import { readStore } from '../../src/audit/reader.js';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { closeTedious, connectTedious, query, STANDIN_LOGIN, startTdsHarness, tediousConfig, TYPES, type QueryResult, type TdsHarness } from '../helpers/tds.js';
import { APPROVER_ROLE } from '../helpers/warden.js';

const RULES = `
rules:
  - name: orders-reviewed
    match: { relations: [orders] }
    action: hold
    message: orders are reviewed by a person
approvals:
  timeout: 4s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`;

let h: TdsHarness;
let approverToken: string;

beforeAll(async () => {
  h = await startTdsHarness({
    yaml: RULES,
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'tds-approvals' };
    },
  });
  approverToken = await h.tw.token({ subject: 'dba-alice', roles: [APPROVER_ROLE] });
});

afterAll(async () => {
  await h?.stop();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${h.tw.warden.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${approverToken}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function requestStatus(id: string): Promise<string> {
  const shown = await api('GET', `/approvals/${id}`);
  return shown.json.status ?? shown.json.request?.status;
}

/** A tedious session through warden that collects every INFO message it is sent. */
async function agent(): Promise<{ c: Connection; infos: string[] }> {
  const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
  const infos: string[] = [];
  c.on('infoMessage', (m: { message: string; number: number; class: number }) => infos.push(`${m.number}/${m.class} ${m.message}`));
  return { c, infos };
}

/** A statement run on the stand-in directly (not through warden): what the agent should see, or what happened. */
async function direct(sql: string): Promise<QueryResult> {
  const c = await connectTedious(tediousConfig({ port: h.standin.port, encrypt: true, auth: { user: STANDIN_LOGIN.user, password: STANDIN_LOGIN.password } }));
  try {
    return await query(c, sql);
  } finally {
    await closeTedious(c);
  }
}

/** The request id of the INFO that says the statement is held (it arrives while the client waits). */
async function heldRequest(infos: string[], from = 0): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = infos.slice(from).map((n) => /held for approval \(request (\S+),/.exec(n)?.[1]).find(Boolean);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('statement was not held');
}

type SqlError = Error & { number?: number; class?: number; code?: string };
const failure = (p: Promise<QueryResult>): Promise<SqlError | QueryResult> => p.catch((e: SqlError) => e);

const ORDERS = 'SELECT id, customer_id, amount, status FROM orders WHERE id <= 3 ORDER BY id';
const requestIds: Record<string, string> = {};

describe('held statements on a live TDS connection (tedious)', () => {
  it('holds the statement, tells the agent at once with an INFO, and runs it in the session once approved', async () => {
    const expected = await direct(ORDERS);
    const { c, infos } = await agent();
    await query(c, 'SET LANGUAGE us_english').catch(() => undefined);
    const pending = query(c, ORDERS);
    const id = await heldRequest(infos);
    requestIds.approved = id;
    // The INFO: warden's notice (50000, class 10), the request, the rule and reason, where to decide.
    expect(infos[infos.length - 1]).toMatch(/^50000\/10 warden: statement held for approval \(request apr_\S+, rule "orders-reviewed"\); orders are reviewed by a person \(touches orders \(read\)\)\. Waiting until \S+ for an approver\. \(approve or deny at http:\/\/\S+\/approvals\/ui\?request=apr_\S+\)$/);
    const listed = await api('GET', '/approvals?status=pending');
    expect(JSON.stringify(listed.json)).toContain(id);
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'month-end check' })).status).toBe(200);
    const got = await pending;
    expect(got.sets).toEqual(expected.sets);
    expect(got.sets[0]!.rows).toHaveLength(3);
    expect((await query(c, 'SELECT 1 AS ok')).sets[0]!.rows).toEqual([[1]]);
    await closeTedious(c);
  });

  it('denies with error 229 naming the request and the reason; the same connection goes on', async () => {
    const { c, infos } = await agent();
    const pending = failure(query(c, "UPDATE orders SET status = 'lost' WHERE id = 1"));
    const id = await heldRequest(infos);
    requestIds.denied = id;
    expect((await api('POST', `/approvals/${id}/deny`, { reason: 'not during the audit' })).status).toBe(200);
    const err = (await pending) as SqlError;
    expect(err).toBeInstanceOf(Error);
    expect(err.number).toBe(229);
    expect(err.class).toBe(14);
    expect(err.message).toBe(`statement denied by dev:dba-alice (request ${id}); reason: not during the audit`);
    expect((await query(c, 'SELECT COUNT(*) AS n FROM customers')).sets[0]!.rows).toEqual([[20]]);
    await closeTedious(c);
  });

  it('a denial inside a transaction leaves the transaction open and intact, as a permission error does', async () => {
    const { c, infos } = await agent();
    await query(c, 'BEGIN TRANSACTION');
    await query(c, "UPDATE customers SET full_name = 'Held Testperson' WHERE id = 2");
    const pending = failure(query(c, 'DELETE FROM orders WHERE id = 2'));
    const id = await heldRequest(infos);
    await api('POST', `/approvals/${id}/deny`, { reason: 'no' });
    expect(((await pending) as SqlError).number).toBe(229);
    const inside = await query(c, 'SELECT @@TRANCOUNT AS depth, (SELECT full_name FROM customers WHERE id = 2) AS name');
    expect(inside.sets[0]!.rows).toEqual([[1, 'Held Testperson']]);
    await query(c, 'ROLLBACK TRANSACTION');
    const after = await query(c, 'SELECT @@TRANCOUNT AS depth, (SELECT full_name FROM customers WHERE id = 2) AS name');
    expect(after.sets[0]!.rows[0]![0]).toBe(0);
    expect(after.sets[0]!.rows[0]![1]).not.toBe('Held Testperson');
    await closeTedious(c);
  });

  it('times out into error 229 when nobody decides', async () => {
    const { c, infos } = await agent();
    const started = Date.now();
    const err = (await failure(query(c, 'DELETE FROM orders WHERE id = 3'))) as SqlError;
    expect(err.number).toBe(229);
    expect(err.message).toMatch(/^statement was not approved in time \(request apr_\S+\)$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3500);
    expect(infos.filter((i) => i.includes('held for approval'))).toHaveLength(1);
    expect((await direct('SELECT COUNT(*) AS n FROM orders WHERE id = 3')).sets[0]!.rows).toEqual([[1]]);
    expect((await query(c, 'SELECT 3 AS ok')).sets[0]!.rows).toEqual([[3]]);
    await closeTedious(c);
  });

  it('cancel() while held sends ATTENTION: the request is withdrawn, tedious gets its acknowledgement, the session goes on', async () => {
    const { c, infos } = await agent();
    const pending = failure(query(c, 'DELETE FROM orders WHERE id = 4'));
    const id = await heldRequest(infos);
    requestIds.cancelled = id;
    const cancelsBefore = h.tw.warden.metrics.cancelsTotal.get({ protocol: 'tds', result: 'forwarded' });
    c.cancel();
    const err = (await pending) as SqlError;
    expect(err.code).toBe('ECANCEL');
    expect(await requestStatus(id)).toBe('withdrawn');
    expect(h.tw.warden.metrics.cancelsTotal.get({ protocol: 'tds', result: 'forwarded' })).toBe(cancelsBefore + 1);
    expect((await direct('SELECT COUNT(*) AS n FROM orders WHERE id = 4')).sets[0]!.rows).toEqual([[1]]);
    expect((await query(c, 'SELECT 4 AS ok')).sets[0]!.rows).toEqual([[4]]);
    // An approval arriving now finds nothing to run.
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'late' })).status).toBe(409);
    await closeTedious(c);
  });

  it('a disconnect while held withdraws the request', async () => {
    const { c, infos } = await agent();
    void failure(query(c, 'DELETE FROM orders WHERE id = 5'));
    const id = await heldRequest(infos);
    requestIds.disconnected = id;
    (c as unknown as { socket: { destroy(): void } }).socket.destroy();
    let status = '';
    for (let i = 0; i < 40 && status !== 'withdrawn'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await requestStatus(id);
    }
    expect(status).toBe('withdrawn');
  });

  it('a grant lets the next statement of the same fingerprint run at once, without an INFO', async () => {
    const { c, infos } = await agent();
    const first = query(c, 'SELECT COUNT(*) AS n FROM orders WHERE amount > 100');
    const id = await heldRequest(infos);
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'reporting run', grant_minutes: 5 })).status).toBe(200);
    const n100 = (await first).sets[0]!.rows[0]![0] as number;
    const before = infos.length;
    const grants = h.tw.warden.metrics.verdictsTotal.get({ protocol: 'tds', verdict: 'grant' });
    const n200 = (await query(c, 'SELECT COUNT(*) AS n FROM orders WHERE amount > 200')).sets[0]!.rows[0]![0] as number;
    expect(infos.length).toBe(before);
    expect(n200).toBeLessThan(n100);
    expect(h.tw.warden.metrics.verdictsTotal.get({ protocol: 'tds', verdict: 'grant' })).toBe(grants + 1);
    // A different statement on the same table is still held.
    const other = failure(query(c, 'SELECT MAX(amount) AS m FROM orders'));
    const id2 = await heldRequest(infos, before);
    await api('POST', `/approvals/${id2}/deny`, { reason: 'outside the grant' });
    expect(((await other) as SqlError).number).toBe(229);
    await closeTedious(c);
  });

  it('holds an RPC (sp_executesql with parameters): approvers see the parameters; approved, its rows arrive', async () => {
    const { c, infos } = await agent();
    const pending = query(c, 'SELECT id, amount FROM orders WHERE customer_id = @cust AND id < @below ORDER BY id', [
      ['cust', TYPES.Int, 2],
      ['below', TYPES.Int, 100],
    ]);
    const id = await heldRequest(infos);
    requestIds.rpc = id;
    const shown = await api('GET', `/approvals/${id}`);
    expect(JSON.stringify(shown.json)).toContain('"2"');
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'ok' })).status).toBe(200);
    const got = await pending;
    expect(got.sets[0]!.columns).toEqual(['id', 'amount']);
    expect(got.sets[0]!.rows.length).toBeGreaterThan(0);
    expect(got.sets[0]!.rows.every((r) => (r[0] as number) < 100)).toBe(true);
    await closeTedious(c);
  });

  it('asks once for a prepared statement: its sp_prepare runs nothing and goes through, its sp_execute is held', async () => {
    const { c, infos } = await agent();
    const request = new Request('SELECT id, status FROM orders WHERE id = @n', () => undefined);
    request.addParameter('n', TYPES.Int);
    const rows: unknown[][] = [];
    request.on('row', (columns: { value: unknown }[]) => rows.push(columns.map((col) => col.value)));
    try {
      await new Promise<void>((resolve, reject) => {
        request.once('prepared', () => resolve());
        request.once('error', reject);
        c.prepare(request);
      });
      expect(infos.filter((m) => m.includes('held for approval'))).toEqual([]);
      const before = infos.length;
      const executed = new Promise<Error | null | undefined>((resolve) => {
        (request as unknown as { callback: (err?: Error | null) => void }).callback = resolve;
        c.execute(request, { n: 2 });
      });
      const id = await heldRequest(infos, before);
      expect((await api('POST', `/approvals/${id}/approve`, { reason: 'ok' })).status).toBe(200);
      expect(await executed).toBeFalsy();
      expect(rows).toEqual([[2, expect.any(String)]]);
      expect(infos.filter((m) => m.includes('held for approval'))).toHaveLength(1);
    } finally {
      await closeTedious(c);
    }
  });
});

/** The id of the first pending request not in `before`, once it appears. */
async function newPending(before: Set<string>): Promise<string> {
  for (let i = 0; i < 150; i++) {
    const pending = (await api('GET', '/approvals?status=pending')).json.requests ?? [];
    const id = pending.map((r: { id: string }) => r.id).find((x: string) => !before.has(x));
    if (id) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no request was held');
}

async function pendingIds(): Promise<Set<string>> {
  return new Set(((await api('GET', '/approvals?status=pending')).json.requests ?? []).map((r: { id: string }) => r.id));
}

describe.skipIf(missingClient('tsql'))('held statements with FreeTDS tsql', () => {
  it('tsql waits while held, prints the INFO, and gets its rows once approved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-freetds-held-'));
    try {
      writeFileSync(join(dir, 'freetds.conf'), '[global]\n\ttds version = 7.4\n\tencryption = require\n');
      const res = await fetch(`${h.tw.warden.adminUrl}/tickets`, { method: 'POST', headers: { authorization: `Bearer ${await h.tw.token()}` } });
      const { ticket } = (await res.json()) as { ticket: string };
      const before = await pendingIds();
      const tsql = run(findClient('tsql') as string, ['-H', '127.0.0.1', '-p', String(h.port), '-U', 'agent', '-P', ticket, '-D', 'shop'], {
        input: `${ORDERS}\ngo\nexit\n`,
        env: { FREETDSCONF: join(dir, 'freetds.conf'), TDSVER: '7.4' },
        timeoutMs: 30_000,
      });
      const id = await newPending(before);
      expect((await api('POST', `/approvals/${id}/approve`, { reason: 'tsql run' })).status).toBe(200);
      const r = await tsql;
      expect(r.code, r.stderr).toBe(0);
      expect(`${r.stdout}${r.stderr}`).toContain(`statement held for approval (request ${id}, rule "orders-reviewed")`);
      expect(r.stdout.split('\n').filter((l) => /^\d+\t\d+\t/.test(l))).toHaveLength(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(missingClient('java') || missingClient('javac') || missingClient('jtds'))('held statements with jTDS (TDS 7.1)', () => {
  it('jTDS blocks while held, gets warden\'s INFO as a warning, and its rows once approved; denied, error 229', async () => {
    const jar = findClient('jtds') as string;
    const classes = mkdtempSync(join(tmpdir(), 'warden-jtds-held-'));
    try {
      const compiled = await run(findClient('javac') as string, ['-cp', jar, '-d', classes, 'test/clients/tds/JtdsHeld.java'], { cwd: process.cwd(), timeoutMs: 120_000 });
      expect(compiled.stderr).toBe('');
      const java = async (sql: string, decide: (id: string) => Promise<unknown>): Promise<{ id: string; out: Record<string, any> }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const before = await pendingIds();
        const running = run(findClient('java') as string, ['-cp', `${jar}:${classes}`, 'JtdsHeld', '127.0.0.1', String(h.port), 'agent', await h.tw.token(), sql], { timeoutMs: 60_000 });
        const id = await newPending(before);
        await decide(id);
        const r = await running;
        expect(r.code, r.stderr).toBe(0);
        return { id, out: JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{')) as string) };
      };
      const approved = await java(ORDERS, (id) => api('POST', `/approvals/${id}/approve`, { reason: 'jtds run' }));
      expect(approved.out.rows).toEqual((await direct(ORDERS)).sets[0]!.rows.map((r) => r.map((v) => String(v))));
      expect(approved.out.warnings).toEqual([expect.stringContaining(`50000 warden: statement held for approval (request ${approved.id}, rule "orders-reviewed")`)]);
      expect(approved.out.after).toBe(42);
      const denied = await java('DELETE FROM orders WHERE id = 6', (id) => api('POST', `/approvals/${id}/deny`, { reason: 'jtds no' }));
      expect(denied.out.error).toEqual({ number: 229, message: `statement denied by dev:dba-alice (request ${denied.id}); reason: jtds no` });
      expect(denied.out.after).toBe(42);
    } finally {
      rmSync(classes, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('transcripts of held TDS statements', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const records: TranscriptRecord<Record<string, any>>[] = [];
  beforeAll(async () => {
    await h.tw.warden.close(500);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) records.push(r.record as TranscriptRecord<Record<string, any>>);
  });
  /** The statement record carrying this request id, and the session's records for that statement. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const held = (id: string): { st: Record<string, any>; of: (k: string) => Record<string, any>[] } => {
    const rec = records.find((r) => r.k === 'statement' && r.d.approval?.requestId === id);
    if (!rec) throw new Error(`no statement recorded with request ${id}`);
    return { st: rec.d, of: (k) => records.filter((r) => r.k === k && r.sid === rec.sid && (k === 'session-end' || r.d.st === rec.d.st)).map((r) => r.d) };
  };

  it('records the statement with its request id, the decision with approver and reason, then the result', () => {
    const approved = held(requestIds.approved!);
    expect(approved.st).toMatchObject({ text: ORDERS, via: 'batch', verdict: 'hold', rule: 'orders-reviewed' });
    expect(approved.of('decision')).toEqual([{ st: approved.st.st, decision: 'approved', requestId: requestIds.approved, approver: 'dev:dba-alice', reason: 'month-end check' }]);
    expect(approved.of('result')[0]).toMatchObject({ rows: 3 });
    const denied = held(requestIds.denied!);
    expect(denied.of('decision')).toEqual([{ st: denied.st.st, decision: 'denied', requestId: requestIds.denied, approver: 'dev:dba-alice', reason: 'not during the audit' }]);
    expect(denied.of('result')[0]).toMatchObject({ error: { code: '229' } });
    const cancelled = held(requestIds.cancelled!);
    expect(cancelled.of('decision')[0]).toMatchObject({ decision: 'cancelled', requestId: requestIds.cancelled });
    expect(cancelled.of('result')[0]).toMatchObject({ tag: 'DONE ATTN' });
    // A disconnect while held: the withdrawal is recorded before the session's end.
    const gone = held(requestIds.disconnected!);
    expect(gone.of('decision')).toEqual([{ st: gone.st.st, decision: 'cancelled', requestId: requestIds.disconnected, reason: 'disconnected' }]);
    expect(gone.of('session-end')).toEqual([expect.objectContaining({ reason: 'client-disconnect' })]);
    const seqOf = (k: string): number => records.find((r) => r.k === k && r.sid === records.find((x) => x.d.approval?.requestId === requestIds.disconnected)!.sid)!.seq;
    expect(seqOf('decision')).toBeLessThan(seqOf('session-end'));
    expect(held(requestIds.rpc!).st).toMatchObject({ via: 'rpc', name: 'sp_executesql', params: [{ name: '@cust', value: '2' }, { name: '@below', value: '100' }] });
  });
});

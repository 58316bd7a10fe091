// What an approval covers: exactly what the approver was shown. Extended-protocol batches with
// several executions of one held statement, parameters too large to show in full, and grants for
// statements whose literals are the point, driven with the raw protocol and node-postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { encodeCancelRequest } from '../../protocols/postgres/startup-message.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { decodeNotice } from '../../protocols/postgres/error-response.js';
import { encodeFrontend } from '../helpers/pg-codec.js';
import { errorIn, rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { approvalsApi } from '../helpers/approvals.js';
import { direct } from '../helpers/pg-env.js';
import { eventually } from '../unit/approvals-support.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

const T = 'approval_scope';
const RULES = `
rules:
  - name: scope-writes
    match: { relations: [${T}], access: [insert] }
    action: hold
  - name: dangerous
    match: { dangerous_functions: true }
    action: hold
approvals:
  timeout: 20s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`;

let w: TestWarden;
let approverToken: string;
const api = approvalsApi(() => w.warden.adminUrl, () => approverToken);

beforeAll(async () => {
  w = await startTestWarden({ yaml: RULES });
  approverToken = await w.token({ subject: 'dba-scope', roles: [APPROVER_ROLE] });
  await direct(`DROP TABLE IF EXISTS ${T}; CREATE TABLE ${T} (v text)`);
  await direct(`GRANT ALL ON ${T} TO PUBLIC`);
});

afterAll(async () => {
  await w?.stop();
});

function sendCancel(processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect(w.port, '127.0.0.1', () => c.end(encodeCancelRequest(processId, secretKey)));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
}

async function raw(): Promise<RawSession> {
  return rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
}

/** Reads messages until a NOTICE of a held statement arrives; its request id. */
async function nextHeld(s: RawSession): Promise<string> {
  for (;;) {
    const m = await s.reader.next(15_000);
    if (!m) throw new Error('connection closed while waiting for a held statement');
    if (m[0] === Backend.errorResponse) throw new Error(`error instead of a hold: ${decodeNotice(m).message}`);
    if (m[0] !== Backend.noticeResponse) continue;
    const id = /request (apr_\w+)/.exec(decodeNotice(m).message)?.[1];
    if (id) return id;
  }
}

describe('an approval covers what the approver saw', () => {
  it('one extended batch executing a held statement twice with other parameters: each execution is held and shown on its own', async () => {
    const s = await raw();
    const text = (v: string): Buffer => Buffer.from(v);
    s.socket.write(Buffer.concat([
      encodeFrontend({ type: 'Parse', value: { name: 'ins', sql: `INSERT INTO ${T} VALUES ($1)`, paramTypes: [] } }),
      encodeFrontend({ type: 'Bind', value: { portal: '', statement: 'ins', paramFormats: [], params: [text('batch-shown')], resultFormats: [] } }),
      encodeFrontend({ type: 'Execute', value: { portal: '', maxRows: 0 } }),
      encodeFrontend({ type: 'Bind', value: { portal: '', statement: 'ins', paramFormats: [], params: [text('batch-unseen')], resultFormats: [] } }),
      encodeFrontend({ type: 'Execute', value: { portal: '', maxRows: 0 } }),
      encodeFrontend({ type: 'Sync' }),
    ]));
    const first = await nextHeld(s);
    expect((await api('GET', `/approvals/${first}`)).json.request.params).toEqual(['batch-shown']);
    expect((await api('POST', `/approvals/${first}/approve`, { reason: 'one row' })).status).toBe(200);
    // The second execution carries a value the approver has not seen: it waits for its own decision.
    const second = await nextHeld(s);
    expect(second).not.toBe(first);
    expect((await api('GET', `/approvals/${second}`)).json.request.params).toEqual(['batch-unseen']);
    expect((await api('POST', `/approvals/${second}/deny`, { reason: 'not that one' })).status).toBe(200);
    const rest = await s.reader.until(Backend.readyForQuery);
    expect(rest.filter((m) => m[0] === Backend.errorResponse).map((m) => decodeNotice(m).message)).toEqual([
      expect.stringContaining(`statement denied by dev:dba-scope (request ${second})`),
    ]);
    // The batch is one implicit transaction: the denial undid the first row too.
    expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v LIKE 'batch-%'`)).rows[0]).toEqual({ n: 0 });
    s.socket.end();
  });
});

describe('EXECUTE of a prepared statement', () => {
  it('a statement prepared with a protocol Parse (never executed, so never held) and run by SQL EXECUTE is held like the statement itself; a grant does not cover the name prepared again', async () => {
    const s = await raw();
    const prepare = async (sql: string, close = false): Promise<void> => {
      s.socket.write(Buffer.concat([
        ...(close ? [encodeFrontend({ type: 'Close', value: { kind: 'statement', name: 'sneaky' } })] : []),
        encodeFrontend({ type: 'Parse', value: { name: 'sneaky', sql, paramTypes: [] } }),
        encodeFrontend({ type: 'Sync' }),
      ]));
      expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    };
    await prepare(`INSERT INTO ${T} VALUES ('via-execute')`);
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'EXECUTE sneaky' }));
    const id = await nextHeld(s);
    const shown = (await api('GET', `/approvals/${id}`)).json.request;
    expect(shown.statement).toBe('EXECUTE sneaky');
    expect(shown.reason).toContain(`(EXECUTE sneaky runs: INSERT INTO ${T} VALUES ('via-execute'))`);
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'ok', grant_minutes: 5 })).status).toBe(200);
    expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    // The grant covers the same EXECUTE of the same statement …
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'EXECUTE sneaky' }));
    const again = await s.reader.until(Backend.readyForQuery);
    expect(again.some((m) => m[0] === Backend.noticeResponse)).toBe(false);
    expect(errorIn(again)).toBeUndefined();
    // … not the name prepared again as something else.
    await prepare(`INSERT INTO ${T} VALUES ('swapped')`, true);
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'EXECUTE sneaky' }));
    const id2 = await nextHeld(s);
    expect(id2).not.toBe(id);
    expect((await api('POST', `/approvals/${id2}/deny`, { reason: 'no' })).status).toBe(200);
    expect(errorIn(await s.reader.until(Backend.readyForQuery))?.code).toBe('42501');
    expect((await direct(`SELECT v, count(*)::int AS n FROM ${T} WHERE v IN ('via-execute', 'swapped') GROUP BY v`)).rows).toEqual([{ v: 'via-execute', n: 2 }]);
    s.socket.end();
  });
});

describe('EXPLAIN ANALYZE and CREATE TABLE AS of EXECUTE', () => {
  it('run the prepared statement: they are held like it', async () => {
    const s = await raw();
    s.socket.write(Buffer.concat([
      encodeFrontend({ type: 'Parse', value: { name: 'inner_ins', sql: `INSERT INTO ${T} VALUES ('via-explain')`, paramTypes: [] } }),
      encodeFrontend({ type: 'Sync' }),
    ]));
    expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    for (const sql of ['EXPLAIN ANALYZE EXECUTE inner_ins', 'CREATE TEMP TABLE scope_ctas AS EXECUTE inner_ins']) {
      s.socket.write(encodeFrontend({ type: 'Query', sql }));
      const id = await nextHeld(s);
      expect((await api('GET', `/approvals/${id}`)).json.request.reason).toContain(`(EXECUTE inner_ins runs: INSERT INTO ${T} VALUES ('via-explain'))`);
      expect((await api('POST', `/approvals/${id}/deny`, { reason: 'no' })).status).toBe(200);
      expect(errorIn(await s.reader.until(Backend.readyForQuery))?.code).toBe('42501');
    }
    expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v = 'via-explain'`)).rows[0]).toEqual({ n: 0 });
    s.socket.end();
  });
});

describe('a protocol Execute of a statement prepared with SQL PREPARE', () => {
  it('is held like the prepared statement each time, though the PREPARE was approved', async () => {
    const s = await raw();
    s.socket.write(encodeFrontend({ type: 'Query', sql: `PREPARE sqlprep(text) AS INSERT INTO ${T} VALUES ($1)` }));
    const id = await nextHeld(s);
    expect((await api('POST', `/approvals/${id}/approve`, { reason: 'prepare only' })).status).toBe(200);
    expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    s.socket.write(Buffer.concat([
      encodeFrontend({ type: 'Bind', value: { portal: '', statement: 'sqlprep', paramFormats: [], params: [Buffer.from('via-bind')], resultFormats: [] } }),
      encodeFrontend({ type: 'Execute', value: { portal: '', maxRows: 0 } }),
      encodeFrontend({ type: 'Sync' }),
    ]));
    const id2 = await nextHeld(s);
    const shown = (await api('GET', `/approvals/${id2}`)).json.request;
    expect(shown.params).toEqual(['via-bind']);
    expect(shown.statement).toBe(`PREPARE sqlprep(text) AS INSERT INTO ${T} VALUES ($1)`);
    expect((await api('POST', `/approvals/${id2}/deny`, { reason: 'no' })).status).toBe(200);
    expect(errorIn(await s.reader.until(Backend.readyForQuery))?.code).toBe('42501');
    expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v = 'via-bind'`)).rows[0]).toEqual({ n: 0 });
    s.socket.end();
  });
});

describe('FETCH from a portal of a held statement', () => {
  it('a portal bound to a held statement but never executed, read with SQL FETCH, is held like the statement itself', async () => {
    const s = await raw();
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'BEGIN' }));
    expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    s.socket.write(Buffer.concat([
      encodeFrontend({ type: 'Parse', value: { name: '', sql: `INSERT INTO ${T} SELECT 'via-fetch' RETURNING v`, paramTypes: [] } }),
      encodeFrontend({ type: 'Bind', value: { portal: 'sneaky_portal', statement: '', paramFormats: [], params: [], resultFormats: [] } }),
      encodeFrontend({ type: 'Sync' }),
    ]));
    expect(errorIn(await s.reader.until(Backend.readyForQuery))).toBeUndefined();
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'FETCH ALL FROM sneaky_portal' }));
    const id = await nextHeld(s);
    expect((await api('GET', `/approvals/${id}`)).json.request.reason).toContain(`(FETCH from sneaky_portal runs: INSERT INTO ${T} SELECT 'via-fetch' RETURNING v)`);
    expect((await api('POST', `/approvals/${id}/deny`, { reason: 'no' })).status).toBe(200);
    expect(errorIn(await s.reader.until(Backend.readyForQuery))?.code).toBe('42501');
    s.socket.write(encodeFrontend({ type: 'Query', sql: 'COMMIT' }));
    await s.reader.until(Backend.readyForQuery);
    expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v = 'via-fetch'`)).rows[0]).toEqual({ n: 0 });
    s.socket.end();
  });
});

describe('a cancel of a held execution in an extended batch', () => {
  it('fails the batch with 57014, inside a transaction block too (25P02 after it), and the session goes on', async () => {
    const s = await raw();
    const send = (sql: string, params: string[] = []): void => {
      s.socket.write(Buffer.concat([
        encodeFrontend({ type: 'Parse', value: { name: '', sql, paramTypes: [] } }),
        encodeFrontend({ type: 'Bind', value: { portal: '', statement: '', paramFormats: [], params: params.map((p) => Buffer.from(p)), resultFormats: [] } }),
        encodeFrontend({ type: 'Execute', value: { portal: '', maxRows: 0 } }),
        encodeFrontend({ type: 'Sync' }),
      ]));
    };
    const readyStatus = (msgs: Buffer[]): string => String.fromCharCode(msgs.at(-1)?.[5] ?? 0);
    send('BEGIN');
    expect(readyStatus(await s.reader.until(Backend.readyForQuery))).toBe('T');
    send(`INSERT INTO ${T} VALUES ($1)`, ['cancelled-in-tx']);
    const id = await nextHeld(s);
    await sendCancel(s.key.processId, s.key.secretKey);
    const answer = await s.reader.until(Backend.readyForQuery);
    expect(answer.filter((m) => m[0] === Backend.errorResponse).map((m) => decodeNotice(m).code)).toEqual(['57014']);
    expect(readyStatus(answer)).toBe('E');
    expect((await api('GET', `/approvals/${id}`)).json.request.status).toBe('withdrawn');
    send('SELECT 1');
    expect((await s.reader.until(Backend.readyForQuery)).filter((m) => m[0] === Backend.errorResponse).map((m) => decodeNotice(m).code)).toEqual(['25P02']);
    send('ROLLBACK');
    expect(readyStatus(await s.reader.until(Backend.readyForQuery))).toBe('I');
    s.socket.end();
  });
});

describe('the client leaves or cancels at once', () => {
  it('a client that sends a held statement and disconnects before it is stored leaves no pending request', async () => {
    for (let i = 0; i < 3; i++) {
      const s = await raw();
      const marker = `gone-${i}-${Date.now()}`;
      s.socket.end(Buffer.concat([encodeFrontend({ type: 'Query', sql: `INSERT INTO ${T} VALUES ('${marker}')` }), encodeFrontend({ type: 'Terminate' })]));
      const request = await eventually(async () => {
        const all = (await api('GET', '/approvals?limit=50')).json.requests as { statement: string; status: string }[];
        return all.find((r) => r.statement.includes(marker));
      });
      // Withdrawn once the request exists; never left pending for approvers to decide.
      const status = await eventually(async () => {
        const all = (await api('GET', '/approvals?limit=50')).json.requests as { statement: string; status: string }[];
        const r = all.find((x) => x.statement.includes(marker));
        return r && r.status !== 'pending' ? r.status : undefined;
      }, 3000, `request ${JSON.stringify(request)} to be withdrawn`);
      expect(status).toBe('withdrawn');
    }
  });
});

describe('the agent token expires while a statement is held', () => {
  it('withdraws it at once (an approval afterwards finds nothing to run), then ends the session with 28000', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token({ ttlSeconds: 3 }), database: 'shop', ssl: { ca: w.ca } });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    const ended = new Promise<string>((resolve) => c.on('error', (e: Error) => resolve(`${(e as pg.DatabaseError).code ?? ''} ${e.message}`)));
    await c.connect();
    const pending = c.query(`INSERT INTO ${T} VALUES ('after-expiry')`).catch((e: pg.DatabaseError) => e);
    const id = await heldIn(notices, 0);
    const err = (await pending) as pg.DatabaseError;
    expect(err.code).toBe('42501');
    expect(err.message).toBe(`approval request ${id} was withdrawn: token-expired`);
    expect(await ended).toBe('28000 access token expired; reconnect with a fresh token');
    expect((await api('GET', `/approvals/${id}`)).json.request.status).toBe('withdrawn');
    expect((await api('POST', `/approvals/${id}/approve`, {})).status).toBe(409);
    expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v = 'after-expiry'`)).rows[0]).toEqual({ n: 0 });
  });
});

describe('grants', () => {
  it('cover the principal the approver saw: not another user (object id) of the same client application', async () => {
    const connect = async (oid?: string): Promise<{ c: pg.Client; notices: string[] }> => {
      const password = await w.token(oid ? { extraClaims: { oid } } : {});
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password, database: 'shop', ssl: { ca: w.ca } });
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.connect();
      return { c, notices };
    };
    const alice = await connect('0000aaaa-0000-0000-0000-00000000a11c');
    const bob = await connect('0000bbbb-0000-0000-0000-000000000b0b');
    try {
      const first = alice.c.query(`INSERT INTO ${T} VALUES ('granted-alice')`);
      const id = await heldIn(alice.notices, 0);
      expect((await api('POST', `/approvals/${id}/approve`, { reason: 'alice may', grant_minutes: 5 })).status).toBe(200);
      await first;
      await alice.c.query(`INSERT INTO ${T} VALUES ('granted-alice-2')`);
      expect(alice.notices).toHaveLength(1); // the grant covered the second
      const other = bob.c.query(`INSERT INTO ${T} VALUES ('not-bob')`).catch((e: Error) => e);
      const id2 = await heldIn(bob.notices, 0);
      expect((await api('POST', `/approvals/${id2}/deny`, { reason: 'not bob' })).status).toBe(200);
      expect(((await other) as pg.DatabaseError).code).toBe('42501');
    } finally {
      await alice.c.end();
      await bob.c.end();
    }
  });
});

describe('parameters too large to show in full', () => {
  it('are marked as cut with their whole size, and a grant for one value does not cover another with the same beginning', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    try {
      const head = 'x'.repeat(17_000);
      const sql = "SELECT set_config('warden.note', $1, false) IS NOT NULL AS ok";
      const first = c.query(sql, [`${head}shown`]);
      const id = await heldIn(notices, 0);
      const shown = (await api('GET', `/approvals/${id}`)).json.request.params as string[];
      expect(shown).toHaveLength(1);
      expect(shown[0]).toMatch(/^x{16000,}… \[cut for display: 17005 bytes in all; sha256 [0-9a-f]{64}\]$/);
      expect((await api('POST', `/approvals/${id}/approve`, { reason: 'this note', grant_minutes: 5 })).status).toBe(200);
      expect((await first).rows).toEqual([{ ok: true }]);
      // The grant is for that exact value: another one is held, though it begins the same way.
      const before = notices.length;
      const second = c.query(sql, [`${head}other`]).catch((e: Error) => e);
      const id2 = await heldIn(notices, before);
      expect(id2).not.toBe(id);
      expect((await api('POST', `/approvals/${id2}/deny`, { reason: 'not this one' })).status).toBe(200);
      expect(((await second) as pg.DatabaseError).code).toBe('42501');
      expect((await c.query("SELECT right(current_setting('warden.note'), 5) AS tail")).rows).toEqual([{ tail: 'shown' }]);
    } finally {
      await c.end();
    }
  });
});

async function heldIn(notices: string[], from: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const id = notices.slice(from).map((n) => /request (apr_\w+)/.exec(n)?.[1]).find(Boolean);
    if (id) return id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('statement was not held');
}

describe('statement text too long to show', () => {
  it('is refused with a clear error instead of being shown cut; nothing is held and the session goes on', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    try {
      // What an approver would have seen, cut, is the harmless head; the tail is another statement.
      const sql = `INSERT INTO ${T} VALUES ('long') /* ${' '.repeat(300_000)} */; INSERT INTO ${T} VALUES ('tail')`;
      const err = (await c.query(sql).catch((e: pg.DatabaseError) => e)) as pg.DatabaseError;
      expect(err.code).toBe('42501');
      expect(err.message).toBe('statement requires approval (rule "scope-writes") but is too long to show to an approver (more than 262144 characters)');
      expect(err.hint).toBe('send it as smaller statements');
      expect(notices).toEqual([]);
      const pending = (await api('GET', '/approvals?status=pending')).json.requests as { statement: string }[];
      expect(pending.filter((r) => r.statement.includes("'long'"))).toEqual([]);
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      expect((await direct(`SELECT count(*)::int AS n FROM ${T} WHERE v IN ('long', 'tail')`)).rows[0]).toEqual({ n: 0 });
    } finally {
      await c.end();
    }
  });
});

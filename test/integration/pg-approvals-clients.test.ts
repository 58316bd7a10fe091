// Just-in-time approval with real clients other than node-postgres: psql (simple protocol, the
// NOTICE on stderr, exit codes), postgres.js pipelining several queries on one connection with one
// of them held, and pgJDBC (a named prepared statement, prepareThreshold=1, and executeBatch,
// test/clients/HeldJdbcClient.java). A human decides through the admin HTTP API while the client
// waits; what each client then reports is asserted, and for the pipeline compared with what a
// direct connection reports when the same statement fails on the server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalsApi } from '../helpers/approvals.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { direct, directUrl } from '../helpers/pg-env.js';
import { run } from '../helpers/run.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

const RUN = Math.random().toString(36).slice(2, 8);
/** Tables of this file (several test files share the harness database). */
const T = {
  psql: `apc_psql_${RUN}`,
  pipe: `apc_pipe_${RUN}`,
  pipeDirect: `apc_pipe_direct_${RUN}`,
  jdbc: `apc_jdbc_${RUN}`,
};

const CONFIG = `
rules:
  - name: ddl
    match: { kinds: [create, alter, drop, truncate] }
    action: hold
    message: schema changes need a DBA
  - name: jdbc-writes
    match: { relations: ["apc_jdbc_*"], access: [insert, update, delete] }
    action: hold
approvals:
  timeout: 45s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`;

/** What a failing statement looks like to PostgreSQL itself: the stand-in for a refusal on a direct connection. */
const FAILS_ON_SERVER = "DO $$BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'insufficient_privilege'; END$$";

let w: TestWarden;
let approverToken: string;
const api = approvalsApi(() => w.warden.adminUrl, () => approverToken);
let dir: string;

beforeAll(async () => {
  w = await startTestWarden({ yaml: CONFIG });
  approverToken = await w.token({ subject: 'dba-alice', roles: [APPROVER_ROLE] });
  dir = mkdtempSync(join(tmpdir(), 'warden-apc-'));
  writeFileSync(join(dir, 'warden-ca.pem'), w.ca);
  await direct(`CREATE TABLE ${T.jdbc} (id int PRIMARY KEY, note text)`);
});

afterAll(async () => {
  await w?.stop();
  await direct(Object.values(T).map((t) => `DROP TABLE IF EXISTS ${t};`).join(' ')).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PendingRequest {
  id: string;
  statement: string;
  params?: (string | null)[];
  rule: string;
}

/** The pending request whose statement passes `match`, once the API lists it. */
async function pendingRequest(match: (r: PendingRequest) => boolean, timeoutMs = 20_000): Promise<PendingRequest> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const listed = await api('GET', '/approvals?status=pending');
    expect(listed.status).toBe(200);
    const found = (listed.json.requests as PendingRequest[]).find(match);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no pending request appeared');
}

async function decide(id: string, action: 'approve' | 'deny', reason: string): Promise<void> {
  const res = await api('POST', `/approvals/${id}/${action}`, { reason });
  expect(res.status).toBe(200);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(missingClient('psql'))('psql', () => {
  function psql(args: string[], token: string) {
    return run(findClient('psql') as string, ['-X', '--no-psqlrc', '-v', 'ON_ERROR_STOP=1', ...args], {
      env: { PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: token, PGDATABASE: 'shop', PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(dir, 'warden-ca.pem'), PGCONNECT_TIMEOUT: '10' },
      timeoutMs: 40_000,
    });
  }

  it('a held CREATE TABLE runs once approved: psql prints its result, the NOTICE goes to stderr, exit 0', async () => {
    const ran = psql(['-c', `CREATE TABLE ${T.psql} (id int)`, '-c', `INSERT INTO ${T.psql} VALUES (1), (2)`, '-c', `SELECT count(*) AS n FROM ${T.psql}`], await w.token());
    const req = await pendingRequest((r) => r.statement === `CREATE TABLE ${T.psql} (id int)`);
    expect(req.rule).toBe('ddl');
    await decide(req.id, 'approve', 'planned change');
    const r = await ran;
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('CREATE TABLE\nINSERT 0 2\n n \n---\n 2\n(1 row)\n\n');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`NOTICE:  warden: statement held for approval (request ${req.id}, rule "ddl")`);
    expect(lines[1]).toMatch(/^DETAIL: {2}schema changes need a DBA \(CREATE TABLE\)\. Waiting until \d{4}-\d\d-\d\dT[\d:.]+Z for an approver\.$/);
    expect(lines[2]).toBe(`HINT:  approve or deny at ${w.warden.adminUrl}/approvals/ui?request=${req.id}`);
    expect(lines.slice(3).join('\n')).toBe('');
    expect((await direct(`SELECT count(*)::int AS n FROM ${T.psql}`)).rows[0]).toEqual({ n: 2 });
    expect((await api('GET', `/approvals/${req.id}`)).json.request).toMatchObject({ status: 'approved', decision: { reason: 'planned change', by: { label: 'dev:dba-alice' } } });
  });

  it('a held DROP TABLE that is denied: psql prints the error with the reason and exits 1; nothing was dropped', async () => {
    const ran = psql(['-c', `DROP TABLE ${T.psql}`, '-c', 'SELECT 1'], await w.token());
    const req = await pendingRequest((r) => r.statement === `DROP TABLE ${T.psql}`);
    await decide(req.id, 'deny', 'the table is still in use');
    const r = await ran;
    expect(r.code).toBe(1); // ON_ERROR_STOP: the second -c never ran
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`NOTICE:  warden: statement held for approval (request ${req.id}, rule "ddl")`);
    expect(r.stderr).toContain(`ERROR:  statement denied by dev:dba-alice (request ${req.id})\nDETAIL:  reason: the table is still in use\n`);
    expect((await direct(`SELECT count(*)::int AS n FROM ${T.psql}`)).rows[0]).toEqual({ n: 2 });
  });
});

describe('postgres.js pipelining with a held statement', () => {
  type Outcome = { ok: unknown } | { code: string };

  /** Starts the queries at once on one connection (postgres.js pipelines them) and records the order they finish in. */
  function pipeline(sql: postgres.Sql | postgres.ReservedSql, texts: string[]): { order: number[]; settled: Promise<Outcome[]> } {
    const order: number[] = [];
    const settled = Promise.all(
      texts.map((text, i) =>
        sql.unsafe(text).then(
          (rows) => {
            order.push(i);
            return { ok: rows.length === 0 ? `${rows.command} ${rows.count}` : rows.map((r) => ({ ...r })) };
          },
          (err: postgres.PostgresError) => {
            order.push(i);
            return { code: err.code };
          },
        ),
      ),
    );
    return { order, settled };
  }

  /** One connection through warden; `sent` collects each query's text as postgres.js writes it to the socket. */
  async function agent(notices: string[], sent: string[] = []): Promise<postgres.Sql> {
    return postgres({
      host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, max: 1,
      onnotice: (n) => notices.push(String(n.message)),
      debug: (_connection, text) => sent.push(text),
    });
  }

  async function heldId(notices: string[], from = 0): Promise<string> {
    for (let i = 0; i < 400; i++) {
      const id = notices.slice(from).map((n) => /request (apr_\w+),/.exec(n)?.[1]).find(Boolean);
      if (id) return id;
      await sleep(25);
    }
    throw new Error('no statement was held');
  }

  it('queries before the held one complete; the ones after wait, then complete in order once it is approved', async () => {
    const notices: string[] = [];
    const sent: string[] = [];
    const sql = await agent(notices, sent);
    try {
      await sql`SELECT 1`; // connected (postgres.js has fetched its array types)
      sent.length = 0;
      const texts = [
        'SELECT 1::int AS a',
        'SELECT count(*)::int AS n FROM customers',
        `CREATE TABLE ${T.pipe} (id int)`,
        `INSERT INTO ${T.pipe} VALUES (1), (2)`, // needs the table: runs only after the CREATE
        `SELECT count(*)::int AS n FROM ${T.pipe}`,
      ];
      const p = pipeline(sql, texts);
      const id = await heldId(notices);
      await sleep(300); // give the queued queries every chance to (wrongly) overtake the held one
      expect(sent).toEqual(texts); // all five are in flight on the one connection …
      expect(p.order).toEqual([0, 1]); // … and only those before the held one have completed
      expect((await api('GET', `/approvals/${id}`)).json.request).toMatchObject({ status: 'pending', statement: `CREATE TABLE ${T.pipe} (id int)` });
      await decide(id, 'approve', 'pipeline ok');
      const outcomes = await p.settled;
      expect(p.order).toEqual([0, 1, 2, 3, 4]);
      expect(outcomes).toEqual([{ ok: [{ a: 1 }] }, { ok: [{ n: 20 }] }, { ok: 'CREATE TABLE null' }, { ok: 'INSERT 2' }, { ok: [{ n: 2 }] }]);
      expect(notices).toHaveLength(1);
    } finally {
      await sql.end({ timeout: 1 }); // a failed assertion must not wait for a held query
    }
  });

  it('a denied statement fails with 42501 and the rest of the pipeline goes on as PostgreSQL would after that error', async () => {
    await direct(`CREATE TABLE ${T.pipeDirect} (id int); INSERT INTO ${T.pipeDirect} VALUES (1), (2)`);
    const texts = (table: string, held: string) => ['SELECT 1::int AS a', held, `INSERT INTO ${table} VALUES (3)`, `SELECT count(*)::int AS n FROM ${table}`];

    // What PostgreSQL does when the second query of this pipeline fails.
    const d = postgres(directUrl(), { max: 1, onnotice: () => undefined });
    let expected: Outcome[];
    try {
      expected = await pipeline(d, texts(T.pipeDirect, FAILS_ON_SERVER)).settled;
    } finally {
      await d.end();
    }
    expect(expected).toEqual([{ ok: [{ a: 1 }] }, { code: '42501' }, { ok: 'INSERT 1' }, { ok: [{ n: 3 }] }]);

    const notices: string[] = [];
    const sql = await agent(notices);
    try {
      await sql`SELECT 1`;
      const p = pipeline(sql, texts(T.pipe, `DROP TABLE ${T.pipe}`));
      const id = await heldId(notices);
      await sleep(200);
      expect(p.order).toEqual([0]);
      await decide(id, 'deny', 'not during business hours');
      const outcomes = await p.settled;
      expect(outcomes).toEqual(expected);
      expect(p.order).toEqual([0, 1, 2, 3]);
      // The same, inside a transaction: after the refusal the transaction is aborted (25P02), as on the server.
      const tx = (table: string, held: string) => ['BEGIN', `INSERT INTO ${table} VALUES (4)`, held, `SELECT count(*)::int AS n FROM ${table}`, 'ROLLBACK'];
      const dd = postgres(directUrl(), { max: 1, onnotice: () => undefined });
      let expectedTx: Outcome[];
      try {
        const reserved = await dd.reserve();
        expectedTx = await pipeline(reserved, tx(T.pipeDirect, FAILS_ON_SERVER)).settled;
        reserved.release();
      } finally {
        await dd.end();
      }
      expect(expectedTx).toEqual([{ ok: 'BEGIN null' }, { ok: 'INSERT 1' }, { code: '42501' }, { code: '25P02' }, { ok: 'ROLLBACK null' }]);
      const before = notices.length;
      const reserved = await sql.reserve();
      const ptx = pipeline(reserved, tx(T.pipe, `DROP TABLE ${T.pipe}`));
      const id2 = await heldId(notices, before);
      await decide(id2, 'deny', 'still no');
      expect(await ptx.settled).toEqual(expectedTx);
      reserved.release();
      expect((await sql.unsafe(`SELECT count(*)::int AS n FROM ${T.pipe}`))[0]).toEqual({ n: 3 });
    } finally {
      await sql.end({ timeout: 1 }); // a failed assertion must not wait for a held query
    }
  });
});

describe.skipIf(missingClient('java') || missingClient('javac') || missingClient('pgjdbc'))('pgJDBC', () => {
  it('a held PreparedStatement (prepareThreshold=1) and executeBatch, approved and denied while Java waits', async () => {
    const source = fileURLToPath(new URL('../clients/HeldJdbcClient.java', import.meta.url));
    const compiled = await run(findClient('javac') as string, ['-d', dir, source], { timeoutMs: 90_000 });
    expect(compiled.stderr).toBe('');
    expect(compiled.code).toBe(0);
    const url = `jdbc:postgresql://127.0.0.1:${w.port}/shop?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(dir, 'warden-ca.pem'))}&prepareThreshold=1&ApplicationName=held-jdbc`;
    const java = run(findClient('java') as string, ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', `${dir}:${findClient('pgjdbc') as string}`, 'HeldJdbcClient', url, 'agent', await w.token(), T.jdbc], { timeoutMs: 60_000 });

    // The approver: decides each request of the table by its note parameter, while Java waits.
    const decided: Array<{ id: string; params: (string | null)[] | undefined; action: 'approve' | 'deny' }> = [];
    let finished = false;
    const approver = (async () => {
      while (!finished) {
        const listed = await api('GET', '/approvals?status=pending');
        for (const r of listed.json.requests as PendingRequest[]) {
          if (!r.statement.includes(T.jdbc)) continue;
          const note = r.params?.[1] ?? '';
          const action = note.startsWith('ok-') ? 'approve' : 'deny';
          decided.push({ id: r.id, params: r.params, action });
          await decide(r.id, action, action === 'approve' ? `fine: ${note}` : `refused: ${note}`);
        }
        await sleep(50);
      }
    })();
    const r = await java.finally(() => {
      finished = true;
    });
    await approver;
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('prepared-approved: ok count 1');
    expect(lines[1]).toMatch(/^prepared-denied: error 42501 ERROR: statement denied by dev:dba-alice \(request apr_\w+\)\s+Detail: reason: refused: no-prepared$/);
    expect(lines[2]).toBe('batch-approved: ok counts [1, 1, 1]');
    expect(lines[3]).toMatch(/^batch-denied: error 42501 Batch entry 0 INSERT INTO .* was aborted: ERROR: statement denied by dev:dba-alice \(request apr_\w+\)/);
    expect(lines[3]).toContain('| next 42501 ERROR: statement denied by dev:dba-alice');
    expect(lines[4]).toBe('server-prepared: ok insert statements 1');
    expect(lines[5]).toBe('rows: ok 1=ok-prepared, 10=ok-batch-10, 11=ok-batch-11, 12=ok-batch-12');
    expect(lines).toHaveLength(6);

    // One request per execution: each entry of a batch carries parameters of its own, which the
    // approver sees and decides (an approval of entry 10 does not let 11 and 12 run unseen).
    expect(decided.map((d) => [d.params, d.action])).toEqual([
      [['1', 'ok-prepared'], 'approve'],
      [['2', 'no-prepared'], 'deny'],
      [['10', 'ok-batch-10'], 'approve'],
      [['11', 'ok-batch-11'], 'approve'],
      [['12', 'ok-batch-12'], 'approve'],
      [['20', 'no-batch-20'], 'deny'],
    ]);
    expect((await direct(`SELECT array_agg(id ORDER BY id) AS ids FROM ${T.jdbc}`)).rows[0]).toEqual({ ids: [1, 10, 11, 12] });
  }, 120_000);
});

// Two whole warden instances (listeners, admin API, relays) sharing one PostgreSQL approvals
// store, with real agents connected: a statement held on instance A is released within a second
// when an approver decides through instance B's API (the poll is 30 s, so only the store's
// notification can do it); a denial through B; a graceful stop of A while it holds (the request is
// withdrawn and the statement never runs); and a crash:
// A killed with SIGKILL while holding (a `warden start` child process), started again on the same
// data directory and instance id, marks its orphaned request withdrawn — and only its own, not
// B's — while a grant given before the crash is still honoured.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTART_REASON } from '../../src/approvals/service.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { DevIssuer } from '../../src/identity/dev-issuer.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';
import { direct, TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { AGENT_ROLE, APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

const RUN = Math.random().toString(36).slice(2, 8);
const DATABASE = `warden_approvals_${RUN}`;
const TABLE = `apm_${RUN}`;

/** The shared store: a fresh database of the harness server, as its superuser. */
function storeUrl(): string {
  const p = testPostgres();
  return `postgres://postgres:${encodeURIComponent(p.superuserPassword)}@${p.host}:${p.port}/${DATABASE}`;
}

/** rules: and approvals: as every instance has them; only instance_id differs. */
function sections(instanceId: string): string {
  return `
rules:
  - name: ddl
    match: { kinds: [create, alter, drop, truncate] }
    action: hold
approvals:
  timeout: 30s
  instance_id: ${instanceId}
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
  store:
    type: postgres
    url: ${JSON.stringify(storeUrl())}
    poll_interval: 30s
    timeout: 5s
`;
}

async function superuser(database: string, sql: string): Promise<void> {
  const p = testPostgres();
  const c = new pg.Client({ host: p.host, port: p.port, user: 'postgres', password: p.superuserPassword, database });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let b: TestWarden;
let bob: string; // an approver's token, from B's issuer
const started: TestWarden[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  await superuser('postgres', `CREATE DATABASE ${DATABASE}`);
  await direct(`CREATE TABLE ${TABLE} (id int)`);
  b = await startTestWarden({ yaml: sections('warden-b') });
  bob = await b.token({ subject: 'dba-bob', roles: [APPROVER_ROLE] });
});

afterAll(async () => {
  for (const w of started) await w.stop().catch(() => undefined);
  await b?.stop();
  await superuser('postgres', `DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`).catch(() => undefined);
  await direct(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startA(opts: { dataDir?: string; adminPort?: number } = {}): Promise<TestWarden> {
  const w = await startTestWarden({
    yaml: sections('warden-a'),
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    mutate: (config) => {
      if (opts.adminPort !== undefined && config.listen.admin) config.listen.admin.port = opts.adminPort;
    },
  });
  started.push(w);
  return w;
}

async function api(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

interface Agent {
  c: pg.Client;
  notices: string[];
}

async function agent(port: number, token: string, ca: string): Promise<Agent> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', password: token, database: 'shop', ssl: { ca } });
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  c.on('error', () => undefined); // connections cut on purpose (crash, shutdown)
  await c.connect();
  return { c, notices };
}

/** The request id of the NOTICE the agent got when its statement was held. */
async function heldId(a: Agent, from = 0): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const id = a.notices.slice(from).map((n) => /request (apr_\w+),/.exec(n)?.[1]).find(Boolean);
    if (id) return id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the statement was not held');
}

/** B's view of a request. */
async function onB(id: string): Promise<any> {
  const r = await api(b.warden.adminUrl as string, 'GET', `/approvals/${id}`, bob);
  expect(r.status).toBe(200);
  return r.json.request;
}

/** Waits until B's API lists the request as pending (the approver's view of the shared store). */
async function pendingOnB(id: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const listed = await api(b.warden.adminUrl as string, 'GET', '/approvals?status=pending', bob);
    if ((listed.json.requests as Array<{ id: string }>).some((r) => r.id === id)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`request ${id} is not pending on B`);
}

describe('two warden instances, one PostgreSQL approvals store', () => {
  it('a statement held on A is released on A within a second of an approval through B', async () => {
    const a = await startA();
    const ag = await agent(a.port, await a.token(), a.ca);
    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      const from = ag.notices.length;
      const held = ag.c.query(`ALTER TABLE ${TABLE} ALTER COLUMN id SET DEFAULT ${i}`).then(
        () => performance.now(),
        (e: Error) => e,
      );
      const id = await heldId(ag, from);
      await pendingOnB(id);
      expect(await onB(id)).toMatchObject({ status: 'pending', instance_id: 'warden-a', statement: `ALTER TABLE ${TABLE} ALTER COLUMN id SET DEFAULT ${i}` });
      const t0 = performance.now();
      const res = await api(b.warden.adminUrl as string, 'POST', `/approvals/${id}/approve`, bob, { reason: `round ${i}` });
      expect(res.status).toBe(200);
      const released = await held;
      if (released instanceof Error) throw released;
      latencies.push(released - t0);
    }
    const worst = Math.max(...latencies);
    console.log(`approval through B → statement released on A: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms (worst ${worst.toFixed(1)} ms; poll interval 30 s)`);
    expect(worst).toBeLessThan(1500);
    const { rows } = await direct(`SELECT column_default FROM information_schema.columns WHERE table_name = '${TABLE}' AND column_name = 'id'`);
    expect(rows[0]).toEqual({ column_default: '2' }); // the last approved ALTER ran, in A's session
    await ag.c.end();
  });

  it('a denial through B reaches the agent on A as 42501 with the approver and reason; the session goes on', async () => {
    const a = started[0] ?? (await startA());
    const ag = await agent(a.port, await a.token(), a.ca);
    const t0 = performance.now();
    const failed = ag.c.query(`DROP TABLE ${TABLE}`).catch((e: pg.DatabaseError) => e);
    const id = await heldId(ag);
    await pendingOnB(id);
    const denied = performance.now();
    expect((await api(b.warden.adminUrl as string, 'POST', `/approvals/${id}/deny`, bob, { reason: 'keep the table' })).status).toBe(200);
    const err = (await failed) as pg.DatabaseError;
    const took = performance.now() - denied;
    console.log(`denial through B → error on A after ${took.toFixed(1)} ms (held ${(denied - t0).toFixed(0)} ms)`);
    expect(took).toBeLessThan(1500);
    expect(err.code).toBe('42501');
    expect(err.message).toBe(`statement denied by dev:dba-bob (request ${id})`);
    expect(err.detail).toBe('reason: keep the table');
    // A's API shows the decision made on B.
    const onA = await api(a.warden.adminUrl as string, 'GET', `/approvals/${id}`, await a.token({ subject: 'dba-carol', roles: [APPROVER_ROLE] }));
    expect(onA.json.request).toMatchObject({ status: 'denied', decision: { reason: 'keep the table', by: { label: 'dev:dba-bob' } } });
    expect((await ag.c.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0]).toEqual({ n: 0 });
    await ag.c.end();
  });

  it('stopping A while it holds a statement withdraws the request; the statement never runs', async () => {
    const a = started[0] ?? (await startA());
    await direct(`INSERT INTO ${TABLE} VALUES (1)`);
    const ag = await agent(a.port, await a.token(), a.ca);
    const failed = ag.c.query(`TRUNCATE ${TABLE}`).then(
      () => undefined,
      (e: Error) => e,
    );
    const id = await heldId(ag);
    await pendingOnB(id);
    await a.stop();
    started.splice(started.indexOf(a), 1);
    const err = (await failed) as pg.DatabaseError | undefined;
    expect(err).toBeInstanceOf(Error);
    const request = await onB(id);
    expect(request).toMatchObject({ status: 'withdrawn', decision: { reason: expect.any(String) } });
    expect(request.decision.by).toBeUndefined(); // nobody decided it
    expect((await api(b.warden.adminUrl as string, 'POST', `/approvals/${id}/approve`, bob, {})).status).toBe(409);
    expect((await direct(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0]).toEqual({ n: 1 });
  });

  it('A crashes while holding; started again (same data dir and instance id) it withdraws its orphaned request, not B\'s, and a grant from before is honoured', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warden-apm-a-'));
    dirs.push(dataDir);
    const adminPort = await freePort();
    const child = await startChildWarden(dataDir, adminPort, 'warden-a');
    try {
      const dev = await DevIssuer.load({ enabled: true, issuer: `http://127.0.0.1:${adminPort}/dev-issuer`, keyFile: join(dataDir, 'keys', 'dev-issuer.pem'), audience: 'api://warden', tenant: '11111111-2222-3333-4444-555555555555' });
      const agentToken = await dev.mint({ subject: 'crash-agent', roles: [AGENT_ROLE] });

      // A statement held on B, pending throughout A's crash and restart.
      const onBAgent = await agent(b.port, await b.token(), b.ca);
      const bHeld = onBAgent.c.query(`ALTER TABLE ${TABLE} ADD COLUMN from_b int`).then(() => 'ran', (e: Error) => e.message);
      const bId = await heldId(onBAgent);

      // On A: a grant for one statement's fingerprint, then a held request that the crash orphans.
      const ag = await agent(child.pgPort, agentToken, child.ca);
      const granted = ag.c.query(`ALTER TABLE ${TABLE} ALTER COLUMN id SET DEFAULT 10`);
      const grantedId = await heldId(ag);
      await pendingOnB(grantedId);
      const approved = await api(b.warden.adminUrl as string, 'POST', `/approvals/${grantedId}/approve`, bob, { reason: 'defaults may change today', grant_minutes: 30 });
      expect(approved.status).toBe(200);
      const grantId = approved.json.grant.id as string;
      await granted;
      const from = ag.notices.length;
      const orphaned = ag.c.query(`TRUNCATE ${TABLE}`).catch((e: Error) => e);
      const orphanId = await heldId(ag, from);
      await pendingOnB(orphanId);

      child.process.kill('SIGKILL');
      await child.exited;
      expect(await orphaned).toBeInstanceOf(Error); // the connection is gone
      expect(await onB(orphanId)).toMatchObject({ status: 'pending', instance_id: 'warden-a' }); // nobody withdrew it

      const restarted = await startA({ dataDir, adminPort });
      expect(await onB(orphanId)).toMatchObject({ status: 'withdrawn', decision: { reason: RESTART_REASON } });
      expect((await api(b.warden.adminUrl as string, 'POST', `/approvals/${orphanId}/approve`, bob, {})).status).toBe(409);
      // B's request is B's: A's restart leaves it pending, and an approval through A releases it on B.
      expect(await onB(bId)).toMatchObject({ status: 'pending', instance_id: 'warden-b' });
      const carol = await restarted.token({ subject: 'dba-carol', roles: [APPROVER_ROLE] });
      expect((await api(restarted.warden.adminUrl as string, 'POST', `/approvals/${bId}/approve`, carol, { reason: 'fine' })).status).toBe(200);
      expect(await bHeld).toBe('ran');
      await onBAgent.c.end();

      // The grant survived the crash: the same fingerprint runs on the restarted A without a hold.
      const again = await agent(restarted.port, await dev.mint({ subject: 'crash-agent', roles: [AGENT_ROLE] }), restarted.ca);
      await again.c.query(`ALTER TABLE ${TABLE} ALTER COLUMN id SET DEFAULT 11`);
      expect(again.notices).toEqual([]);
      const grants = await api(restarted.warden.adminUrl as string, 'GET', '/grants', carol);
      expect(grants.json.grants).toEqual([expect.objectContaining({ id: grantId, status: 'live', request_id: grantedId })]);
      // … and only that fingerprint: anything else is still held.
      const other = again.c.query(`TRUNCATE ${TABLE}`).catch((e: pg.DatabaseError) => e);
      const otherId = await heldId(again);
      expect((await api(restarted.warden.adminUrl as string, 'POST', `/approvals/${otherId}/deny`, carol, { reason: 'no' })).status).toBe(200);
      expect(((await other) as pg.DatabaseError).code).toBe('42501');
      await again.c.end();
      const { rows } = await direct(`SELECT column_default FROM information_schema.columns WHERE table_name = '${TABLE}' AND column_name = 'id'`);
      expect(rows[0]).toEqual({ column_default: '11' });
    } finally {
      child.process.kill('SIGKILL');
    }
  }, 60_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface ChildWarden {
  process: ChildProcess;
  exited: Promise<unknown>;
  pgPort: number;
  ca: string;
}

/** `warden start` in a child process (so that it can be killed), configured as startA() configures A in-process. */
async function startChildWarden(dataDir: string, adminPort: number, instanceId: string): Promise<ChildWarden> {
  const p = testPostgres();
  const pair = await selfSignedCertificate('localhost');
  mkdirSync(join(dataDir, 'tls'), { recursive: true });
  writeFileSync(join(dataDir, 'tls', 'cert.pem'), pair.cert);
  writeFileSync(join(dataDir, 'tls', 'key.pem'), pair.key, { mode: 0o600 });
  const config = [
    `data_dir: ${JSON.stringify(dataDir)}`,
    `listen: { postgres: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: ${adminPort} } }`,
    `tls: { cert_file: ${JSON.stringify(join(dataDir, 'tls', 'cert.pem'))}, key_file: ${JSON.stringify(join(dataDir, 'tls', 'key.pem'))} }`,
    'log: { level: info }',
    'identity: { issuers: [], dev_issuer: { enabled: true, tenant: 11111111-2222-3333-4444-555555555555 } }',
    'targets:',
    `  shop: { protocol: postgres, host: ${p.host}, port: ${p.port}, database: shop, user: ${TEST_ROLES.scram.user}, password: "\${env:SHOP_PASSWORD}", tls: { mode: disable } }`,
    'principals:',
    `  - { name: agent, match: { issuer: dev, roles: [${AGENT_ROLE}] }, targets: ["*"] }`,
    sections(instanceId),
  ].join('\n');
  const file = join(dataDir, 'warden.yaml');
  writeFileSync(file, config);
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot(), 'src/cli/main.ts'), 'start', '--config', file], {
    cwd: projectRoot(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', SHOP_PASSWORD: TEST_ROLES.scram.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const pgPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden start did not open its listener: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = /"msg":"PostgreSQL listener ready"/.test(line) ? /"address":"127\.0\.0\.1:(\d+)"/.exec(line) : null;
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => reject(new Error(`warden start exited: ${stderr}`)));
  });
  return { process: child, exited, pgPort, ca: pair.cert };
}

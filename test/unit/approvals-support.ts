// Real parts for the approvals tests: stores on real files and on the harness PostgreSQL (one
// fresh schema per test), sample requests and principals, a TCP forwarder that can cut the store
// off (an unreachable database, for real), a running approvals server (admin HTTP server, dev
// issuer tokens, startApprovals), a JSON client and a server-sent events client.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import { newId, principalKeyOf, requesterInfo, type ActorInfo, type ApprovalRequest } from '../../src/approvals/model.js';
import type { HoldRequest } from '../../src/approvals/types.js';
import type { Principal } from '../../src/identity/types.js';
import { testPostgres } from '../helpers/pg-env.js';
import { AdminServer, httpBase } from '../../src/admin/server.js';
import { Metrics } from '../../src/admin/metrics.js';
import type { ApprovalsConfig, ApproverRule, PostgresStoreConfig, StatementRule } from '../../src/approvals/config.js';
import { startApprovals, type Approvals } from '../../src/approvals/start.js';
import type { WardenConfig } from '../../src/config/types.js';
import { DevIssuer, type MintOptions } from '../../src/identity/dev-issuer.js';
import { devIssuerHttpHandler } from '../../src/identity/dev-issuer-http.js';
import { createTokenVerifier } from '../../src/identity/verifier.js';
import type { TokenVerifier } from '../../src/identity/types.js';
import { classify, initSqlParser } from '../../src/sql/index.js';
import { silentLogger } from '../../src/log.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Directories tempDir made for this test file: removed once its tests are done. */
const madeDirs: string[] = [];
afterAll(() => {
  for (const d of madeDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'warden-approvals-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** The harness PostgreSQL as the superuser, database `postgres`. */
export function storeUrl(port?: number): string {
  const p = testPostgres();
  return `postgres://postgres:${encodeURIComponent(p.superuserPassword)}@${p.host}:${port ?? p.port}/postgres`;
}

export function uniqueSchema(): string {
  return `apr_test_${Math.random().toString(36).slice(2, 10)}`;
}

export function pgStoreConfig(schema: string, extra: Partial<PostgresStoreConfig> = {}): PostgresStoreConfig {
  return { type: 'postgres', url: storeUrl(), schema, timeout: 2000, pollInterval: 200, ...extra };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: storeUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export function principal(name = 'support-agent', extra: Partial<Principal> = {}): Principal {
  return {
    name,
    issuerName: 'dev',
    issuer: 'http://127.0.0.1:9/dev-issuer',
    subject: `${name}-app`,
    subjectClaim: 'azp',
    objectId: `oid-${name}`,
    roles: ['Warden.Agent'],
    groups: [],
    groupsOverage: false,
    audience: 'api://warden',
    ...extra,
  };
}

/** A request as the relay builds it, classified by its SQL (the parser must be loaded). */
export function holdRequest(extra: Partial<HoldRequest> = {}): HoldRequest {
  const req: HoldRequest = {
    sessionId: 'sess-1',
    instanceId: 'instance-a',
    protocol: 'postgres',
    target: 'shop',
    principal: principal(),
    clientAddress: '127.0.0.1:50000',
    sql: 'DELETE FROM orders WHERE id = 42',
    fingerprint: 'ignored-for-postgres',
    normalized: 'DELETE FROM orders WHERE id = $1',
    rule: 'order-deletes',
    reason: 'DELETE: needs approval (rule "order-deletes")',
    ...extra,
  };
  return 'classification' in extra ? req : { ...req, classification: classify(req.sql) };
}

/** A stored request, as the service would write it. */
export function request(extra: Partial<ApprovalRequest> = {}, now = new Date()): ApprovalRequest {
  const p = principal();
  return {
    id: newId('apr'),
    status: 'pending',
    createdAt: now,
    expiresAt: new Date(now.getTime() + 5 * 60_000),
    instanceId: 'instance-a',
    sessionId: 'sess-1',
    protocol: 'postgres',
    target: 'shop',
    principal: requesterInfo(p),
    principalKey: principalKeyOf(p),
    clientAddress: '127.0.0.1:50000',
    sql: "DELETE FROM orders WHERE id = 42 AND note = 'ünïcode ✓'",
    fingerprint: 'fp-1',
    normalized: 'DELETE FROM orders WHERE id = $1 AND note = $2',
    params: ['42', null],
    rule: 'order-deletes',
    reason: 'needs approval',
    ...extra,
  };
}

export function actor(name = 'alice'): ActorInfo {
  return { rule: 'dbas', issuerName: 'dev', issuer: 'http://127.0.0.1:9/dev-issuer', subject: name, objectId: `oid-${name}`, label: `dev:${name}` };
}

/** Waits until `check` returns a value (not undefined/false), or fails after `ms`. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A TCP forwarder in front of the harness PostgreSQL. `cut()` drops every connection and refuses
 * new ones (the store becomes unreachable); `restore()` lets connections through again.
 */
export interface Forwarder {
  port: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function forwarder(): Promise<Forwarder> {
  const target = testPostgres();
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        open = false;
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- a running approvals server: admin HTTP server, dev issuer, verifier, startApprovals ------

export const APPROVER_ROLE = 'Warden.Approver';
export const AGENT_ROLE = 'Warden.Agent';

export interface ApprovalsServer {
  url: string;
  approvals: Approvals;
  dev: DevIssuer;
  verifier: TokenVerifier;
  dataDir: string;
  /** A dev-issuer token. */
  token(subject: string, opts?: Partial<MintOptions>): Promise<string>;
  /** The principal an agent token maps to (as the relay would build it). */
  agent(subject: string, name?: string): Promise<Principal>;
  stop(): Promise<void>;
  /** Dies without withdrawing anything: the store is closed first, so it keeps the requests pending. */
  crash(): Promise<void>;
}

export interface ApprovalsServerOptions {
  approvals?: Partial<ApprovalsConfig>;
  rules?: StatementRule[];
  instanceId?: string;
  /** Trust this dev issuer (another instance's) instead of starting one: tokens work on both. */
  trust?: DevIssuer;
}

/** The approvers every integration test uses: dev-issuer tokens with the approver role decide anything. */
export const TEST_APPROVERS: ApproverRule[] = [
  { name: 'approvers', match: { issuer: 'dev', roles: [APPROVER_ROLE] }, targets: ['*'], rules: ['*'], principals: ['*'], mayGrant: true },
];

export async function startApprovalsServer(opts: ApprovalsServerOptions = {}): Promise<ApprovalsServer> {
  await initSqlParser();
  const dataDir = tempDir('warden-approvals-server-');
  const admin = new AdminServer({ metrics: new Metrics(), logger: silentLogger, health: () => ({}) });
  const address = await admin.listen({ host: '127.0.0.1', port: 0 });
  const url = httpBase(address);
  const dev = opts.trust ?? await DevIssuer.load({
    enabled: true,
    issuer: `${url}/dev-issuer`,
    keyFile: join(dataDir, 'keys', 'dev-issuer.pem'),
    audience: 'api://warden',
    tenant: '11111111-2222-3333-4444-555555555555',
  });
  if (!opts.trust) admin.use(devIssuerHttpHandler(dev));
  const verifier = createTokenVerifier({ issuers: [] }, { devIssuer: dev });
  const config: WardenConfig = {
    dataDir,
    listen: { admin: { host: '127.0.0.1', port: 0 } },
    plaintextTokens: 'never',
    log: { level: 'silent' },
    identity: { issuers: [] },
    targets: new Map(),
    principals: [],
    sessions: { shutdownGrace: 1000, maxMessageBytes: 1 << 20, loginTimeout: 10_000, maxBufferedBytes: 4 * 2 ** 30 },
    rules: opts.rules ?? [],
    approvals: {
      timeout: 60_000,
      grantMax: 3_600_000,
      approvers: TEST_APPROVERS,
      store: { type: 'embedded', dir: join(dataDir, 'approvals'), retention: 86_400_000 },
      storeGrace: 1000,
      ...opts.approvals,
    },
  };
  const approvals = await startApprovals(config, { verifier, admin, adminUrl: url, instanceId: opts.instanceId ?? 'instance-a', logger: silentLogger });
  return {
    url,
    approvals,
    dev,
    verifier,
    dataDir,
    token: (subject, o = {}) => dev.mint({ subject, ...o }),
    async agent(subject, name = 'support-agent') {
      const identity = await verifier.verify(await dev.mint({ subject, roles: [AGENT_ROLE] }));
      return { ...identity, name };
    },
    async stop() {
      await approvals.close();
      await admin.close();
    },
    async crash() {
      await approvals.store.close();
      await admin.close();
      await approvals.close();
    },
  };
}

/** A JSON call to the admin API. */
export async function api(
  base: string,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: Record<string, any>; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, any>), headers: res.headers };
}

export interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, any>;
}

/** A real server-sent events client over fetch: collects events until closed. */
export interface SseClient {
  status: number;
  events: SseEvent[];
  /** Waits for the first event named `event` matching `pick` (from the start of the stream). */
  next(event: string, pick?: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  close(): void;
}

export async function sse(base: string, token: string | undefined, lastEventId?: string): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(`${base}/approvals/events`, {
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  if (res.ok && res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const lines = block.split('\n');
            const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
            const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
            const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
            if (event !== undefined) events.push({ event, data: data === '' ? {} : (JSON.parse(data) as Record<string, any>), ...(id ? { id } : {}) });
          }
        }
      } catch {
        // aborted
      }
    })();
  } else {
    await res.body?.cancel();
  }
  return {
    status: res.status,
    events,
    next: (event, pick = () => true, ms = 5000) => eventually(() => events.find((e) => e.event === event && pick(e)), ms, `SSE event ${event}`),
    close: () => controller.abort(),
  };
}

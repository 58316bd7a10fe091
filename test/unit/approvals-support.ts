// Real parts for the approvals tests: stores on real files and on the harness PostgreSQL (one
// fresh schema per test), sample requests and principals, a TCP forwarder that can cut the store
// off (an unreachable database, for real), and small waiting helpers.
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { PostgresStoreConfig } from '../../src/approvals/config.js';
import { newId, principalKeyOf, requesterInfo, type ActorInfo, type ApprovalRequest } from '../../src/approvals/model.js';
import type { HoldRequest } from '../../src/approvals/types.js';
import type { Principal } from '../../src/identity/types.js';
import { testPostgres } from '../helpers/pg-env.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tempDir(prefix = 'warden-approvals-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
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

export function holdRequest(extra: Partial<HoldRequest> = {}): HoldRequest {
  return {
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

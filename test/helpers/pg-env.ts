// What the global setup tells each test file about the shared PostgreSQL server.
import pg from 'pg';
import { inject } from 'vitest';

export interface TestRole {
  user: string;
  password: string;
  method: 'scram' | 'md5' | 'password';
}

/** Upstream roles, one per authentication method the relay must speak. */
export const TEST_ROLES = {
  scram: { user: 'warden_scram', password: 'scram-secret-1', method: 'scram' },
  md5: { user: 'warden_md5', password: 'md5-secret-1', method: 'md5' },
  password: { user: 'warden_plain', password: 'plain-secret-1', method: 'password' },
  tlsOnly: { user: 'warden_tls', password: 'tls-secret-1', method: 'scram' },
} as const satisfies Record<string, TestRole>;

export interface TestPostgres {
  host: string;
  port: number;
  superuserPassword: string;
  binDir: string;
  source: string;
  /** PEM of the server's self-signed certificate, usable as a CA for verify-full. */
  caCert: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: TestPostgres;
  }
}

export function testPostgres(): TestPostgres {
  return inject('pg');
}

/** A libpq URL straight to the test server (no warden), as `role`, database `shop`. */
export function directUrl(role: TestRole = TEST_ROLES.scram, database = 'shop'): string {
  const pg = testPostgres();
  return `postgres://${role.user}:${encodeURIComponent(role.password)}@${pg.host}:${pg.port}/${database}`;
}

/** Runs `sql` on the test server directly, as the scram role. */
export async function direct(sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: directUrl() });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * warden's configuration file for a warden run in a child process: one target `shop` on the test
 * server, the dev issuer, the `agent` principal, plaintext tokens on loopback, and `extra` lines.
 */
export function childWardenYaml(dataDir: string, extra: string[]): string {
  const pgs = testPostgres();
  const role = TEST_ROLES.scram;
  return [
    `data_dir: ${JSON.stringify(dataDir)}`,
    'listen: { postgres: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: 0 } }',
    'plaintext_tokens: loopback',
    'log: { level: silent }',
    'identity: { issuers: [], dev_issuer: { enabled: true } }',
    'targets:',
    `  shop: { protocol: postgres, host: ${pgs.host}, port: ${pgs.port}, database: shop, user: ${role.user}, password: "${role.password}", tls: { mode: disable } }`,
    'principals:',
    '  - { name: agent, match: { issuer: dev, roles: [Warden.Agent] }, targets: ["*"] }',
    ...extra,
    '',
  ].join('\n');
}

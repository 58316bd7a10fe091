// Starts a real warden (in this process) in front of the harness PostgreSQL, with the dev
// issuer for tokens, TLS with a self-signed certificate, and one target per upstream auth method.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PostgresTargetConfig, PrincipalRule, TdsTargetConfig, WardenConfig } from '../../src/config/types.js';
import type { MintOptions } from '../../src/identity/dev-issuer.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { startWarden, type WardenServer } from '../../src/server.js';
import { parseConfig } from '../../src/config/load.js';
import { testPostgres, TEST_ROLES, type TestRole } from './pg-env.js';

export const AGENT_ROLE = 'Warden.Agent';
/** Role that the YAML base's `approver` principal (and approver rules in tests) match. */
export const APPROVER_ROLE = 'Warden.Approver';

export interface TestWarden {
  warden: WardenServer;
  config: WardenConfig;
  host: string;
  port: number;
  /** PEM of warden's certificate, to verify it (sslrootcert / ssl.ca). */
  ca: string;
  dataDir: string;
  /** A fresh token from the dev issuer (roles default to [AGENT_ROLE]). */
  token(opts?: Partial<MintOptions>): Promise<string>;
  /** libpq URL through warden for `target`, token as password. */
  url(token: string, target?: string, params?: Record<string, string>): string;
  stop(): Promise<void>;
}

export function pgTarget(name: string, role: TestRole, extra: Partial<PostgresTargetConfig> = {}): PostgresTargetConfig {
  const pg = testPostgres();
  return {
    name,
    protocol: 'postgres',
    host: pg.host,
    port: pg.port,
    database: 'shop',
    user: role.user,
    password: role.password,
    tls: { mode: 'disable' },
    connectTimeout: 5000,
    ...extra,
  };
}

export interface TestWardenOptions {
  targets?: PostgresTargetConfig[];
  principals?: PrincipalRule[];
  tls?: boolean;
  plaintextTokens?: WardenConfig['plaintextTokens'];
  logger?: Logger;
  mutate?: (config: WardenConfig) => void;
  /**
   * Extra top-level YAML sections (rules:, approvals:, masking:, transcripts: …), read by the real
   * configuration loader against a base that matches the defaults above; `{{dataDir}}` is replaced.
   */
  yaml?: string;
  /** Reuse this data directory (e.g. to restart warden on the same state). */
  dataDir?: string;
  /** TDS targets (test/helpers/tds.ts); with them, or with `listenTds`, warden opens its TDS listener too. */
  tdsTargets?: TdsTargetConfig[];
  listenTds?: boolean;
}

/** The sections the loader reads from `yaml`, merged into the hand-built configuration. */
function yamlSections(yamlText: string, dataDir: string, targets: readonly PostgresTargetConfig[], tdsTargets: readonly TdsTargetConfig[] = []): Partial<WardenConfig> {
  const base = [
    `data_dir: ${JSON.stringify(dataDir)}`,
    'listen: { postgres: { host: 127.0.0.1, port: 0 }, admin: { host: 127.0.0.1, port: 0 } }',
    'tls: { self_signed: true }',
    'identity: { issuers: [], dev_issuer: { enabled: true } }',
    'targets:',
    ...targets.map((t) => `  ${t.name}: { protocol: postgres, host: ${t.host}, port: ${t.port}, database: ${t.database}, user: ${t.user}, password: x, tls: { mode: disable } }`),
    ...tdsTargets.map((t) => `  ${t.name}: { protocol: tds, host: ${t.host}, port: ${t.port}, database: ${t.database}, user: x, password: x, tls: { mode: disable } }`),
    'principals:',
    `  - { name: agent, match: { issuer: dev, roles: [${AGENT_ROLE}] }, targets: ["*"] }`,
    `  - { name: approver, match: { issuer: dev, roles: [${APPROVER_ROLE}] }, targets: [shop] }`,
  ].join('\n');
  const parsed = parseConfig(`${base}\n${yamlText.replaceAll('{{dataDir}}', dataDir)}`, { source: 'test.yaml', baseDir: dataDir });
  const out: Partial<WardenConfig> = {};
  if (parsed.rules) out.rules = parsed.rules;
  if (parsed.approvals) out.approvals = parsed.approvals;
  if (parsed.masking) out.masking = parsed.masking;
  if (/^transcripts:/m.test(yamlText) && parsed.transcripts) out.transcripts = parsed.transcripts;
  return out;
}

export async function startTestWarden(opts: TestWardenOptions = {}): Promise<TestWarden> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'warden-test-'));
  const pg = testPostgres();
  const targets = opts.targets ?? [
    pgTarget('shop', TEST_ROLES.scram),
    pgTarget('shop_md5', TEST_ROLES.md5),
    pgTarget('shop_plain', TEST_ROLES.password),
    pgTarget('shop_tls', TEST_ROLES.tlsOnly, { tls: { mode: 'verify-full', ca: pg.caCert } }),
  ];
  const config: WardenConfig = {
    dataDir,
    listen: {
      postgres: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      ...(opts.tdsTargets || opts.listenTds ? { tds: { host: '127.0.0.1', port: 0 } } : {}),
    },
    ...(opts.tls === false ? {} : { tls: { selfSigned: true as const } }),
    plaintextTokens: opts.plaintextTokens ?? 'never',
    log: { level: 'silent' },
    identity: {
      issuers: [],
      devIssuer: {
        enabled: true,
        keyFile: join(dataDir, 'keys', 'dev-issuer.pem'),
        audience: 'api://warden',
        tenant: '11111111-2222-3333-4444-555555555555',
      },
    },
    targets: new Map([...targets, ...(opts.tdsTargets ?? [])].map((t) => [t.name, t])),
    principals: opts.principals ?? [
      { name: 'agent', match: { issuer: 'dev', roles: [AGENT_ROLE] }, targets: ['*'], onTokenExpiry: 'end' },
    ],
    sessions: { shutdownGrace: 2000, maxMessageBytes: 1 << 30, loginTimeout: 10_000, maxBufferedBytes: 4 * 2 ** 30 },
  };
  if (opts.yaml) Object.assign(config, yamlSections(opts.yaml, dataDir, targets, opts.tdsTargets));
  opts.mutate?.(config);
  const warden = await startWarden(config, { logger: opts.logger ?? silentLogger });
  const address = warden.postgres;
  if (!address) throw new Error('warden did not open its PostgreSQL listener');
  return {
    warden,
    config,
    host: '127.0.0.1',
    port: address.port,
    ca: warden.certificate ?? '',
    dataDir,
    token: async (o = {}) => {
      const dev = warden.devIssuer;
      if (!dev) throw new Error('no dev issuer');
      return dev.mint({ subject: 'test-agent-app', roles: [AGENT_ROLE], ...o });
    },
    url: (token, target = 'shop', params = {}) => {
      const q = new URLSearchParams({ sslmode: 'require', ...params });
      return `postgres://agent:${encodeURIComponent(token)}@127.0.0.1:${address.port}/${target}?${q}`;
    },
    stop: async () => {
      await warden.close(500);
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

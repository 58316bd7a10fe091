// `warden explain-mask` through the real CLI entry point in a child process, against the harness
// PostgreSQL: by principal name (with roles and groups), by a dev-issuer token, as JSON, and its
// usage errors.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/embedded/seed.js';
import { DEFAULT_DEV_AUDIENCE, DEFAULT_DEV_TENANT, DevIssuer } from '../../src/identity/dev-issuer.js';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';

const exec = promisify(execFile);
let dir: string;
let configFile: string;
const ISSUER = 'http://127.0.0.1:59999/dev-issuer';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('npx', ['tsx', 'src/cli/main.ts', 'explain-mask', ...args], {
      cwd: projectRoot(),
      env: { ...process.env, SHOP_PASSWORD: TEST_ROLES.scram.password },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(() => {
  const pg = testPostgres();
  dir = mkdtempSync(join(tmpdir(), 'warden-explain-mask-'));
  configFile = join(dir, 'warden.yaml');
  writeFileSync(
    configFile,
    `listen: { postgres: { host: 127.0.0.1, port: 6432 } }
plaintext_tokens: loopback
identity:
  dev_issuer: { enabled: true, issuer: ${ISSUER}, key_file: ${join(dir, 'dev.pem')} }
targets:
  shop: { protocol: postgres, host: ${pg.host}, port: ${pg.port}, database: shop, user: ${TEST_ROLES.scram.user}, password: "\${env:SHOP_PASSWORD}", tls: { mode: disable } }
principals:
  - { name: agent, match: { issuer: dev, subject: agent-app }, targets: [shop] }
  - { name: auditor, match: { issuer: dev, subject: auditor-app }, targets: [shop] }
masking:
  rules:
    - name: national-ids
      columns: [public.customers.ssn]
      strategy: partial
      exempt: { principals: [auditor], roles: [Shop.Security] }
    - name: contact
      columns: [customers.email]
      strategy: email
      inference: hold
`,
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('warden explain-mask', () => {
  it('explains each output column and the verdict for a principal by name', async () => {
    const out = await cli(['--config', configFile, '--principal', 'agent', '--target', 'shop', "SELECT c.ssn AS x, upper(email), id FROM customers c WHERE email LIKE 'a%'"]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('principal agent on target shop: rules national-ids, contact');
    // Other tests may create same-named tables in other schemas meanwhile: an unqualified name
    // counts for each of them, so the list of columns may be longer.
    expect(out.stdout).toMatch(/verdict: hold — WHERE on (\S+, )*public\.customers\.email(, \S+)* \(compared with a pattern\): inference is held for approval by masking rule "contact"/);
    expect(out.stdout).toMatch(/x\s+masked \(partial, rule national-ids\): public\.customers\.ssn/);
    expect(out.stdout).toMatch(/upper\s+masked \(redact, rule contact\): derived from (\S+, )*public\.customers\.email(, \S+)* via function/);
    expect(out.stdout).toMatch(/id\s+clear/);
  });

  it('exemptions by role apply', async () => {
    const out = await cli(['--config', configFile, '--principal', 'agent', '--role', 'Shop.Security', '--target', 'shop', 'SELECT ssn FROM customers']);
    expect(out.stdout).toContain('rules contact');
    expect(out.stdout).toMatch(/ssn\s+clear/);
  });

  it('takes an access token and finds its principal like a login does', async () => {
    const dev = await DevIssuer.load({ enabled: true, issuer: ISSUER, keyFile: join(dir, 'dev.pem'), audience: DEFAULT_DEV_AUDIENCE, tenant: DEFAULT_DEV_TENANT });
    const token = await dev.mint({ subject: 'auditor-app' });
    const out = await cli(['--config', configFile, '--token', token, '--target', 'shop', '--json', 'SELECT ssn, email FROM customers; CREATE TABLE t AS SELECT email FROM customers']);
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout) as { principal: string; statements: { verdict: { action: string }; columns: { name: string; mask: { rule: string } | null }[] }[] };
    expect(r.principal).toBe('auditor');
    expect(r.statements[0]!.columns.map((c) => [c.name, c.mask?.rule ?? null])).toEqual([['ssn', null], ['email', 'contact']]);
    expect(r.statements[1]!.verdict.action).toBe('deny');
    const bad = await cli(['--config', configFile, '--token', `${token.slice(0, -4)}AAAA`, '--target', 'shop', 'SELECT 1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('token rejected');
  });

  it('says what is wrong with its arguments', async () => {
    expect((await cli(['--config', configFile, '--target', 'shop', 'SELECT 1'])).stderr).toContain('give exactly one of --principal and --token');
    expect((await cli(['--config', configFile, '--principal', 'agent', 'SELECT 1'])).stderr).toContain('--target is required');
    expect((await cli(['--config', configFile, '--principal', 'agent', '--target', 'nope', 'SELECT 1'])).stderr).toContain('target "nope" is not configured');
    expect((await cli(['--config', configFile, '--principal', 'agent', '--target', 'shop'])).code).toBe(2);
  });
});

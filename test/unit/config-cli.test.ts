// `warden check-config`: exit codes and output, through the real CLI entry point in a child
// process, and in-process for argument handling.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configPath, run } from '../../src/cli/commands/check-config.js';
import { projectRoot } from '../../src/embedded/seed.js';

const exec = promisify(execFile);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, command = 'check-config'): Promise<Outcome> {
  const { WARDEN_CONFIG: _drop, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await exec('npx', ['tsx', 'src/cli/main.ts', command, ...args], {
      cwd: projectRoot(),
      env: { ...inherited, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('warden check-config (child process)', () => {
  it('exits 0 with a one-line summary for the example policy', async () => {
    const out = await cli(['--config', 'fixtures/policies/example.yaml'], { SHOP_PG_PASSWORD: 'pg-pw', SHOP_MSSQL_PASSWORD: 'ms-pw' });
    expect(out).toEqual({
      code: 0,
      stdout:
        'fixtures/policies/example.yaml: ok — 2 targets (shop, shop_mssql), 2 issuers (azure, dev), ' +
        '4 principals (reporting-agent, support-agent, security-team, local-developer)\n',
      stderr: '',
    });
    expect(out.stdout).not.toContain('pg-pw');
  });

  it('exits 1 and prints every problem as file:line:col: key: reason', async () => {
    const file = 'test/fixtures/config/broken.yaml';
    const out = await cli(['-c', file]);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr.split('\n')).toEqual([
      `${file}:4:21: listen.postgres.host: must be a literal IP address (such as 127.0.0.1, 0.0.0.0 or ::1) or "localhost", got "db.example.com"`,
      `${file}:8:7: identity.issuers[0]: needs jwks_uri (the key set URL) or jwks_file (a local JWKS file)`,
      `${file}:10:7: identity.issuers[0].jwks_url: unknown key (did you mean "jwks_uri"?)`,
      `${file}:12:20: identity.issuers[0].algorithms[0]: must not be an HMAC algorithm: warden verifies public-key signatures from the JWKS (RFC 8725 s3.1), got "HS256"`,
      `${file}:17:11: targets.shop.port: must be an integer between 1 and 65535, got "abc"`,
      `${file}:20:15: targets.shop.password: environment variable WARDEN_TEST_UNSET_PASSWORD is not set`,
      `${file}:24:15: principals[0].targets[0]: unknown target "shopp" (did you mean "shop"?); known targets: shop (or "*" for all)`,
      `${file}: 7 problems`,
      '',
    ]);
  });
});

describe('warden check-config and start: the transcript signing key (child process)', () => {
  let dir = '';
  const config = (keyFile: string) => `listen:
  postgres: { host: 127.0.0.1, port: 0 }
plaintext_tokens: loopback
identity:
  dev_issuer: { enabled: true, issuer: "http://127.0.0.1:9187/dev-issuer" }
targets:
  shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p }
data_dir: state
transcripts:
  key_file: ${keyFile}
`;
  /** Writes the config as `<name>.yaml` in the temp dir; returns its path. */
  const write = (name: string, keyFile: string): string => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, config(keyFile));
    return path;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-check-key-'));
    const ed = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'enc.pem'), String(ed.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass' })));
    writeFileSync(join(dir, 'rsa.pem'), String(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' })));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('check-config exits 1 naming the line of a missing explicit key_file', async () => {
    const path = write('missing', 'nokey.pem');
    const out = await cli(['-c', path]);
    expect(out).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `${path}:10:13: transcripts.key_file: cannot read transcript signing key file ${JSON.stringify(join(dir, 'nokey.pem'))}: no such file ` +
        '(only the default key file is generated; an explicit key_file must exist)\n' +
        `${path}: 1 problem\n`,
    });
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('check-config exits 1 saying an encrypted key is encrypted', async () => {
    const path = write('encrypted', 'enc.pem');
    const out = await cli(['-c', path]);
    expect(out).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `${path}:10:13: transcripts.key_file: ${JSON.stringify(join(dir, 'enc.pem'))} is encrypted; warden needs an unencrypted key (protect the file with permissions instead)\n` +
        `${path}: 1 problem\n`,
    });
  });

  it('start refuses an RSA key as an invalid configuration, naming the key, its line and the key type', async () => {
    const path = write('rsa', 'rsa.pem');
    const out = await cli(['-c', path], {}, 'start');
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      'warden: invalid configuration:\n' +
        `${path}:10:13: transcripts.key_file: ${JSON.stringify(join(dir, 'rsa.pem'))} holds an RSA private key; transcripts are signed with Ed25519 (openssl genpkey -algorithm ed25519 makes one)\n`,
    );
    // Refused before anything was started or written.
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});

describe('warden check-config (arguments)', () => {
  let stdout = '';
  let stderr = '';
  const saved = process.env.WARDEN_CONFIG;

  function capture(): void {
    stdout = '';
    stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
  }

  afterEach(() => {
    vi.restoreAllMocks();
    if (saved === undefined) delete process.env.WARDEN_CONFIG;
    else process.env.WARDEN_CONFIG = saved;
  });

  it('takes the path from --config, then $WARDEN_CONFIG, then ./warden.yaml', () => {
    expect(configPath('a.yaml', { WARDEN_CONFIG: 'b.yaml' })).toBe('a.yaml');
    expect(configPath(undefined, { WARDEN_CONFIG: 'b.yaml' })).toBe('b.yaml');
    expect(configPath(undefined, { WARDEN_CONFIG: '' })).toBe('./warden.yaml');
    expect(configPath(undefined, {})).toBe('./warden.yaml');
  });

  it('reads $WARDEN_CONFIG when no --config is given', async () => {
    process.env.WARDEN_CONFIG = join(projectRoot(), 'test/fixtures/config/broken.yaml');
    capture();
    expect(await run([])).toBe(1);
    expect(stderr).toContain(`${process.env.WARDEN_CONFIG}:17:11: targets.shop.port:`);
  });

  it('exits 1 naming the file when it does not exist', async () => {
    capture();
    expect(await run(['--config=/nonexistent/warden.yaml'])).toBe(1);
    expect(stderr).toBe('/nonexistent/warden.yaml: cannot read the configuration file: no such file\n/nonexistent/warden.yaml: 1 problem\n');
  });

  it('exits 2 on an unknown option, 0 on --help', async () => {
    capture();
    expect(await run(['--confg', 'x.yaml'])).toBe(2);
    expect(stderr).toMatch(/^warden check-config: Unknown option '--confg'/);
    expect(await run(['--help'])).toBe(0);
    expect(stdout).toMatch(/^usage: warden check-config \[--config FILE\]/);
  });
});

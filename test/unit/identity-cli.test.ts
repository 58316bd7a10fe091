// `warden token mint`: flags, defaults, output, and one run through the real `warden` entry point.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { devIssuerConfigFromFlags, parseMintFlags, parseTtl, run } from '../../src/cli/commands/token.js';
import { DevIssuer } from '../../src/identity/dev-issuer.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-token-cli-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

describe('warden token mint', () => {
  it('prints a token signed by the key file, with the requested claims', async () => {
    const keyFile = join(dir, 'a', 'dev.pem');
    const args = ['mint', '--subject', 'agent-7', '--role', 'r1', '--role', 'r2', '--group', 'g1'];
    const first = await cli([...args, '--key-file', keyFile, '--ttl', '15m', '--audience', 'https://database.windows.net/']);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain(`created a new dev issuer key at ${keyFile}`);
    const token = first.stdout.trim();
    expect(first.stdout).toBe(`${token}\n`);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      azp: 'agent-7',
      roles: ['r1', 'r2'],
      groups: ['g1'],
      aud: 'https://database.windows.net/',
      iss: 'http://127.0.0.1:9187/dev-issuer',
      ver: '2.0',
    });
    expect(claims.exp! - claims.iat!).toBe(900);
    const issuer = await DevIssuer.load({ enabled: true, issuer: 'http://127.0.0.1:9187/dev-issuer', keyFile, audience: 'x', tenant: 't' });
    expect(decodeProtectedHeader(token).kid).toBe(issuer.kid);

    const second = await cli(['mint', '--subject', 'agent-7', '--key-file', keyFile]);
    expect(second.stderr).toBe('');
    expect(decodeProtectedHeader(second.stdout.trim()).kid).toBe(issuer.kid);
  });

  it('prints JSON with --json, and honours --shape, --issuer, --tenant and --data-dir', async () => {
    const dataDir = join(dir, 'data');
    const out = await cli([
      'mint', '--subject', 'etl', '--shape', 'azure-v1', '--issuer', 'https://warden.example/dev-issuer',
      '--tenant', 'tid-1', '--data-dir', dataDir, '--json',
    ]);
    expect(out.code).toBe(0);
    const parsed = JSON.parse(out.stdout) as { token: string; expires_at: string; claims: Record<string, unknown> };
    expect(parsed.claims).toMatchObject({ appid: 'etl', ver: '1.0', iss: 'https://warden.example/dev-issuer', tid: 'tid-1' });
    expect(decodeJwt(parsed.token)).toEqual(parsed.claims);
    expect(new Date(parsed.expires_at).getTime()).toBe((parsed.claims.exp as number) * 1000);
    expect(statSync(join(dataDir, 'keys', 'dev-issuer.pem')).mode & 0o777).toBe(0o600);
  });

  it('explains usage errors with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mint'], /--subject is required/],
      [['mint', '--subject', 'a', '--ttl', 'soon'], /--ttl: 'soon' is not a duration/],
      [['mint', '--subject', 'a', '--shape', 'azure-v3'], /--shape: 'azure-v3' is not one of azure-v2, azure-v1/],
      [['mint', '--subject', 'a', '--bogus'], /Unknown option '--bogus'/],
      [['rotate'], /unknown subcommand 'rotate'/],
    ];
    for (const [args, message] of cases) {
      const out = await cli(args);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toMatch(message);
      expect(out.stdout).toBe('');
    }
  });

  it('reports a ttl beyond one day as a usage error naming the limit', async () => {
    const out = await cli(['mint', '--subject', 'a', '--ttl', '2d', '--key-file', join(dir, 'b.pem')]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/^warden token mint: --ttl: '2d' is longer than the 24 hours \(86400 s\) a development token may last\n/);
    expect(out.stderr).not.toMatch(/mint: mint:/);
  });

  it('says a subcommand is required when none is given', async () => {
    const out = await cli([]);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(/^warden token: a subcommand is required \(mint or ticket\)\n\nusage: warden token mint/);
  });

  it('prints usage for --help', async () => {
    for (const args of [['--help'], ['mint', '--help'], ['mint', '-h']]) {
      const out = await cli(args);
      expect(out.code).toBe(0);
      expect(out.stdout).toContain('usage: warden token mint --subject <client>');
      expect(out.stdout).toContain('--key-file');
    }
  });

  it('resolves settings: flags, then the config section, then defaults', () => {
    const flags = parseMintFlags(['--subject', 'a', '--issuer', 'http://flag/dev-issuer']);
    const cfg = devIssuerConfigFromFlags(flags, { keyFile: '/etc/warden/dev.pem', audience: 'api://cfg', tenant: 't-cfg', issuer: 'http://cfg' });
    expect(cfg).toEqual({ enabled: true, issuer: 'http://flag/dev-issuer', keyFile: '/etc/warden/dev.pem', audience: 'api://cfg', tenant: 't-cfg' });
    expect(devIssuerConfigFromFlags(parseMintFlags([])).keyFile).toBe(resolve('.warden/keys/dev-issuer.pem'));
  });

  it('refuses an empty value for any option (a token for the audience "" would be refused by every warden)', () => {
    for (const opt of ['--subject', '--audience', '--role', '--group', '--tenant', '--name', '--issuer', '--key-file', '--data-dir', '--config']) {
      expect(() => parseMintFlags([opt, ''])).toThrow(new RegExp(`^${opt} needs a value`));
    }
  });

  it('parses durations', () => {
    expect([parseTtl('90'), parseTtl('90s'), parseTtl('15m'), parseTtl('2h'), parseTtl('1d')]).toEqual([90, 90, 900, 7200, 86400]);
    for (const bad of ['', '0', '1.5h', '-5m', '1w', 'm']) expect(() => parseTtl(bad)).toThrow(/--ttl/);
  });

  it('runs through the warden entry point', async () => {
    const tsx = resolve('node_modules/.bin/tsx');
    const { stdout } = await promisify(execFile)(
      tsx,
      ['src/cli/main.ts', 'token', 'mint', '--subject', 'via-main', '--key-file', join(dir, 'main.pem')],
      { cwd: resolve('.'), timeout: 20_000 },
    );
    expect(decodeJwt(stdout.trim()).azp).toBe('via-main');
  });
});

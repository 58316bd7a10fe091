// *_file keys against real files: PEM certificates and keys read and checked at load time, CA
// bundles, JWKS paths, relative paths resolved against the config file's directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative as relativePath } from 'node:path';
import tls from 'node:tls';
import { loadSigningKey } from '../../src/audit/keys.js';
import { ConfigError, loadConfig, MAX_CONFIG_BYTES, type Problem } from '../../src/config/load.js';
import { selfSignedCertificate, type CertificatePair } from '../../src/tls/self-signed.js';
import { testPostgres } from '../helpers/pg-env.js';
import { lineCol } from './config-helpers.js';

let dir: string;
let pair: CertificatePair;
let other: CertificatePair;

const base = `listen:
  postgres: { host: 127.0.0.1, port: 6432 }
  admin: { host: 127.0.0.1, port: 9187 }
identity:
  dev_issuer: { enabled: true }
targets:
  shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p }
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
  mkdirSync(join(dir, 'certs'));
  pair = await selfSignedCertificate('warden.test');
  other = await selfSignedCertificate('other.test');
  writeFileSync(join(dir, 'certs', 'warden.crt'), pair.cert);
  writeFileSync(join(dir, 'certs', 'warden.key'), pair.key, { mode: 0o600 });
  writeFileSync(join(dir, 'certs', 'other.key'), other.key);
  writeFileSync(join(dir, 'certs', 'notes.txt'), 'this is not a certificate\n');
  writeFileSync(join(dir, 'certs', 'garbage.crt'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
  const encrypted = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass' },
  });
  writeFileSync(join(dir, 'certs', 'encrypted.key'), encrypted.privateKey);
  writeFileSync(join(dir, 'certs', 'db-ca.pem'), testPostgres().caCert);
  writeFileSync(join(dir, 'certs', 'bundle.pem'), `${testPostgres().caCert}\n${pair.cert}`);
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [] }));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` as the config file in the temp dir and loads it. */
async function load(text: string, env: NodeJS.ProcessEnv = {}, name = 'warden.yaml') {
  const path = join(dir, name);
  writeFileSync(path, text);
  return loadConfig(path, { env });
}

async function problems(text: string, env: NodeJS.ProcessEnv = {}): Promise<Problem[]> {
  const err = await load(text, env, 'broken.yaml').then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return [...err.problems];
}

describe('tls.cert_file / tls.key_file', () => {
  it('reads the PEM files relative to the config file, usable for a TLS server', async () => {
    const c = await load(`${base}tls:\n  cert_file: certs/warden.crt\n  key_file: ./certs/warden.key\n`);
    expect(c.tls).toEqual({
      cert: pair.cert,
      key: pair.key,
      certFile: join(dir, 'certs', 'warden.crt'),
      keyFile: join(dir, 'certs', 'warden.key'),
    });
    const files = c.tls;
    if (!files || files.selfSigned) throw new Error('expected certificate files');
    expect(() => tls.createSecureContext({ cert: files.cert, key: files.key })).not.toThrow();
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const text = `${base}tls:\n  cert_file: certs/warden.crt\n  key_file: certs/other.key\n`;
    expect(await problems(text)).toEqual([
      { source: join(dir, 'broken.yaml'), path: 'tls.key_file', reason: 'does not match the first certificate in tls.cert_file', ...lineCol(text, 'certs/other.key') },
    ]);
  });

  it('names the key and the resolved path of a missing file', async () => {
    const text = `${base}tls:\n  cert_file: certs/missing.crt\n  key_file: certs/warden.key\n`;
    const [p, ...rest] = await problems(text);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ path: 'tls.cert_file', ...lineCol(text, 'certs/missing.crt') });
    expect(p?.reason).toBe(`cannot read certificate file ${JSON.stringify(join(dir, 'certs', 'missing.crt'))}: no such file`);
  });

  it('explains wrong files: a directory, not PEM, a broken certificate, an encrypted or missing key', async () => {
    const text = `${base}tls:\n  cert_file: certs\n  key_file: certs/encrypted.key\n`;
    expect((await problems(text)).map((p) => `${p.path}: ${p.reason}`)).toEqual([
      `tls.cert_file: ${JSON.stringify(join(dir, 'certs'))} is not a file (a certificate file was expected)`,
      `tls.key_file: ${JSON.stringify(join(dir, 'certs', 'encrypted.key'))} is encrypted; warden needs an unencrypted key (protect the file with permissions instead)`,
    ]);
    const text2 = `${base}tls:\n  cert_file: certs/notes.txt\n  key_file: certs/warden.crt\n`;
    expect((await problems(text2)).map((p) => `${p.path}: ${p.reason}`)).toEqual([
      `tls.cert_file: ${JSON.stringify(join(dir, 'certs', 'notes.txt'))} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`,
      `tls.key_file: ${JSON.stringify(join(dir, 'certs', 'warden.crt'))} holds no usable PEM private key`,
    ]);
    const text3 = `${base}tls:\n  cert_file: certs/garbage.crt\n  key_file: certs/warden.key\n`;
    expect((await problems(text3)).map((p) => p.reason)).toEqual([
      `${JSON.stringify(join(dir, 'certs', 'garbage.crt'))}: certificate 1 of 1 is not a valid X.509 certificate`,
    ]);
  });

  it('refuses files too large to be what they claim', async () => {
    writeFileSync(join(dir, 'certs', 'huge.crt'), Buffer.alloc(1024 * 1024 + 1, 0x41));
    const text = `${base}tls:\n  cert_file: certs/huge.crt\n  key_file: certs/warden.key\n`;
    expect((await problems(text)).map((p) => p.reason)).toEqual([
      `${JSON.stringify(join(dir, 'certs', 'huge.crt'))} is too large for a certificate file (1048577 bytes, at most 1MiB)`,
    ]);
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file (skipped as root: root reads every file)', async () => {
    const path = join(dir, 'certs', 'locked.key');
    writeFileSync(path, pair.key);
    chmodSync(path, 0o000);
    const text = `${base}tls:\n  cert_file: certs/warden.crt\n  key_file: certs/locked.key\n`;
    expect((await problems(text)).map((p) => p.reason)).toEqual([`cannot read private key file ${JSON.stringify(path)}: permission denied`]);
  });

  it('does not show a path that came from the environment', async () => {
    const text = `${base}tls:\n  cert_file: \${env:CERT}\n  key_file: certs/warden.key\n`;
    const found = await problems(text, { CERT: '/secret-mount/tls/hidden-name.crt' });
    expect(found.map((p) => p.reason)).toEqual(['cannot read certificate file the value from "${env:CERT}": no such file']);
    expect(JSON.stringify(found)).not.toContain('hidden-name');
    const c = await load(text, { CERT: join(dir, 'certs', 'warden.crt') });
    expect(c.tls).toMatchObject({ cert: pair.cert });
  });
});

describe('targets.X.tls.ca_file', () => {
  const target = (tlsLine: string) =>
    `${base.replace(/targets:[\s\S]*$/, '')}plaintext_tokens: loopback\ntargets:\n  shop:\n    protocol: postgres\n    host: localhost\n    database: shop\n    user: u\n    password: p\n    ${tlsLine}\n`;

  it('reads the CA for verify-full (the harness PostgreSQL certificate)', async () => {
    const c = await load(target('tls: { mode: verify-full, ca_file: certs/db-ca.pem, server_name: localhost }'));
    expect(c.targets.get('shop')?.tls).toEqual({
      mode: 'verify-full',
      ca: testPostgres().caCert,
      caFile: join(dir, 'certs', 'db-ca.pem'),
      serverName: 'localhost',
    });
  });

  it('accepts a bundle of several CA certificates', async () => {
    const c = await load(target('tls: { mode: verify-ca, ca_file: certs/bundle.pem }'));
    expect(c.targets.get('shop')?.tls.ca).toContain(pair.cert.trim());
  });

  it('names the key and path of a missing CA file', async () => {
    const text = target('tls: { mode: verify-ca, ca_file: certs/nope.pem }');
    expect(await problems(text)).toEqual([
      {
        source: join(dir, 'broken.yaml'),
        path: 'targets.shop.tls.ca_file',
        reason: `cannot read CA certificate file ${JSON.stringify(join(dir, 'certs', 'nope.pem'))}: no such file`,
        ...lineCol(text, 'certs/nope.pem'),
      },
    ]);
  });
});

describe('identity files', () => {
  const withJwks = (file: string) =>
    `${base.replace(/identity:\n.*\n/, '')}plaintext_tokens: loopback\nidentity:\n  issuers:\n    - name: local\n      issuer: https://local.example/\n      jwks_file: ${file}\n      audiences: [api://warden]\n`;

  it('resolves jwks_file against the config directory without parsing it', async () => {
    const c = await load(withJwks('jwks.json'));
    expect(c.identity.issuers[0]?.jwksFile).toBe(join(dir, 'jwks.json'));
    expect(c.identity.issuers[0]?.jwksUri).toBeUndefined();
  });

  it('names the key and path of a missing JWKS file', async () => {
    const text = withJwks('keys/jwks.json');
    expect(await problems(text)).toEqual([
      {
        source: join(dir, 'broken.yaml'),
        path: 'identity.issuers[0].jwks_file',
        reason: `cannot read JWKS file ${JSON.stringify(join(dir, 'keys', 'jwks.json'))}: no such file`,
        ...lineCol(text, 'keys/jwks.json'),
      },
    ]);
  });

  it("resolves the dev issuer's key file, which need not exist yet", async () => {
    const c = await load(`${base}plaintext_tokens: loopback\ndata_dir: state\n`);
    expect(c.dataDir).toBe(join(dir, 'state'));
    expect(c.identity.devIssuer?.keyFile).toBe(join(dir, 'state', 'keys', 'dev-issuer.pem'));
    const explicit = await load(base.replace('{ enabled: true }', '{ enabled: true, key_file: keys/dev.pem }') + 'plaintext_tokens: loopback\n');
    expect(explicit.identity.devIssuer?.keyFile).toBe(join(dir, 'keys', 'dev.pem'));
  });
});

describe('transcripts.key_file, transcripts.dir, data_dir', () => {
  // The transcript signing key: an explicit key_file must exist and hold an unencrypted Ed25519
  // PKCS#8 private key; only the default path is generated (at start, never by check-config).
  const keys = () => join(dir, 'tkeys');
  const q = (name: string) => JSON.stringify(join(keys(), name));
  const withKey = (file: string, more = '') => `${base}plaintext_tokens: loopback\ndata_dir: tstate\ntranscripts:\n  key_file: ${file}\n${more}`;
  const pkcs8 = (k: { export(o: object): string | Buffer }, extra: object = {}) => String(k.export({ type: 'pkcs8', format: 'pem', ...extra }));

  beforeAll(() => {
    mkdirSync(keys());
    mkdirSync(join(keys(), 'a-directory.pem'));
    const ed = generateKeyPairSync('ed25519');
    writeFileSync(join(keys(), 'ed25519.pem'), pkcs8(ed.privateKey), { mode: 0o600 });
    writeFileSync(join(keys(), 'ed25519.pub.pem'), String(ed.publicKey.export({ type: 'spki', format: 'pem' })));
    writeFileSync(join(keys(), 'ed25519-enc.pem'), pkcs8(ed.privateKey, { cipher: 'aes-256-cbc', passphrase: 'pass' }));
    writeFileSync(join(keys(), 'rsa.pem'), pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
    writeFileSync(join(keys(), 'ec.pem'), pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    writeFileSync(join(keys(), 'x25519.pem'), pkcs8(generateKeyPairSync('x25519').privateKey));
    writeFileSync(join(keys(), 'notes.txt'), 'this is not a key\n');
    writeFileSync(join(dir, 'plain-file'), 'not a directory\n');
  });

  it('reads an explicit Ed25519 key (never generated); without key_file the default path is used and need not exist', async () => {
    const c = await load(withKey('tkeys/ed25519.pem'));
    expect(c.transcripts).toMatchObject({ keyFile: join(keys(), 'ed25519.pem'), createKey: false });
    const d = await load(`${base}plaintext_tokens: loopback\ndata_dir: tstate\ntranscripts:\n  dir: tstate/t\n`);
    expect(d.transcripts).toMatchObject({ keyFile: join(dir, 'tstate', 'keys', 'transcript-ed25519.pem'), createKey: true, dir: join(dir, 'tstate', 't') });
    // Checking creates nothing: not the data directory, the transcript directory or a key.
    expect(existsSync(join(dir, 'tstate'))).toBe(false);
  });

  it('names the key, line and resolved path of a missing explicit key file', async () => {
    const text = withKey('tkeys/nokey.pem');
    expect(await problems(text)).toEqual([
      {
        source: join(dir, 'broken.yaml'),
        path: 'transcripts.key_file',
        reason: `cannot read transcript signing key file ${q('nokey.pem')}: no such file (only the default key file is generated; an explicit key_file must exist)`,
        ...lineCol(text, 'tkeys/nokey.pem'),
      },
    ]);
  });

  it.each([
    ['a-directory.pem', (f: string) => `${f} is not a file (a transcript signing key file was expected)`],
    ['notes.txt', (f: string) => `${f} holds no usable PEM private key (an Ed25519 private key in PKCS#8 PEM, "-----BEGIN PRIVATE KEY-----", was expected)`],
    ['ed25519-enc.pem', (f: string) => `${f} is encrypted; warden needs an unencrypted key (protect the file with permissions instead)`],
    ['rsa.pem', (f: string) => `${f} holds an RSA private key; transcripts are signed with Ed25519 (openssl genpkey -algorithm ed25519 makes one)`],
    ['ec.pem', (f: string) => `${f} holds an EC (P-256) private key; transcripts are signed with Ed25519 (openssl genpkey -algorithm ed25519 makes one)`],
    ['x25519.pem', (f: string) => `${f} holds an X25519 private key; transcripts are signed with Ed25519 (openssl genpkey -algorithm ed25519 makes one)`],
    ['ed25519.pub.pem', (f: string) => `${f} holds a public key; key_file must name the private key (warden writes its public key next to it as *.pub.pem)`],
    ['../certs/warden.crt', (f: string) => `${f} holds a certificate, not a private key`],
  ])('refuses %s, with the line and a clear reason', async (name, reason) => {
    const text = withKey(`tkeys/${name}`);
    expect(await problems(text)).toEqual([
      { source: join(dir, 'broken.yaml'), path: 'transcripts.key_file', reason: reason(q(name)), ...lineCol(text, `tkeys/${name}`) },
    ]);
  });

  it('does not check the key or the directory when transcripts are off', async () => {
    const c = await load(withKey('tkeys/nokey.pem', '  dir: plain-file\n  enabled: false\n'));
    expect(c.transcripts?.enabled).toBe(false);
  });

  it('refuses a transcripts.dir or data_dir that exists and is not a directory (a missing one is created at start)', async () => {
    const text = `${base}plaintext_tokens: loopback\ndata_dir: plain-file\ntranscripts:\n  dir: plain-file\n`;
    const shown = JSON.stringify(join(dir, 'plain-file'));
    expect(await problems(text)).toEqual([
      { source: join(dir, 'broken.yaml'), path: 'data_dir', reason: `${shown} is not a directory (a data directory was expected)`, ...lineCol(text, 'plain-file') },
      { source: join(dir, 'broken.yaml'), path: 'transcripts.dir', reason: `${shown} is not a directory (a transcript directory was expected)`, ...lineCol(text, 'plain-file', { nth: 1 }) },
    ]);
    const under = `${base}plaintext_tokens: loopback\ntranscripts:\n  dir: plain-file/transcripts\n`;
    expect((await problems(under)).map((p) => `${p.path}: ${p.reason}`)).toEqual([
      `transcripts.dir: cannot use ${JSON.stringify(join(dir, 'plain-file', 'transcripts'))} as the transcript directory: a part of the path is not a directory`,
    ]);
  });
});

describe('the transcript signing key when warden starts (loadSigningKey)', () => {
  it('says an encrypted key is encrypted, and which type a wrong key is', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'warden-tkey-'));
    try {
      const enc = join(keyDir, 'enc.pem');
      writeFileSync(enc, String(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'p' })));
      await expect(loadSigningKey(enc, { create: false })).rejects.toThrow(
        `the transcript signing key ${enc} is encrypted; warden needs an unencrypted key (protect the file with permissions instead)`,
      );
      const rsa = join(keyDir, 'rsa.pem');
      writeFileSync(rsa, String(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' })));
      await expect(loadSigningKey(rsa, { create: false })).rejects.toThrow(`the transcript signing key ${rsa} holds an RSA private key; transcripts are signed with Ed25519`);
      await expect(loadSigningKey(join(keyDir, 'missing.pem'), { create: false })).rejects.toThrow(
        `cannot read the transcript signing key ${join(keyDir, 'missing.pem')}: no such file (only the default key file is generated; an explicit transcripts.key_file must exist)`,
      );
      await expect(loadSigningKey(keyDir, { create: false })).rejects.toThrow(`cannot read the transcript signing key ${keyDir}: it is a directory, not a file`);
      // The default path is still generated when missing.
      const made = join(keyDir, 'keys', 'transcript-ed25519.pem');
      const key = await loadSigningKey(made, { create: true });
      expect(key.privateKey.asymmetricKeyType).toBe('ed25519');
      expect(readFileSync(made, 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });
});

describe('the configuration file itself', () => {
  it('refuses a file larger than a configuration could be', async () => {
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    const err = (await loadConfig(path).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`${path}: is too large for a configuration file (${MAX_CONFIG_BYTES + 3} bytes, at most 1MiB)`);
  });

  it('shows the path as given in problems and keeps the absolute one in source', async () => {
    const path = join(dir, 'warden.yaml');
    writeFileSync(path, `${base}plaintext_tokens: loopback\nlog: { level: loud }\n`);
    const relative = relativePath(process.cwd(), path);
    expect(relative.startsWith('/')).toBe(false);
    const err = (await loadConfig(relative).catch((e: unknown) => e)) as ConfigError;
    expect(err.problems[0]?.source).toBe(relative);
    writeFileSync(path, `${base}plaintext_tokens: loopback\n`);
    expect((await loadConfig(relative)).source).toBe(path);
  });
});

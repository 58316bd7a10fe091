// The development issuer: key persistence, Azure-shaped tokens, and verification through the same
// remote-JWKS path as Azure AD, served by devIssuerHttpHandler on a real HTTP server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, decodeProtectedHeader } from 'jose';
import { DevIssuer, type DevIssuerLoadConfig } from '../../src/identity/dev-issuer.js';
import { devIssuerHttpHandler } from '../../src/identity/dev-issuer-http.js';
import { createTokenVerifier } from '../../src/identity/verifier.js';
import { AUTH_REASONS } from '../../src/identity/reasons.js';
import { AuthError } from '../../src/identity/types.js';

let dir: string;
let server: Server;
let issuerUrl: string;
let dev: DevIssuer;
let requests = 0;

function config(keyFile: string, overrides: Partial<DevIssuerLoadConfig> = {}): DevIssuerLoadConfig {
  return { enabled: true, issuer: issuerUrl, keyFile, audience: 'api://warden', tenant: 'dev-tenant', ...overrides };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-dev-issuer-'));
  // The issuer URL names the port, so listen first and route to the handler once it exists.
  let handle: ReturnType<typeof devIssuerHttpHandler> | undefined;
  server = createServer((req, res) => {
    requests += 1;
    if (!handle?.(req, res)) res.writeHead(404).end('not here');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dev-issuer`;
  dev = await DevIssuer.load(config(join(dir, 'nested', 'keys', 'dev-issuer.pem')));
  handle = devIssuerHttpHandler(dev);
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('key file', () => {
  it('generates the key with mode 0600 in created directories, and reloads the same key', async () => {
    const keyFile = join(dir, 'nested', 'keys', 'dev-issuer.pem');
    expect(dev.keyGenerated).toBe(true);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const again = await DevIssuer.load(config(keyFile));
    expect(again.keyGenerated).toBe(false);
    expect(again.kid).toBe(dev.kid);
  });

  it('uses the RFC 7638 thumbprint of the public key as kid', async () => {
    const [jwk] = dev.jwks().keys;
    expect(jwk).toBeDefined();
    const { kty, n, e } = jwk!;
    expect(await calculateJwkThumbprint({ kty: kty!, n: n!, e: e! }, 'sha256')).toBe(dev.kid);
  });

  it('ends with one key when two processes race to create it', async () => {
    const keyFile = join(dir, 'race', 'k.pem');
    const [a, b] = await Promise.all([DevIssuer.load(config(keyFile)), DevIssuer.load(config(keyFile))]);
    expect(a.kid).toBe(b.kid);
    expect([a.keyGenerated, b.keyGenerated].filter(Boolean)).toHaveLength(1);
  });

  it('refuses a key file that is not a PKCS#8 private key, naming the file', async () => {
    const keyFile = join(dir, 'garbage.pem');
    writeFileSync(keyFile, 'not a key');
    await expect(DevIssuer.load(config(keyFile))).rejects.toThrow(/garbage\.pem is not a PKCS#8 PEM RSA private key/);
  });

  it('refuses an issuer that is not an http(s) URL', async () => {
    await expect(DevIssuer.load(config(join(dir, 'k2.pem'), { issuer: 'dev' }))).rejects.toThrow(/issuer must be an http\(s\) URL/);
  });
});

describe('published keys', () => {
  it('publishes only the public key', () => {
    const { keys } = dev.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'RSA', kid: dev.kid, alg: 'RS256', use: 'sig' });
    expect(Object.keys(keys[0]!).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });

  it('serves the JWKS and the discovery document, and nothing else', async () => {
    const jwks = await fetch(`${issuerUrl}/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await jwks.json()).toEqual(dev.jwks());
    const discovery = await (await fetch(`${issuerUrl}/.well-known/openid-configuration?x=1`)).json();
    expect(discovery).toMatchObject({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/jwks.json` });
    expect((await fetch(`${issuerUrl}/jwks.json`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${issuerUrl}/other`)).status).toBe(404);
    expect((await fetch(`${issuerUrl.replace('/dev-issuer', '')}/jwks.json`)).status).toBe(404);
  });
});

describe('minted tokens', () => {
  it('are shaped like Azure AD v2.0 app-only tokens', async () => {
    const minted = await dev.mintWithClaims({ subject: 'reporting-agent', roles: ['Reports.Read'], ttlSeconds: 900 });
    const { claims } = minted;
    expect(claims).toMatchObject({
      aud: 'api://warden',
      iss: issuerUrl,
      azp: 'reporting-agent',
      azpacr: '1',
      idtyp: 'app',
      tid: 'dev-tenant',
      ver: '2.0',
      roles: ['Reports.Read'],
    });
    expect(claims).not.toHaveProperty('appid');
    expect(claims.sub).toBe(claims.oid);
    expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims.nbf).toBe(claims.iat);
    expect(typeof claims.jti).toBe('string');
    expect(minted.expiresAt.getTime()).toBe(claims.exp! * 1000);
    expect(decodeProtectedHeader(minted.token)).toEqual({ alg: 'RS256', typ: 'JWT', kid: dev.kid });
  });

  it('are shaped like Azure AD v1.0 tokens with shape azure-v1, with a stable oid per subject', async () => {
    const a = await dev.mintWithClaims({ subject: 'etl-agent', shape: 'azure-v1', groups: ['g1'], tenant: 't2', name: 'ETL' });
    expect(a.claims).toMatchObject({ appid: 'etl-agent', appidacr: '1', ver: '1.0', idtyp: 'app', tid: 't2', groups: ['g1'], name: 'ETL' });
    expect(a.claims).not.toHaveProperty('azp');
    expect(a.claims).not.toHaveProperty('roles');
    const b = await dev.mintWithClaims({ subject: 'etl-agent' });
    expect(b.claims.oid).toBe(a.claims.oid);
    expect(b.claims.jti).not.toBe(a.claims.jti);
    expect((await dev.mintWithClaims({ subject: 'other' })).claims.oid).not.toBe(a.claims.oid);
  });

  it('refuses a bad subject or ttl', async () => {
    await expect(dev.mint({ subject: '' })).rejects.toThrow(/subject/);
    await expect(dev.mint({ subject: 'a', ttlSeconds: 0 })).rejects.toThrow(/ttl/);
    await expect(dev.mint({ subject: 'a', ttlSeconds: 90_000 })).rejects.toThrow(/ttl/);
  });

  it('verify through the remote JWKS path, in both shapes', async () => {
    const verifier = createTokenVerifier({ issuers: [] }, { devIssuer: dev });
    const before = requests;
    const v2 = await verifier.verify(await dev.mint({ subject: 'reporting-agent', roles: ['Reports.Read'] }));
    expect(v2).toMatchObject({
      issuerName: 'dev',
      issuer: issuerUrl,
      subject: 'reporting-agent',
      subjectClaim: 'azp',
      version: '2.0',
      identityType: 'app',
      tenantId: 'dev-tenant',
      roles: ['Reports.Read'],
      audience: 'api://warden',
    });
    const v1 = await verifier.verify(await dev.mint({ subject: 'etl-agent', shape: 'azure-v1' }));
    expect(v1).toMatchObject({ subject: 'etl-agent', subjectClaim: 'appid', version: '1.0' });
    expect(requests - before).toBe(1);
  });

  it('are refused for another tenant or audience, and when expired', async () => {
    const verifier = createTokenVerifier({ issuers: [] }, { devIssuer: dev });
    const reasonOf = async (token: string): Promise<string> =>
      verifier.verify(token).then(
        () => 'accepted',
        (e: unknown) => (e instanceof AuthError ? e.reason : String(e)),
      );
    expect(await reasonOf(await dev.mint({ subject: 'a', tenant: 'elsewhere' }))).toBe(AUTH_REASONS.tenant);
    expect(await reasonOf(await dev.mint({ subject: 'a', audience: 'api://other' }))).toBe(AUTH_REASONS.audience);
    const past = Math.floor(Date.now() / 1000) - 7200;
    expect(await reasonOf(await dev.mint({ subject: 'a', extraClaims: { iat: past, nbf: past, exp: past + 60 } }))).toBe(
      AUTH_REASONS.expired,
    );
  });

  it('are refused once the dev issuer key is replaced (new kid, old tokens unknown)', async () => {
    const keyFile = join(dir, 'rotate.pem');
    const first = await DevIssuer.load(config(keyFile));
    const oldToken = await first.mint({ subject: 'a' });
    rmSync(keyFile);
    const second = await DevIssuer.load(config(keyFile));
    expect(second.kid).not.toBe(first.kid);
    const jwksServer = createServer((_req, res) => res.writeHead(200).end(JSON.stringify(second.jwks())));
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
      const verifier = createTokenVerifier({ issuers: [second.issuerConfig(url)] });
      await expect(verifier.verify(await second.mint({ subject: 'a' }))).resolves.toMatchObject({ subject: 'a' });
      await expect(verifier.verify(oldToken)).rejects.toMatchObject({ reason: AUTH_REASONS.unknownKey });
    } finally {
      await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
    }
  });

  it('defer to a configured issuer with the same iss', async () => {
    const configured = { ...dev.issuerConfig(), name: 'local-dev', audiences: ['api://custom'] };
    const verifier = createTokenVerifier({ issuers: [configured] }, { devIssuer: dev });
    await expect(verifier.verify(await dev.mint({ subject: 'a', audience: 'api://custom' }))).resolves.toMatchObject({
      issuerName: 'local-dev',
    });
  });
});

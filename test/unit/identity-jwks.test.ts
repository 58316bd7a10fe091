// Key sets: remote JWKS caching, rotation and rate-limited refresh against a real HTTP server
// that counts requests; outages fail closed; local JWKS files; configuration errors.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK } from 'jose';
import { createTokenVerifier } from '../../src/identity/verifier.js';
import { AUTH_REASONS } from '../../src/identity/reasons.js';
import { AuthError, type TokenVerifier } from '../../src/identity/types.js';
import type { IssuerConfig } from '../../src/config/types.js';
import {
  closedPort,
  issuer,
  jwksOf,
  makeKey,
  sign,
  sleep,
  startJwksServer,
  v2Claims,
  V2_ISS,
  type JwksServer,
  type TestKey,
} from './identity-support.js';

let keyA: TestKey;
let keyB: TestKey;
let dir: string;
const servers: JwksServer[] = [];

beforeAll(async () => {
  [keyA, keyB] = await Promise.all([makeKey('key-a'), makeKey('key-b')]);
  dir = mkdtempSync(join(tmpdir(), 'warden-jwks-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function server(...keys: TestKey[]): Promise<JwksServer> {
  const s = await startJwksServer(jwksOf(...keys));
  servers.push(s);
  return s;
}

function remote(jwksUri: string, overrides: Partial<IssuerConfig> = {}, jwksTimeoutMs?: number): TokenVerifier {
  const opts = jwksTimeoutMs === undefined ? {} : { jwksTimeoutMs };
  return createTokenVerifier({ issuers: [issuer({ name: 'entra', issuer: V2_ISS, jwksUri, ...overrides })] }, opts);
}

async function reason(v: TokenVerifier, token: string): Promise<string | undefined> {
  return v.verify(token).then(
    () => undefined,
    (e: unknown) => (e instanceof AuthError ? e.reason : `not an AuthError: ${String(e)}`),
  );
}

describe('remote JWKS', () => {
  it('fetches once and serves later tokens from the cache', async () => {
    const s = await server(keyA);
    const v = remote(s.url);
    for (let i = 0; i < 5; i += 1) await v.verify(await sign(keyA, v2Claims()));
    expect(s.requests()).toBe(1);
  });

  it('refetches once the cache is older than jwksCacheMaxAge', async () => {
    const s = await server(keyA);
    const v = remote(s.url, { jwksCacheMaxAge: 150 });
    await v.verify(await sign(keyA, v2Claims()));
    await sleep(200);
    await v.verify(await sign(keyA, v2Claims()));
    expect(s.requests()).toBe(2);
  });

  // Tokens are signed before the timed part, so a busy machine cannot stretch it past the interval.
  it('accepts a rotated key after one refetch, once the refresh interval has passed', async () => {
    const s = await server(keyA);
    const v = remote(s.url, { jwksRefreshInterval: 500 });
    const [a1, a2, b1, b2, b3] = await Promise.all([keyA, keyA, keyB, keyB, keyB].map((k) => sign(k, v2Claims())));
    await v.verify(a1!);
    s.setKeys(jwksOf(keyA, keyB));
    // Within the interval the new kid is not fetched for: refused, no request made.
    expect(await reason(v, b1!)).toBe(AUTH_REASONS.unknownKey);
    expect(s.requests()).toBe(1);
    await sleep(550);
    await expect(v.verify(b2!)).resolves.toMatchObject({ issuerName: 'entra' });
    expect(s.requests()).toBe(2);
    // Both keys are now known; no more fetching.
    await v.verify(a2!);
    await v.verify(b3!);
    expect(s.requests()).toBe(2);
  });

  it('lets a flood of unknown kids cause at most one fetch per refresh interval', async () => {
    const s = await server(keyA);
    const v = remote(s.url, { jwksRefreshInterval: 500 });
    const forged = await Promise.all(Array.from({ length: 60 }, (_, i) => sign(keyA, v2Claims(), { kid: `forged-${i}` })));
    await v.verify(await sign(keyA, v2Claims()));
    await sleep(550);
    const flood = await Promise.all(forged.slice(0, 40).map((t) => reason(v, t)));
    expect(new Set(flood)).toEqual(new Set([AUTH_REASONS.unknownKey]));
    expect(s.requests()).toBe(2);
    for (const t of forged.slice(40)) expect(await reason(v, t)).toBe(AUTH_REASONS.unknownKey);
    expect(s.requests()).toBe(2);
  });

  it('refuses a token without kid when several keys could match', async () => {
    const s = await server(keyA, keyB);
    expect(await reason(remote(s.url), await sign(keyA, v2Claims(), { kid: undefined }))).toBe(AUTH_REASONS.unknownKey);
  });

  it('fails closed when nothing listens at the JWKS URL', async () => {
    const v = remote(`http://127.0.0.1:${await closedPort()}/keys`);
    const err = await v.verify(await sign(keyA, v2Claims())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).reason).toBe(AUTH_REASONS.keysUnavailable);
    expect((err as AuthError).detail).toContain("issuer 'entra'");
  });

  it('fails closed on an HTTP error, a non-JSON body and an oversized body', async () => {
    for (const mode of ['error', 'not-json', 'huge'] as const) {
      const s = await server(keyA);
      s.setMode(mode);
      expect(await reason(remote(s.url), await sign(keyA, v2Claims())), mode).toBe(AUTH_REASONS.keysUnavailable);
      expect(s.requests()).toBe(1);
    }
  });

  it('fails closed when the JWKS server does not answer in time', async () => {
    const s = await server(keyA);
    s.setMode('hang');
    const started = Date.now();
    expect(await reason(remote(s.url, {}, 200), await sign(keyA, v2Claims()))).toBe(AUTH_REASONS.keysUnavailable);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('backs off after a failed fetch, then recovers', async () => {
    const s = await server(keyA);
    s.setMode('error');
    const v = remote(s.url, { jwksRefreshInterval: 200 });
    const token = await sign(keyA, v2Claims());
    expect(await reason(v, token)).toBe(AUTH_REASONS.keysUnavailable);
    expect(await reason(v, token)).toBe(AUTH_REASONS.keysUnavailable);
    expect(s.requests()).toBe(1);
    s.setMode('ok');
    await sleep(250);
    await expect(v.verify(token)).resolves.toBeDefined();
    expect(s.requests()).toBe(2);
  });
});

describe('local JWKS file', () => {
  it('verifies tokens with the keys in the file', async () => {
    const file = join(dir, 'static.json');
    writeFileSync(file, JSON.stringify(jwksOf(keyA)));
    const v = createTokenVerifier({ issuers: [issuer({ name: 'file', issuer: V2_ISS, jwksFile: file })] });
    await expect(v.verify(await sign(keyA, v2Claims()))).resolves.toMatchObject({ issuerName: 'file' });
    expect(await reason(v, await sign(keyB, v2Claims()))).toBe(AUTH_REASONS.unknownKey);
  });

  it('rereads the file for an unknown kid after it changed', async () => {
    const file = join(dir, 'rotating.json');
    writeFileSync(file, JSON.stringify(jwksOf(keyA)));
    const v = createTokenVerifier({
      issuers: [issuer({ name: 'file', issuer: V2_ISS, jwksFile: file, jwksRefreshInterval: 100 })],
    });
    writeFileSync(file, JSON.stringify(jwksOf(keyA, keyB)));
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    await sleep(150);
    await expect(v.verify(await sign(keyB, v2Claims()))).resolves.toBeDefined();
  });

  it('will not start with a missing file, bad JSON, a private key or a symmetric key', async () => {
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['missing.json', undefined, /cannot read JWKS file .*missing\.json/],
      ['bad.json', '{not json', /is not JSON/],
      ['nokeys.json', '{"keys": 3}', /has no "keys" array/],
      ['private.json', JSON.stringify({ keys: [{ ...(await exportJWK(keyA.privateKey)), kid: 'p' }] }), /private key material/],
      ['oct.json', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 's' }] }), /symmetric key/],
    ];
    for (const [name, content, message] of cases) {
      const file = join(dir, name);
      if (content !== undefined) writeFileSync(file, content);
      expect(() => createTokenVerifier({ issuers: [issuer({ name: 'file', issuer: V2_ISS, jwksFile: file })] })).toThrow(message);
    }
  });
});

describe('issuer configuration', () => {
  const base = { name: 'x', issuer: V2_ISS, jwksUri: 'http://127.0.0.1:1/keys' };

  it('will not start with none or HMAC algorithms, even if a config allowed them', () => {
    for (const alg of ['none', 'HS256', 'HS512']) {
      expect(() => createTokenVerifier({ issuers: [issuer({ ...base, algorithms: ['RS256', alg] })] })).toThrow(
        new RegExp(`algorithm\\(s\\) ${alg} not allowed`),
      );
    }
  });

  it('will not start with both or neither key sources, or duplicate issuers', () => {
    expect(() => createTokenVerifier({ issuers: [issuer({ ...base, jwksFile: '/x.json' })] })).toThrow(/exactly one of jwksUri and jwksFile/);
    expect(() => createTokenVerifier({ issuers: [issuer({ name: 'x', issuer: V2_ISS })] })).toThrow(/exactly one/);
    expect(() => createTokenVerifier({ issuers: [issuer(base), issuer({ ...base, name: 'y' })] })).toThrow(/configured twice/);
    expect(() => createTokenVerifier({ issuers: [issuer(base), issuer({ ...base, issuer: 'https://b/' })] })).toThrow(/used twice/);
  });

  it('refuses every token when no issuer is configured', async () => {
    const v = createTokenVerifier({ issuers: [] });
    expect(await reason(v, await sign(keyA, v2Claims()))).toBe(AUTH_REASONS.issuer);
  });
});

// Real parts for the identity tests: RSA keys made with jose, tokens signed with them, and a
// node:http JWKS server on 127.0.0.1 that counts its requests and can misbehave on demand.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import type { IssuerConfig } from '../../src/config/types.js';

export interface TestKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicKey, publicJwk };
}

export function jwksOf(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

export const now = (): number => Math.floor(Date.now() / 1000);

export async function sign(
  key: TestKey,
  claims: JWTPayload,
  header: { alg?: string; kid?: string | undefined } = {},
): Promise<string> {
  const protectedHeader: { alg: string; typ: string; kid?: string } = { alg: header.alg ?? 'RS256', typ: 'JWT' };
  const kid = 'kid' in header ? header.kid : key.kid;
  if (kid !== undefined) protectedHeader.kid = kid;
  return new SignJWT(claims).setProtectedHeader(protectedHeader).sign(key.privateKey);
}

/** Base64url JSON, for hand-made tokens. */
export function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const V1_ISS = `https://sts.windows.net/${TENANT}/`;
export const V2_ISS = `https://login.microsoftonline.com/${TENANT}/v2.0`;
export const PG_AUDIENCE = 'https://ossrdbms-aad.database.windows.net';
export const SQL_AUDIENCE = 'https://database.windows.net/';

export function issuer(overrides: Partial<IssuerConfig> & Pick<IssuerConfig, 'name' | 'issuer'>): IssuerConfig {
  return {
    audiences: [PG_AUDIENCE, SQL_AUDIENCE],
    algorithms: ['RS256'],
    subjectClaims: ['azp', 'appid', 'oid', 'sub'],
    clockSkew: 60_000,
    jwksRefreshInterval: 30_000,
    jwksCacheMaxAge: 600_000,
    ...overrides,
  };
}

/** Claim overrides for a test token; `undefined` removes the claim. */
export type Claims = Record<string, unknown>;

function withExtra(base: JWTPayload, extra: Claims): JWTPayload {
  const claims: JWTPayload = { ...base };
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete claims[name];
    else claims[name] = value;
  }
  return claims;
}

/** Claims of an Azure AD v2.0 app-only access token. */
export function v2Claims(extra: Claims = {}): JWTPayload {
  const t = now();
  return withExtra({
    aud: PG_AUDIENCE,
    iss: V2_ISS,
    iat: t,
    nbf: t,
    exp: t + 3600,
    azp: '1950a258-227b-4e31-a9cf-717495945fc2',
    azpacr: '1',
    idtyp: 'app',
    oid: '8a1e3f4c-1111-4222-8333-944455556666',
    sub: '8a1e3f4c-1111-4222-8333-944455556666',
    tid: TENANT,
    uti: 'AbCdEfGhIjKlMnOpQrStUv',
    ver: '2.0',
    roles: ['Reports.Read'],
  }, extra);
}

/** Claims of an Azure AD v1.0 app-only access token. */
export function v1Claims(extra: Claims = {}): JWTPayload {
  const t = now();
  return withExtra({
    aud: SQL_AUDIENCE,
    iss: V1_ISS,
    iat: t,
    nbf: t,
    exp: t + 3600,
    appid: '2b7e4c1d-aaaa-4bbb-8ccc-ddddeeeeffff',
    appidacr: '2',
    idp: V1_ISS,
    idtyp: 'app',
    oid: '5c6d7e8f-2222-4333-8444-a55566667777',
    sub: '5c6d7e8f-2222-4333-8444-a55566667777',
    tid: TENANT,
    ver: '1.0',
    roles: ['Orders.Write', 'Orders.Read'],
  }, extra);
}

export type JwksMode = 'ok' | 'error' | 'hang' | 'not-json' | 'huge';

export interface JwksServer {
  url: string;
  /** How many JWKS requests arrived. */
  requests(): number;
  setKeys(jwks: JSONWebKeySet): void;
  setMode(mode: JwksMode): void;
  close(): Promise<void>;
}

export async function startJwksServer(initial: JSONWebKeySet): Promise<JwksServer> {
  let jwks = initial;
  let mode: JwksMode = 'ok';
  let count = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== '/keys') {
      res.writeHead(404).end();
      return;
    }
    count += 1;
    switch (mode) {
      case 'hang':
        return; // never answers; the client's timeout must end it
      case 'error':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
        return;
      case 'not-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>sign in</html>');
        return;
      case 'huge':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [], pad: 'x'.repeat(2 * 1024 * 1024) }));
        return;
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/keys`,
    requests: () => count,
    setKeys: (next) => {
      jwks = next;
    },
    setMode: (next) => {
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A 127.0.0.1 port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

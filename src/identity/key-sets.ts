// Where an issuer's public keys come from: a remote JWKS (jose's createRemoteJWKSet: cached for
// jwksCacheMaxAge, refetched on an unknown `kid` at most once per jwksRefreshInterval) or a local
// JWKS file (reread on an unknown `kid` when it changed, with the same rate limit).
//
// Every failure to obtain keys (network, HTTP status, oversized or malformed body, unreadable
// file) surfaces as KeySourceError so the verifier can refuse the token with one clear reason.

import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';

type LocalJWKSet = ReturnType<typeof createLocalJWKSet>;
import type { IssuerConfig } from '../config/types.js';
import type { Logger } from '../log.js';

/** Largest JWKS document accepted (Azure's is a few KiB). */
export const MAX_JWKS_BYTES = 1024 * 1024;
/** Default time allowed for one JWKS request. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
/** After a failed JWKS fetch, further fetches wait this long (or the refresh interval if shorter). */
export const MAX_FAILURE_BACKOFF_MS = 5_000;

/** The issuer's keys could not be obtained. `message` is for logs. */
export class KeySourceError extends Error {
  override readonly name = 'KeySourceError';
}

/** Errors jose raises while choosing among keys that were obtained: not a key-source failure. */
function isKeySelectionError(err: unknown): boolean {
  return (
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys ||
    err instanceof errors.JOSENotSupported
  );
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Wraps a resolver so key-source failures become KeySourceError and selection errors pass. */
function guard(getKey: JWTVerifyGetKey, source: string): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (err) {
      if (isKeySelectionError(err) || err instanceof KeySourceError) throw err;
      throw new KeySourceError(`${source}: ${describe(err)}`, { cause: err });
    }
  };
}

export interface RemoteKeySetOptions {
  logger: Logger;
  timeoutMs?: number;
}

export function remoteKeySet(issuer: IssuerConfig & { jwksUri: string }, opts: RemoteKeySetOptions): JWTVerifyGetKey {
  const url = new URL(issuer.jwksUri);
  const log = opts.logger.child({ issuer: issuer.name, jwksUri: url.href });
  const backoff = Math.min(issuer.jwksRefreshInterval, MAX_FAILURE_BACKOFF_MS);
  let failedAt = Number.NEGATIVE_INFINITY;

  // jose does the caching and the cooldown; this fetch adds the size cap, a short back-off after
  // a failure (so an outage is not hammered by every login) and logging.
  const fetchJwks: FetchImplementation = async (href, init) => {
    const since = Date.now() - failedAt;
    if (since < backoff) {
      throw new KeySourceError(`JWKS fetch failed ${since} ms ago; next attempt after ${backoff} ms`);
    }
    try {
      const response = await fetch(href, init);
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new KeySourceError(`JWKS endpoint answered HTTP ${response.status}`);
      }
      const body = await readCapped(response, MAX_JWKS_BYTES);
      const keys = parseJwks(body, 'JWKS response');
      failedAt = Number.NEGATIVE_INFINITY;
      log.info({ keys: keys.keys.length }, 'fetched issuer JWKS');
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      failedAt = Date.now();
      log.warn({ err: describe(err) }, 'could not fetch issuer JWKS');
      throw err;
    }
  };

  const remote = createRemoteJWKSet(url, {
    cacheMaxAge: issuer.jwksCacheMaxAge,
    cooldownDuration: issuer.jwksRefreshInterval,
    timeoutDuration: opts.timeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
    [customFetch]: fetchJwks,
  });
  return guard(remote, `JWKS ${url.href}`);
}

async function readCapped(response: Response, cap: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    await response.body?.cancel();
    throw new KeySourceError(`JWKS response declares ${declared} bytes, more than the ${cap} allowed`);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel();
      throw new KeySourceError(`JWKS response is larger than the ${cap} bytes allowed`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** Parses and checks a JWKS document: a `keys` array of public, asymmetric JWKs. */
export function parseJwks(text: string, what: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KeySourceError(`${what} is not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new KeySourceError(`${what} has no "keys" array`);
  }
  const keys = (doc as { keys: unknown[] }).keys;
  keys.forEach((key, i) => {
    if (typeof key !== 'object' || key === null) throw new KeySourceError(`${what}: keys[${i}] is not an object`);
    const jwk = key as Record<string, unknown>;
    if (jwk.kty === 'oct') throw new KeySourceError(`${what}: keys[${i}] is a symmetric key; only public keys are allowed`);
    if ('d' in jwk) throw new KeySourceError(`${what}: keys[${i}] holds private key material; publish public keys only`);
  });
  return doc as JSONWebKeySet;
}

/**
 * A local JWKS file. Read once now (a missing or bad file is a configuration error, thrown), then
 * reread when a token names an unknown `kid`, the file changed, and jwksRefreshInterval has passed.
 */
export function fileKeySet(issuer: IssuerConfig & { jwksFile: string }, logger: Logger): JWTVerifyGetKey {
  const path = issuer.jwksFile;
  const log = logger.child({ issuer: issuer.name, jwksFile: path });
  const what = `JWKS file ${path}`;
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(path, 'utf8');
    mtimeMs = statSync(path).mtimeMs;
  } catch (err) {
    throw new Error(`issuer '${issuer.name}': cannot read ${what}: ${describe(err)}`);
  }
  let local: LocalJWKSet;
  try {
    local = createLocalJWKSet(parseJwks(text, what));
  } catch (err) {
    throw new Error(`issuer '${issuer.name}': ${describe(err)}`);
  }
  let checkedAt = Date.now();

  const reloadIfChanged = async (): Promise<boolean> => {
    checkedAt = Date.now();
    const now = await stat(path);
    if (now.mtimeMs === mtimeMs) return false;
    const next = createLocalJWKSet(parseJwks(await readFile(path, 'utf8'), what));
    local = next;
    mtimeMs = now.mtimeMs;
    log.info({ keys: next.jwks().keys.length }, 'reloaded issuer JWKS file');
    return true;
  };

  const getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await local(header, token);
    } catch (err) {
      const mayReload = Date.now() - checkedAt >= issuer.jwksRefreshInterval;
      if (err instanceof errors.JWKSNoMatchingKey && mayReload && (await reloadIfChanged())) {
        return local(header, token);
      }
      throw err;
    }
  };
  return guard(getKey, what);
}

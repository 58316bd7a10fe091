// Validates agents' OIDC access tokens (Azure AD / Entra ID v1.0 and v2.0, and warden's own dev
// issuer). The order is fixed: shape → algorithm → issuer (by the unverified `iss`, only to pick
// whose keys to use) → signature with that issuer's keys only → claims (iss, aud, exp/nbf with
// the clock skew, required exp) → tenant → subject. Anything unexpected refuses the token.

import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { IdentityConfig, IssuerConfig } from '../config/types.js';
import { silentLogger, type Logger } from '../log.js';
import { isSignatureAlgorithm } from './algorithms.js';
import { identityFromClaims } from './claims.js';
import type { DevIssuer } from './dev-issuer.js';
import { fileKeySet, KeySourceError, remoteKeySet } from './key-sets.js';
import { AUTH_REASONS, clip } from './reasons.js';
import { AuthError, type TokenVerifier, type VerifiedIdentity } from './types.js';

/** Longest token accepted, in characters. Azure tokens are a few KiB even with 200 groups. */
export const MAX_TOKEN_CHARS = 64 * 1024;

/** Three base64url segments; the signature may be empty so that `alg: none` gets its own reason. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface VerifierOptions {
  logger?: Logger;
  /** Trust this dev issuer too (through its JWKS URL), unless an issuer with its `iss` is configured. */
  devIssuer?: DevIssuer;
  /** Time allowed for one JWKS request; default 5 s. */
  jwksTimeoutMs?: number;
}

interface TrustedIssuer {
  config: IssuerConfig;
  algorithms: string[];
  getKey: JWTVerifyGetKey;
}

/** Checks one issuer's settings; a bad one is a configuration error, so warden does not start. */
function trust(config: IssuerConfig, logger: Logger, jwksTimeoutMs: number | undefined): TrustedIssuer {
  const where = `issuer '${config.name}'`;
  const bad = config.algorithms.filter((alg) => !isSignatureAlgorithm(alg));
  if (bad.length > 0) {
    throw new Error(`${where}: algorithm(s) ${bad.join(', ')} not allowed; use asymmetric ones such as RS256`);
  }
  if (config.algorithms.length === 0) throw new Error(`${where}: no algorithms allowed`);
  if (config.audiences.length === 0) throw new Error(`${where}: no audiences accepted`);
  if (config.subjectClaims.length === 0) throw new Error(`${where}: no subject claims listed`);
  const { jwksUri, jwksFile } = config;
  let getKey: JWTVerifyGetKey;
  if (jwksUri !== undefined && jwksFile === undefined) {
    const remoteOpts = jwksTimeoutMs === undefined ? { logger } : { logger, timeoutMs: jwksTimeoutMs };
    getKey = remoteKeySet({ ...config, jwksUri }, remoteOpts);
  } else if (jwksFile !== undefined && jwksUri === undefined) {
    getKey = fileKeySet({ ...config, jwksFile }, logger);
  } else {
    throw new Error(`${where}: set exactly one of jwksUri and jwksFile`);
  }
  return { config, algorithms: [...config.algorithms], getKey };
}

export function createTokenVerifier(identity: IdentityConfig, opts: VerifierOptions = {}): TokenVerifier {
  const logger = (opts.logger ?? silentLogger).child({ component: 'identity' });
  const configs = [...identity.issuers];
  const dev = opts.devIssuer;
  if (dev && !configs.some((c) => c.issuer === dev.issuer)) configs.push(dev.issuerConfig());

  const byIss = new Map<string, TrustedIssuer>();
  const names = new Set<string>();
  for (const config of configs) {
    if (byIss.has(config.issuer)) throw new Error(`issuer '${config.name}': iss ${config.issuer} is configured twice`);
    if (names.has(config.name)) throw new Error(`issuer name '${config.name}' is used twice`);
    byIss.set(config.issuer, trust(config, logger, opts.jwksTimeoutMs));
    names.add(config.name);
  }
  if (byIss.size === 0) logger.warn('no token issuers configured: every token will be refused');

  return { verify: (token) => verify(token, byIss) };
}

interface Unverified {
  alg: unknown;
  kid: unknown;
  claims: JWTPayload;
}

/** Reads header and claims without trusting them, only to choose the issuer. */
function peek(token: string): Unverified {
  if (token.length === 0) throw new AuthError(AUTH_REASONS.malformed, 'token is empty');
  if (token.length > MAX_TOKEN_CHARS) {
    throw new AuthError(AUTH_REASONS.malformed, `token is ${token.length} characters; at most ${MAX_TOKEN_CHARS} accepted`);
  }
  if (!COMPACT_JWS.test(token)) {
    throw new AuthError(AUTH_REASONS.malformed, `not a compact JWS (${token.length} characters, expected three base64url segments)`);
  }
  try {
    const header = decodeProtectedHeader(token);
    return { alg: header.alg, kid: header.kid, claims: decodeJwt(token) };
  } catch (err) {
    throw new AuthError(AUTH_REASONS.malformed, `cannot decode: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function verify(raw: string, byIss: ReadonlyMap<string, TrustedIssuer>): Promise<VerifiedIdentity> {
  const token = typeof raw === 'string' ? raw.trim() : '';
  const { alg, kid, claims } = peek(token);
  if (!isSignatureAlgorithm(alg)) {
    throw new AuthError(AUTH_REASONS.algorithm, `alg ${clip(alg)} is not an asymmetric signature algorithm`);
  }
  const iss = claims.iss;
  const trusted = typeof iss === 'string' ? byIss.get(iss) : undefined;
  if (!trusted) {
    throw new AuthError(AUTH_REASONS.issuer, iss === undefined ? 'token has no iss claim' : `iss ${clip(iss)} is not configured`);
  }
  const { config } = trusted;
  if (!trusted.algorithms.includes(alg)) {
    throw new AuthError(AUTH_REASONS.algorithm, `issuer '${config.name}' allows ${config.algorithms.join(', ')}, not ${alg}`);
  }
  let verified: JWTPayload;
  try {
    const result = await jwtVerify(token, trusted.getKey, {
      issuer: config.issuer,
      audience: config.audiences,
      algorithms: trusted.algorithms,
      clockTolerance: config.clockSkew / 1000,
      requiredClaims: ['exp'],
    });
    verified = result.payload;
  } catch (err) {
    throw refusal(err, config, { kid, claims });
  }
  return identityFromClaims(verified, config);
}

function at(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : clip(seconds);
}

/** Maps what jose (or the key source) threw to the client-safe reason and a detail for logs. */
function refusal(err: unknown, config: IssuerConfig, token: { kid: unknown; claims: JWTPayload }): AuthError {
  const who = `issuer '${config.name}'`;
  const skew = `${config.clockSkew / 1000} s`;
  if (err instanceof AuthError) return err;
  if (err instanceof KeySourceError) return new AuthError(AUTH_REASONS.keysUnavailable, `${who}: ${err.message}`);
  if (err instanceof errors.JWTExpired) {
    return new AuthError(AUTH_REASONS.expired, `${who}: exp ${at(token.claims.exp)} is past (clock skew ${skew})`);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const missing = err.reason === 'missing';
    switch (err.claim) {
      case 'nbf':
        if (missing || err.reason === 'invalid') break;
        return new AuthError(AUTH_REASONS.notYetValid, `${who}: nbf ${at(token.claims.nbf)} is ahead (clock skew ${skew})`);
      case 'exp':
        if (missing) return new AuthError(AUTH_REASONS.noExpiry, `${who}: the token has no exp claim`);
        break;
      case 'aud':
        return new AuthError(
          AUTH_REASONS.audience,
          `${who}: aud ${missing ? '(missing)' : clip(token.claims.aud)} is not one of ${clip(config.audiences)}`,
        );
      case 'iss':
        return new AuthError(AUTH_REASONS.issuer, `${who}: ${err.message}`);
      default:
        break;
    }
    return new AuthError(AUTH_REASONS.malformed, `${who}: ${err.message}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError(AUTH_REASONS.signature, `${who}: signature does not verify with key ${clip(token.kid)}`);
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new AuthError(
      AUTH_REASONS.unknownKey,
      `${who}: no key with kid ${clip(token.kid)} (key set refreshed at most every ${config.jwksRefreshInterval / 1000} s)`,
    );
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError(AUTH_REASONS.unknownKey, `${who}: the token names no kid and several keys could match`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError(AUTH_REASONS.algorithm, `${who}: ${err.message}`);
  }
  // JOSENotSupported: an unrecognised `crit` header parameter and the like.
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return new AuthError(AUTH_REASONS.malformed, `${who}: ${err.message}`);
  }
  // Anything else (e.g. an RSA key shorter than 2048 bits) still refuses the token.
  return new AuthError(AUTH_REASONS.unverifiable, `${who}: ${err instanceof Error ? err.message : String(err)}`);
}

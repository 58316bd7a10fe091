// warden's development token issuer: an RS256 key pair on disk and tokens shaped like Azure AD
// app-only access tokens (v1.0 or v2.0), so local runs and tests take the same verification path
// as Azure AD: the admin server publishes jwks() at <issuer>/jwks.json and the verifier fetches it.

import { createHash, randomUUID } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from 'jose';
import { DEV_ISSUER_DEFAULTS, DEV_ISSUER_NAME, ISSUER_DEFAULTS } from '../config/sections/identity.js';
import type { DevIssuerConfig, IssuerConfig } from '../config/types.js';

export { DEV_ISSUER_NAME };
export const DEV_ALGORITHM = 'RS256';
/** Defaults used when no configuration names them (the CLI without --config): the loader's own. */
export const DEFAULT_DEV_ISSUER_URL = 'http://127.0.0.1:9187/dev-issuer';
export const DEFAULT_DEV_AUDIENCE: string = DEV_ISSUER_DEFAULTS.audience;
export const DEFAULT_DEV_TENANT: string = DEV_ISSUER_DEFAULTS.tenant;

const RSA_MODULUS_BITS = 2048;
const DEFAULT_TTL_SECONDS = 3600;
/** The longest lifetime the development issuer mints a token for. */
export const MAX_TTL_SECONDS = 24 * 3600;
/** azpacr / appidacr: how the client authenticated ("1" = client secret, as a typical agent). */
const CLIENT_AUTH_SECRET = '1';

export type TokenShape = 'azure-v2' | 'azure-v1';

export interface MintOptions {
  /** The client application: goes into `azp` (v2) or `appid` (v1). */
  subject: string;
  /** Default: the issuer's configured audience. */
  audience?: string;
  roles?: string[];
  groups?: string[];
  /** Lifetime; default 1 h, at most 24 h. */
  ttlSeconds?: number;
  /** Default 'azure-v2'. */
  shape?: TokenShape;
  /** `tid`; default the issuer's configured tenant. */
  tenant?: string;
  /** Optional display name (`name`). */
  name?: string;
  /** Added last, so they may replace any shaped claim (for tests of odd tokens). */
  extraClaims?: Record<string, unknown>;
}

export interface MintedToken {
  token: string;
  claims: JWTPayload;
  expiresAt: Date;
}

export type DevIssuerLoadConfig = DevIssuerConfig & { issuer: string };

/** A stable object id per subject, as Azure gives each service principal one `oid`. */
function objectIdFor(issuer: string, subject: string): string {
  const h = createHash('sha256').update(`warden-dev-oid\0${issuer}\0${subject}`).digest('hex');
  // Shaped as an RFC 9562 version 8 (custom) UUID.
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function isNodeError(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

async function readKeyFile(keyFile: string): Promise<string | undefined> {
  try {
    return await readFile(keyFile, 'utf8');
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return undefined;
    throw new Error(`dev issuer: cannot read key file ${keyFile}: ${(err as Error).message}`);
  }
}

/**
 * Creates the key file, or returns undefined when another process created it first (then every
 * process signs with that one key). Written aside and hard-linked into place, so a reader never
 * sees a half-written key.
 */
async function generateKeyFile(keyFile: string): Promise<string | undefined> {
  const { privateKey } = await generateKeyPair(DEV_ALGORITHM, { modulusLength: RSA_MODULUS_BITS, extractable: true });
  const pem = await exportPKCS8(privateKey);
  await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
  const aside = `${keyFile}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(aside, pem, { mode: 0o600, flag: 'wx' });
  try {
    await chmod(aside, 0o600);
    await link(aside, keyFile);
    return pem;
  } catch (err) {
    if (isNodeError(err, 'EEXIST')) return undefined;
    throw new Error(`dev issuer: cannot write key file ${keyFile}: ${(err as Error).message}`);
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

export class DevIssuer {
  private constructor(
    /** The `iss` of minted tokens. */
    readonly issuer: string,
    readonly audience: string,
    readonly tenant: string,
    readonly keyFile: string,
    /** RFC 7638 thumbprint of the public key. */
    readonly kid: string,
    /** True when load() created the key file. */
    readonly keyGenerated: boolean,
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
  ) {}

  /** Loads the PKCS#8 PEM private key from `keyFile`, or generates one there (mode 0600). */
  static async load(config: DevIssuerLoadConfig): Promise<DevIssuer> {
    const issuer = config.issuer.replace(/\/+$/, '');
    if (!/^https?:\/\//.test(issuer)) throw new Error(`dev issuer: issuer must be an http(s) URL, got '${config.issuer}'`);
    let pem = await readKeyFile(config.keyFile);
    let generated = false;
    if (pem === undefined) {
      pem = await generateKeyFile(config.keyFile);
      generated = pem !== undefined;
      pem ??= await readKeyFile(config.keyFile);
      if (pem === undefined) throw new Error(`dev issuer: key file ${config.keyFile} vanished while loading`);
    }
    let privateKey: CryptoKey;
    try {
      privateKey = await importPKCS8(pem, DEV_ALGORITHM, { extractable: true });
    } catch (err) {
      throw new Error(`dev issuer: ${config.keyFile} is not a PKCS#8 PEM RSA private key (${(err as Error).message})`);
    }
    const { kty, n, e } = await exportJWK(privateKey);
    if (kty !== 'RSA' || n === undefined || e === undefined) {
      throw new Error(`dev issuer: ${config.keyFile} does not hold an RSA key`);
    }
    const bits = Buffer.from(n, 'base64url').length * 8;
    if (bits < RSA_MODULUS_BITS) throw new Error(`dev issuer: ${config.keyFile} holds a ${bits}-bit RSA key; 2048 or more needed`);
    const publicJwk: JWK = { kty, n, e };
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    return new DevIssuer(issuer, config.audience, config.tenant, config.keyFile, kid, generated, privateKey, publicJwk);
  }

  /** Where the admin server publishes jwks(): `<issuer>/jwks.json`. */
  get jwksUri(): string {
    return `${this.issuer}/jwks.json`;
  }

  /** The public key set (never the private key). */
  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.publicJwk, kid: this.kid, alg: DEV_ALGORITHM, use: 'sig' }] };
  }

  /** The OIDC discovery document served at `<issuer>/.well-known/openid-configuration`. */
  openidConfiguration(jwksUri: string = this.jwksUri): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: jwksUri,
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [DEV_ALGORITHM],
      token_endpoint_auth_methods_supported: ['none'],
      claims_supported: ['aud', 'iss', 'iat', 'nbf', 'exp', 'azp', 'appid', 'oid', 'sub', 'tid', 'ver', 'roles', 'groups', 'idtyp', 'jti'],
    };
  }

  /** How the verifier trusts this issuer: through its JWKS URL, like any Azure AD tenant. */
  issuerConfig(jwksUri: string = this.jwksUri, audiences: string[] = [this.audience]): IssuerConfig {
    return {
      name: DEV_ISSUER_NAME,
      issuer: this.issuer,
      jwksUri,
      audiences,
      algorithms: [DEV_ALGORITHM],
      tenant: this.tenant,
      subjectClaims: [...ISSUER_DEFAULTS.subjectClaims],
      clockSkew: ISSUER_DEFAULTS.clockSkew,
      jwksRefreshInterval: ISSUER_DEFAULTS.jwksRefreshInterval,
      jwksCacheMaxAge: ISSUER_DEFAULTS.jwksCacheMaxAge,
    };
  }

  async mint(opts: MintOptions): Promise<string> {
    return (await this.mintWithClaims(opts)).token;
  }

  /** Like mint(), and also returns the claims and the expiry (for `warden token mint --json`). */
  async mintWithClaims(opts: MintOptions): Promise<MintedToken> {
    if (typeof opts.subject !== 'string' || opts.subject.length === 0) throw new Error('mint: subject must be a non-empty string');
    const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
      throw new Error(`mint: ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${ttl}`);
    }
    const now = Math.floor(Date.now() / 1000);
    const tid = opts.tenant ?? this.tenant;
    const oid = objectIdFor(this.issuer, opts.subject);
    const claims: JWTPayload = {
      aud: opts.audience ?? this.audience,
      iss: this.issuer,
      iat: now,
      nbf: now,
      exp: now + ttl,
      ...((opts.shape ?? 'azure-v2') === 'azure-v2'
        ? { azp: opts.subject, azpacr: CLIENT_AUTH_SECRET, ver: '2.0' }
        : { appid: opts.subject, appidacr: CLIENT_AUTH_SECRET, ver: '1.0' }),
      idtyp: 'app',
      oid,
      sub: oid,
      tid,
      jti: randomUUID(),
    };
    if (opts.roles && opts.roles.length > 0) claims.roles = [...opts.roles];
    if (opts.groups && opts.groups.length > 0) claims.groups = [...opts.groups];
    if (opts.name !== undefined) claims.name = opts.name;
    Object.assign(claims, opts.extraClaims);

    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: DEV_ALGORITHM, typ: 'JWT', kid: this.kid })
      .sign(this.privateKey);
    const exp = typeof claims.exp === 'number' ? claims.exp : now + ttl;
    return { token, claims, expiresAt: new Date(exp * 1000) };
  }
}

// `identity:` — who may sign the tokens agents present: OIDC issuers (Azure AD / Entra ID or any
// other), and the local development issuer.
//
//   identity:
//     issuers:
//       - name: azure
//         issuer: https://login.microsoftonline.com/<tenant-id>/v2.0
//         jwks_uri: https://login.microsoftonline.com/<tenant-id>/discovery/v2.0/keys
//         audiences: [api://warden]
//         tenant: <tenant-id>
//     dev_issuer:
//       enabled: true
import { join } from 'node:path';
import type { DevIssuerConfig, IdentityConfig, IssuerConfig, ListenConfig } from '../types.js';
import { DAY, HOUR, MINUTE, SECOND } from '../units.js';
import type { Field } from '../validate.js';
import { httpUrl, keyUrl, name } from './checks.js';

/** The name principals use for the development issuer. */
export const DEV_ISSUER_NAME = 'dev';

/** Tenant id in dev-issued tokens unless configured: a fixed, recognisable, valid UUID. */
export const DEV_TENANT_ID = 'de7de7de-0000-4000-8000-000000000000';

export const ISSUER_DEFAULTS = {
  algorithms: ['RS256'],
  subjectClaims: ['azp', 'appid', 'oid', 'sub'],
  clockSkew: 60 * SECOND,
  jwksRefreshInterval: 30 * SECOND,
  jwksCacheMaxAge: 10 * MINUTE,
} as const;

export const DEV_ISSUER_DEFAULTS = {
  audience: 'api://warden',
  tenant: DEV_TENANT_ID,
  /** Relative to data_dir. */
  keyFile: join('keys', 'dev-issuer.pem'),
} as const;

/**
 * Asymmetric JWS algorithms only: with `none` anyone can forge a token, and with HMAC the
 * "secret" would have to be shared with warden (RFC 8725 s2.1, s3.1). Kept in step with
 * src/identity/algorithms.ts, which has the last word at run time.
 */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const ISSUER_KEYS = [
  'name',
  'issuer',
  'jwks_uri',
  'jwks_file',
  'audiences',
  'algorithms',
  'tenant',
  'subject_claims',
  'clock_skew',
  'jwks_refresh_interval',
  'jwks_cache_max_age',
] as const;

const AZURE_ISSUER = /^https:\/\/(?:sts\.windows\.net|login\.microsoftonline\.com)\/([^/]+)\//i;
const AZURE_MULTI_TENANT: ReadonlySet<string> = new Set(['common', 'organizations', 'consumers']);

export interface IdentityRead {
  identity: IdentityConfig;
  /** Every issuer name a principal may refer to ("dev" when the dev issuer is enabled), including
   *  names of issuers that had other problems, so principals are not reported twice. */
  names: ReadonlySet<string>;
}

interface IdentityContext {
  dataDir: string;
  admin?: ListenConfig;
  /** False when listen could not be read: whether an admin listener exists is then unknown. */
  listenKnown?: boolean;
}

export function readIdentity(field: Field, ctx: IdentityContext): IdentityRead | undefined {
  const s = field.section(['issuers', 'dev_issuer']);
  if (!s) return undefined;
  const names = new Map<string, number>(); // name → line
  const issValues = new Map<string, string>(); // iss → path
  let written = 0;
  const issuersField = s.get('issuers');
  const issuerList = issuersField.list((f) => {
    written++;
    return readIssuer(f, names, issValues);
  });
  const devField = s.get('dev_issuer');
  const devIssuer = readDevIssuer(devField, ctx);
  if (devIssuer?.issuer !== undefined && issValues.has(devIssuer.issuer)) {
    devField.fail(`issues tokens with the same iss as ${issValues.get(devIssuer.issuer) ?? 'another issuer'}; give it its own issuer URL`);
  }
  const allNames = new Set(names.keys());
  if (devIssuer?.enabled) allNames.add(DEV_ISSUER_NAME);
  // Only when nothing was written at all: a broken issuer or dev_issuer is reported on its own.
  const broken = (issuersField.present && issuerList === undefined) || (devField.present && devIssuer === undefined);
  if (written === 0 && !broken && !devIssuer?.enabled) {
    s.fail('no token issuer is configured: add identity.issuers, or set identity.dev_issuer.enabled: true for local use');
  }
  const issuers = issuerList ?? [];
  const identity: IdentityConfig = { issuers, ...(devIssuer ? { devIssuer } : {}) };
  return { identity, names: allNames };
}

function readIssuer(field: Field, names: Map<string, number>, issValues: Map<string, string>): IssuerConfig | undefined {
  const s = field.section(ISSUER_KEYS);
  if (!s) return undefined;

  const nameField = s.need('name');
  const issuerName = nameField.string({ check: name });
  if (issuerName !== undefined) {
    const first = names.get(issuerName);
    if (issuerName === DEV_ISSUER_NAME) nameField.fail(`"${DEV_ISSUER_NAME}" is reserved for the development issuer (identity.dev_issuer)`);
    else if (first !== undefined) nameField.fail(`duplicate issuer name "${issuerName}" (first used at line ${first})`);
    else names.set(issuerName, nameField.line);
  }

  const issField = s.need('issuer');
  const iss = issField.string({ check: httpUrl });
  if (iss !== undefined) {
    const tenantInUrl = AZURE_ISSUER.exec(iss)?.[1];
    if (tenantInUrl !== undefined && AZURE_MULTI_TENANT.has(tenantInUrl.toLowerCase())) {
      issField.fail(`names the "${tenantInUrl}" endpoint, but Azure AD tokens carry their tenant id in iss; use https://login.microsoftonline.com/<tenant-id>/v2.0`);
    }
    const other = issValues.get(iss);
    if (other !== undefined) issField.fail(`is the same issuer as ${other}; list each issuer once`);
    else issValues.set(iss, issField.path);
  }

  const uriField = s.get('jwks_uri');
  const fileField = s.get('jwks_file');
  const jwksUri = uriField.string({ check: keyUrl });
  const jwksFile = fileField.readableFile('JWKS');
  if (uriField.present && fileField.present) fileField.fail('cannot be combined with jwks_uri (use one or the other)');
  if (!uriField.present && !fileField.present) s.fail('needs jwks_uri (the key set URL) or jwks_file (a local JWKS file)');

  const audiences = s.need('audiences').strings({ nonEmpty: true });
  const algorithms = s.get('algorithms').list((f) => f.string({ check: algorithm }), { nonEmpty: true }) ?? [...ISSUER_DEFAULTS.algorithms];

  const tenantField = s.get('tenant');
  const tenant = tenantField.string();
  const tenantInUrl = iss === undefined ? undefined : AZURE_ISSUER.exec(iss)?.[1];
  if (tenant !== undefined && tenantInUrl !== undefined && !AZURE_MULTI_TENANT.has(tenantInUrl.toLowerCase())) {
    if (tenant.toLowerCase() !== tenantInUrl.toLowerCase()) {
      tenantField.fail(`does not match the tenant in issuer (${JSON.stringify(tenantInUrl)})`);
    }
  }

  const subjectClaims = s.get('subject_claims').strings({ nonEmpty: true }) ?? [...ISSUER_DEFAULTS.subjectClaims];
  const clockSkew = s.get('clock_skew').duration({ max: 10 * MINUTE }) ?? ISSUER_DEFAULTS.clockSkew;
  const jwksRefreshInterval = s.get('jwks_refresh_interval').duration({ min: SECOND, max: HOUR }) ?? ISSUER_DEFAULTS.jwksRefreshInterval;
  const jwksCacheMaxAge = s.get('jwks_cache_max_age').duration({ min: SECOND, max: DAY }) ?? ISSUER_DEFAULTS.jwksCacheMaxAge;

  if (issuerName === undefined || iss === undefined || audiences === undefined) return undefined;
  if ((jwksUri === undefined) === (jwksFile === undefined)) return undefined;
  return {
    name: issuerName,
    issuer: iss,
    ...(jwksUri !== undefined ? { jwksUri } : {}),
    ...(jwksFile !== undefined ? { jwksFile } : {}),
    audiences,
    algorithms,
    ...(tenant !== undefined ? { tenant } : {}),
    subjectClaims,
    clockSkew,
    jwksRefreshInterval,
    jwksCacheMaxAge,
  };
}

function algorithm(value: string): string | undefined {
  if (value.toLowerCase() === 'none') return 'must not be "none": unsigned tokens can be forged by anyone';
  if (/^HS\d+$/i.test(value)) {
    return 'must not be an HMAC algorithm: warden verifies public-key signatures from the JWKS (RFC 8725 s3.1)';
  }
  if ((ALLOWED_ALGORITHMS as readonly string[]).includes(value)) return undefined;
  return `must be one of ${ALLOWED_ALGORITHMS.join(', ')}`;
}

function readDevIssuer(field: Field, ctx: IdentityContext): DevIssuerConfig | undefined {
  if (!field.present) return undefined;
  const s = field.section(['enabled', 'issuer', 'key_file', 'audience', 'tenant']);
  if (!s) return undefined;
  const issuerField = s.get('issuer');
  const issuer = issuerField.string({ check: httpUrl }) ?? (ctx.admin ? devIssuerUrl(ctx.admin) : undefined);
  const enabledField = s.get('enabled');
  const enabled = enabledField.boolean() ?? false;
  // Its tokens name the JWKS it serves on the admin port: without that port, nothing can verify them.
  if (enabled && !issuerField.present && !ctx.admin && ctx.listenKnown !== false) {
    enabledField.fail('the development issuer serves its keys on the admin port: add listen.admin, or set identity.dev_issuer.issuer to a URL where they are served');
  }
  return {
    enabled,
    ...(issuer !== undefined ? { issuer } : {}),
    // Generated on first use when missing, so only the path is resolved here.
    keyFile: s.get('key_file').filePath() ?? join(ctx.dataDir, DEV_ISSUER_DEFAULTS.keyFile),
    audience: s.get('audience').string() ?? DEV_ISSUER_DEFAULTS.audience,
    tenant: s.get('tenant').string() ?? DEV_ISSUER_DEFAULTS.tenant,
  };
}

/**
 * The dev issuer's default `iss`: its JWKS is served on the admin port. Undefined for port 0
 * (not known until the port is bound; call this again with the bound address).
 */
export function devIssuerUrl(admin: ListenConfig): string | undefined {
  if (admin.port === 0) return undefined;
  const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
  const shown = host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${admin.port}/dev-issuer`;
}

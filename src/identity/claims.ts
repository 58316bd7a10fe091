// From a verified claims set to a VerifiedIdentity: tenant check, subject, roles, groups and the
// groups overage. Works for Azure AD v1.0 (`appid`) and v2.0 (`azp`) access tokens alike.

import type { JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { AUTH_REASONS, clip } from './reasons.js';
import { AuthError, type VerifiedIdentity } from './types.js';

function stringClaim(claims: JWTPayload, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A list claim (`roles`, `groups`): absent is empty; anything but a list of strings is refused. */
function listClaim(claims: JWTPayload, name: string): string[] {
  const value = claims[name];
  if (value === undefined) return [];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return [...value];
  throw new AuthError(AUTH_REASONS.malformed, `the "${name}" claim is not a list of strings`);
}

/**
 * True when the token's groups are incomplete: Azure AD replaces `groups` with a pointer
 * (`_claim_names.groups` → `_claim_sources`) when there are too many, and sets `hasgroups` in
 * some flows. Any distributed-claims pointer counts, so group grants fail closed.
 */
export function hasGroupsOverage(claims: JWTPayload): boolean {
  const names = claims._claim_names;
  if (typeof names === 'object' && names !== null && Object.hasOwn(names, 'groups')) return true;
  if (claims._claim_sources !== undefined) return true;
  return claims.hasgroups === true || claims.hasgroups === 'true';
}

function acceptedAudience(claims: JWTPayload, audiences: readonly string[]): string {
  const aud = claims.aud;
  const candidates = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  const hit = candidates.find((a) => audiences.includes(a));
  // jwtVerify already checked the audience; this only names the one that matched.
  if (hit === undefined) throw new AuthError(AUTH_REASONS.audience, `aud ${clip(aud)} is not one of ${clip(audiences)}`);
  return hit;
}

/** A NumericDate as a Date; undefined when absent or beyond the range of a Date (year 275760). */
function date(seconds: unknown): Date | undefined {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return undefined;
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function identityFromClaims(claims: JWTPayload, issuer: IssuerConfig): VerifiedIdentity {
  // jwtVerify takes any number as exp. One beyond any Date would leave the session without a
  // usable expiry (its timer and transcript dates break): as good as no expiry, which is refused.
  const expiresAt = date(claims.exp);
  if (expiresAt === undefined) throw new AuthError(AUTH_REASONS.malformed, `exp ${clip(claims.exp)} is not a date warden can represent`);
  const tenantId = stringClaim(claims, 'tid');
  if (issuer.tenant !== undefined && tenantId !== issuer.tenant) {
    throw new AuthError(
      AUTH_REASONS.tenant,
      tenantId === undefined ? 'token has no tid claim' : `tid ${clip(tenantId)} is not ${issuer.tenant}`,
    );
  }

  const subjectClaim = issuer.subjectClaims.find((name) => stringClaim(claims, name) !== undefined);
  const subject = subjectClaim === undefined ? undefined : stringClaim(claims, subjectClaim);
  if (subjectClaim === undefined || subject === undefined) {
    throw new AuthError(AUTH_REASONS.noSubject, `none of ${issuer.subjectClaims.join(', ')} is a non-empty string`);
  }

  const identity: VerifiedIdentity = {
    issuerName: issuer.name,
    issuer: issuer.issuer,
    subject,
    subjectClaim,
    roles: listClaim(claims, 'roles'),
    groups: listClaim(claims, 'groups'),
    groupsOverage: hasGroupsOverage(claims),
    audience: acceptedAudience(claims, issuer.audiences),
  };
  const appId = stringClaim(claims, 'appid') ?? stringClaim(claims, 'azp');
  const objectId = stringClaim(claims, 'oid');
  const version = stringClaim(claims, 'ver');
  const identityType = stringClaim(claims, 'idtyp');
  const issuedAt = date(claims.iat);
  const tokenId = stringClaim(claims, 'jti') ?? stringClaim(claims, 'uti');
  if (appId !== undefined) identity.appId = appId;
  if (objectId !== undefined) identity.objectId = objectId;
  if (tenantId !== undefined) identity.tenantId = tenantId;
  if (version !== undefined) identity.version = version;
  if (identityType !== undefined) identity.identityType = identityType;
  identity.expiresAt = expiresAt;
  if (issuedAt !== undefined) identity.issuedAt = issuedAt;
  if (tokenId !== undefined) identity.tokenId = tokenId;
  return identity;
}

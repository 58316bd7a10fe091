// The reasons a token is refused, as the client sees them. Short, fixed strings: they never echo
// the token or anything derived from key material. docs/identity.md explains each one.

export const AUTH_REASONS = {
  malformed: 'malformed token',
  algorithm: 'token algorithm is not allowed',
  issuer: 'token issuer is not trusted',
  signature: 'token signature is invalid',
  unknownKey: 'token signing key is unknown',
  keysUnavailable: 'token signing keys are unavailable',
  expired: 'token expired',
  notYetValid: 'token not yet valid',
  noExpiry: 'token has no expiry',
  audience: 'token audience is not accepted',
  tenant: 'token tenant is not accepted',
  noSubject: 'token has no subject claim',
  unverifiable: 'token could not be verified',
} as const;

export type AuthReason = (typeof AUTH_REASONS)[keyof typeof AUTH_REASONS];

/** Cuts untrusted text (claims, header values) to a length fit for a log line. */
export function clip(value: unknown, max = 120): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

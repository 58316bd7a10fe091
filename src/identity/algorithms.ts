// JWS algorithms warden will verify. Only asymmetric signatures: with `none` anyone can forge a
// token, and with an HMAC algorithm the "secret" would be the issuer's public key (RFC 8725 s2.1,
// s3.1). The config loader rejects the others too; this list is the last word.

export const SIGNATURE_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

export function isSignatureAlgorithm(alg: unknown): alg is string {
  return typeof alg === 'string' && SIGNATURE_ALGORITHMS.has(alg);
}

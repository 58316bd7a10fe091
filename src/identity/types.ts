// Who an agent is, once its OIDC access token has been validated.

/** A validated identity. Holds claims that matter for policy and audit, never the token itself. */
export interface Principal {
  /** Name of the matching principal rule (policy), e.g. "reporting-agent". */
  name: string;
  /** IssuerConfig.name of the issuer that signed the token ("dev" for the development issuer). */
  issuerName: string;
  /** The token's `iss`. */
  issuer: string;
  /** Value of the first present subject claim (azp / appid / oid / sub by default). */
  subject: string;
  /** Which claim `subject` came from. */
  subjectClaim: string;
  appId?: string;
  objectId?: string;
  tenantId?: string;
  /** Token version ("1.0" / "2.0") when present. */
  version?: string;
  /** `idtyp`, e.g. "app" for app-only tokens. */
  identityType?: string;
  roles: string[];
  groups: string[];
  /** True when the token carries a groups overage pointer instead of the groups. */
  groupsOverage: boolean;
  /** From `exp`. */
  expiresAt?: Date;
  /** The token's `aud` that was accepted. */
  audience: string;
  /** `jti` (or Azure's `uti`): names the token in transcripts without holding the token. */
  tokenId?: string;
  /** From `iat`. */
  issuedAt?: Date;
}

/**
 * A validated token before policy mapping (no principal rule chosen yet).
 * `name` is filled in by the policy (src/policy) once a PrincipalRule matches.
 */
export type VerifiedIdentity = Omit<Principal, 'name'>;

/**
 * Why a token was refused. `reason` is short and safe to show the client (one of AUTH_REASONS in
 * src/identity/reasons.ts); `detail` is for logs and never holds the token or key material.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly reason: string,
    readonly detail?: string,
  ) {
    super(reason);
  }
}

export interface TokenVerifier {
  /**
   * Validates a compact JWS access token; throws AuthError when it is not acceptable. `presentedAt`
   * is the admin API request path the token was sent to, for log lines about a refusal.
   */
  verify(token: string, presentedAt?: string): Promise<VerifiedIdentity>;
}

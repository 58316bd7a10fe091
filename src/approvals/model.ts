// What the approvals store keeps: requests (one per held statement) and grants (time-boxed
// permission to run statements with one fingerprint), their state changes, and the errors every
// layer reports (the HTTP API maps them to status codes, the CLI prints them).
import { randomBytes } from 'node:crypto';
import type { Principal } from '../identity/types.js';

export const REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired', 'withdrawn'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** The requester as stored: claims that identify it, never the token. */
export interface RequesterInfo {
  name: string;
  issuerName: string;
  issuer: string;
  subject: string;
  objectId?: string;
  tenantId?: string;
  roles: string[];
  groups: string[];
}

/** Who decided (or revoked), as stored. */
export interface ActorInfo {
  /** The approver rule that allowed it. */
  rule: string;
  issuerName: string;
  issuer: string;
  subject: string;
  objectId?: string;
  /** preferred_username / upn / email / name claim when the token has one. */
  displayName?: string;
  /** One line naming the approver, e.g. "azure:alice@contoso.com". */
  label: string;
}

export interface RequestDecision {
  at: Date;
  /** Absent for expiry and withdrawal. */
  by?: ActorInfo;
  reason?: string;
  scope?: 'once' | 'grant';
  grantId?: string;
}

export interface ApprovalRequest {
  id: string;
  status: RequestStatus;
  createdAt: Date;
  expiresAt: Date;
  instanceId: string;
  sessionId: string;
  protocol: 'postgres' | 'tds';
  target: string;
  principal: RequesterInfo;
  /** `${subject}@${issuer}`: who grants are for. */
  principalKey: string;
  clientAddress: string;
  sql: string;
  fingerprint: string;
  normalized: string;
  params?: (string | null)[];
  rule: string;
  reason: string;
  decision?: RequestDecision;
}

export interface GrantRecord {
  id: string;
  principalKey: string;
  principalName: string;
  target: string;
  fingerprint: string;
  /** The normalized text of the request it was given on (for display). */
  normalized: string;
  rule: string;
  requestId: string;
  createdAt: Date;
  expiresAt: Date;
  approver: ActorInfo;
  reason?: string;
  revokedAt?: Date;
  revokedBy?: ActorInfo;
  revokeReason?: string;
}

export type Decision =
  | { status: 'approved'; by: ActorInfo; reason?: string; grant?: { id: string; expiresAt: Date } }
  | { status: 'denied'; by: ActorInfo; reason: string };

export interface RequestFilter {
  status?: RequestStatus;
  /** Principal rule name or subject. */
  principal?: string;
  target?: string;
  /** Newest first, at most this many; default 100. */
  limit?: number;
}

export interface GrantFilter {
  /** Only grants neither revoked nor expired at this time. */
  liveAt?: Date;
  principal?: string;
  target?: string;
  limit?: number;
}

export type StoreEvent =
  | 'request.created'
  | 'request.decided'
  | 'request.expired'
  | 'request.withdrawn'
  | 'grant.created'
  | 'grant.revoked';

/** A change committed to the store (by this instance or, with a shared store, another). */
export interface StoreChange {
  event: StoreEvent;
  id: string;
}

export const EVENT_FOR_STATUS: Record<Exclude<RequestStatus, 'pending'>, StoreEvent> = {
  approved: 'request.decided',
  denied: 'request.decided',
  expired: 'request.expired',
  withdrawn: 'request.withdrawn',
};

export type ApprovalErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'bad_request'
  | 'store_unavailable';

/** An error with a short, safe message for approvers, agents and the CLI. */
export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
  constructor(
    readonly code: ApprovalErrorCode,
    message: string,
    /** Facts for the response body (e.g. the current status on a conflict). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The store could not be reached or could not write: callers fail closed. */
export function storeUnavailable(err: unknown): ApprovalError {
  if (err instanceof ApprovalError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new ApprovalError('store_unavailable', `approval store unavailable: ${why}`);
}

const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

/** `apr_…` / `grt_…` with 60 random bits, short enough to type. */
export function newId(prefix: 'apr' | 'grt'): string {
  const bytes = randomBytes(12);
  let out = '';
  for (let i = 0; i < 12; i++) out += ID_ALPHABET[(bytes[i] ?? 0) & 31];
  return `${prefix}_${out}`;
}

/**
 * Whom grants are for: the token's subject at its issuer, and its object id when it has one. For
 * Azure the subject is the client application: every user of one application (Azure CLI, say)
 * shares it, and a grant for one user's agent must not cover another's.
 */
export function principalKeyOf(p: Pick<Principal, 'issuer' | 'subject' | 'objectId'>): string {
  return p.objectId !== undefined ? `${p.subject}@${p.issuer}#${p.objectId}` : `${p.subject}@${p.issuer}`;
}

export function requesterInfo(p: Principal): RequesterInfo {
  return {
    name: p.name,
    issuerName: p.issuerName,
    issuer: p.issuer,
    subject: p.subject,
    ...(p.objectId !== undefined ? { objectId: p.objectId } : {}),
    ...(p.tenantId !== undefined ? { tenantId: p.tenantId } : {}),
    roles: [...p.roles],
    groups: [...p.groups],
  };
}

export function isLive(grant: GrantRecord, at: Date): boolean {
  return grant.revokedAt === undefined && grant.expiresAt.getTime() > at.getTime();
}

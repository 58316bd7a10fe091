// The approvals store: one interface, two backends (store-embedded.ts: a journal file for one
// process; store-postgres.ts: tables shared by several warden instances). Both run the same
// contract tests (test/unit/approvals-store.test.ts).
//
// Every state change of a request leaves `pending` at most once: decide, expire and withdraw are
// conditional on the request still being pending, atomically, so two approvers (on two instances)
// cannot both decide, and a decision cannot race an expiry into two outcomes. Failures reject with
// ApprovalError('store_unavailable'); callers fail closed.
import type { ActorInfo, ApprovalRequest, Decision, GrantFilter, GrantRecord, RequestFilter, StoreChange } from './model.js';

export type DecideResult =
  | { ok: true; request: ApprovalRequest; grant?: GrantRecord }
  | { ok: false; reason: 'not_found' }
  /** Already decided, expired or withdrawn. */
  | { ok: false; reason: 'not_pending'; request: ApprovalRequest }
  /** Still pending, but past its expiry (the holding instance is about to expire it). */
  | { ok: false; reason: 'expired'; request: ApprovalRequest };

export type FinishResult =
  | { changed: true; request: ApprovalRequest }
  /** Not pending any more (the request as it is), or unknown (request undefined). */
  | { changed: false; request: ApprovalRequest | undefined };

export type RevokeResult =
  | { ok: true; grant: GrantRecord }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'not_live'; grant: GrantRecord };

export interface ApprovalStore {
  readonly kind: 'embedded' | 'postgres';
  /**
   * How often a holding instance should look at its pending requests itself, when another
   * instance may decide them (notifications can be lost); undefined when every change is seen.
   */
  readonly pollInterval: number | undefined;

  createRequest(request: ApprovalRequest): Promise<void>;
  getRequest(id: string): Promise<ApprovalRequest | undefined>;
  /** The requests among `ids` that are no longer pending. */
  settledAmong(ids: readonly string[]): Promise<ApprovalRequest[]>;
  listRequests(filter?: RequestFilter): Promise<ApprovalRequest[]>;
  /** Approve (once or with a grant, created atomically with the decision) or deny, exactly once. */
  decide(id: string, decision: Decision, now: Date): Promise<DecideResult>;
  /** pending → expired / withdrawn. */
  finish(id: string, status: 'expired' | 'withdrawn', reason: string | undefined, now: Date): Promise<FinishResult>;
  /** On start: this instance's pending requests lost their connections; mark them withdrawn. */
  recover(instanceId: string, reason: string, now: Date): Promise<ApprovalRequest[]>;
  /** Pending requests that expired before `before` (their instance is gone): mark them expired. */
  expireOverdue(before: Date, now: Date): Promise<ApprovalRequest[]>;

  /** A live grant for exactly this principal, target and fingerprint. */
  findGrant(principalKey: string, target: string, fingerprint: string, at: Date): Promise<GrantRecord | undefined>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  listGrants(filter?: GrantFilter): Promise<GrantRecord[]>;
  revokeGrant(id: string, by: ActorInfo, reason: string | undefined, now: Date): Promise<RevokeResult>;

  /** Changes committed by any instance sharing the store (at most once each, in commit order per instance). */
  subscribe(listener: (change: StoreChange) => void): () => void;
  close(): Promise<void>;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export function listLimit(requested: number | undefined): number {
  if (requested === undefined || !Number.isFinite(requested) || requested <= 0) return DEFAULT_LIST_LIMIT;
  return Math.min(Math.floor(requested), MAX_LIST_LIMIT);
}

/** Filter used by both backends' in-memory and SQL paths alike. */
export function matchesRequest(r: ApprovalRequest, f: RequestFilter): boolean {
  if (f.status !== undefined && r.status !== f.status) return false;
  if (f.target !== undefined && r.target !== f.target) return false;
  if (f.principal !== undefined && r.principal.name !== f.principal && r.principal.subject !== f.principal) return false;
  return true;
}

export function matchesGrant(g: GrantRecord, f: GrantFilter): boolean {
  if (f.liveAt !== undefined && (g.revokedAt !== undefined || g.expiresAt.getTime() <= f.liveAt.getTime())) return false;
  if (f.target !== undefined && g.target !== f.target) return false;
  if (f.principal !== undefined && g.principalName !== f.principal && !g.principalKey.startsWith(`${f.principal}@`)) return false;
  return true;
}

/** The grant an approval with `grant` creates, for the request it was given on. */
export function grantFromDecision(request: ApprovalRequest, decision: Extract<Decision, { status: 'approved' }>, now: Date): GrantRecord | undefined {
  if (!decision.grant) return undefined;
  return {
    id: decision.grant.id,
    principalKey: request.principalKey,
    principalName: request.principal.name,
    target: request.target,
    fingerprint: request.fingerprint,
    normalized: request.normalized,
    rule: request.rule,
    requestId: request.id,
    createdAt: now,
    expiresAt: decision.grant.expiresAt,
    approver: decision.by,
    ...(decision.reason !== undefined ? { reason: decision.reason } : {}),
  };
}


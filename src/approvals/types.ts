// The contract between the relays (PostgreSQL now, TDS later) and just-in-time approval.
// The relay owns the wire: it holds the statement on the live connection, tells the agent it is
// held (a NoticeResponse), and on the outcome forwards the statement or answers with an error.
// The approvals side owns the rules, the requests, the decisions, grants and notifications.
//
// Flow for one statement:
//   verdict = policy.evaluate(ctx, classification)        // synchronous, on the hot path
//   if verdict.action === 'hold':
//     grant = await approvals.findGrant(request)          // a time-boxed grant may cover it
//     if (!grant) { hold = await approvals.hold(request) // persisted + announced; rejects if the store is down
//                   notify the agent with hold.id / hold.url
//                   outcome = await hold.outcome }        // approve / deny / expire / withdraw
//   on client cancel or disconnect while held: hold.withdraw('cancelled' | 'disconnected')
import type { Principal } from '../identity/types.js';
import type { Classification } from '../sql/types.js';

export type StatementAction = 'allow' | 'deny' | 'hold';

export type StatementVerdict =
  | { action: 'allow'; rule?: string }
  | { action: 'deny' | 'hold'; rule: string; reason: string };

export interface PolicyContext {
  principal: Principal;
  target: string;
  protocol: 'postgres' | 'tds';
}

/**
 * Statement rules from the policy. `evaluate` must be fast (it runs for every statement; cache
 * what can be cached). For a text holding several statements the strictest verdict wins
 * (deny > hold > allow). A classification with ok:false (unparseable) is held unless a rule
 * says deny — never allowed (fail closed).
 */
export interface StatementPolicy {
  evaluate(ctx: PolicyContext, classification: Classification): StatementVerdict;
  /** True when no rule could ever hold or deny for this principal and target (the relay may skip evaluate()). */
  permitsEverything(ctx: PolicyContext): boolean;
}

export interface HoldRequest {
  sessionId: string;
  /** warden instance holding the connection. */
  instanceId: string;
  protocol: 'postgres' | 'tds';
  target: string;
  principal: Principal;
  clientAddress: string;
  /** The statement as the agent sent it (may hold several statements). */
  sql: string;
  /** libpg_query fingerprint (or a normalized-text digest for T-SQL): the unit grants are given for. */
  fingerprint: string;
  /** Literals replaced, for display. */
  normalized: string;
  /** Parameters of an extended-protocol Bind / TDS RPC, as display strings (approvers may need them). */
  params?: readonly (string | null)[];
  rule: string;
  reason: string;
  /**
   * The classification the verdict was made from (what the relay's classifier said, ok:false
   * included). With it, approvals derive the grant unit with approvalFingerprint(); without it a
   * PostgreSQL statement is only ever granted by its exact text and parameters.
   */
  classification?: Classification;
  /**
   * The texts of prepared statements this one runs (SQL EXECUTE of a name): what really runs.
   * With them a grant is for this exact text and those texts (a name can be prepared again).
   */
  runs?: readonly string[];
}

export type HoldOutcome =
  | { decision: 'approved'; approver: string; reason?: string; scope: 'once' | 'grant'; grantId?: string }
  | { decision: 'denied'; approver: string; reason: string }
  | { decision: 'expired' }
  | { decision: 'withdrawn'; reason: string }
  /** The store failed while waiting: the relay treats this as a denial (fail closed). */
  | { decision: 'error'; message: string };

export interface Hold {
  /** Request id shown to the agent and approvers. */
  readonly id: string;
  /** Where a human approves it (admin URL of the request), for the agent's notice. */
  readonly url: string;
  /** When the request expires if nobody decides. */
  readonly expiresAt: Date;
  /** Settles exactly once. */
  readonly outcome: Promise<HoldOutcome>;
  /** The agent cancelled or went away: mark the request withdrawn (no-op once decided). */
  withdraw(reason: 'cancelled' | 'disconnected' | 'session-ended' | 'token-expired'): void;
}

export interface Grant {
  id: string;
  principal: string;
  target: string;
  fingerprint: string;
  expiresAt: Date;
  approver: string;
}

export interface ApprovalService {
  /** A live grant covering this statement, if any (checked before holding). */
  findGrant(request: HoldRequest): Promise<Grant | undefined>;
  /** Persists and announces a request; rejects when the store cannot be reached (the relay then denies). */
  hold(request: HoldRequest): Promise<Hold>;
  close(): Promise<void>;
}

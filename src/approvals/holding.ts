// Holding one statement for approval, the protocol-neutral part: look for a grant, create the
// request, wait for its outcome; and the words the agent and the transcript get for each outcome.
// A relay supplies what belongs to its wire (how the agent is told it waits, how a refusal looks,
// how the statement is recorded); see types.ts for the whole flow.
import type { StatementDecisionInfo } from '../audit/types.js';
import type { Logger } from '../log.js';
import type { ApprovalService, Grant, Hold, HoldOutcome, HoldRequest } from './types.js';

/** How asking for approval ended. */
export type HoldResult =
  /** A live grant covers the statement: it runs without waiting. */
  | { kind: 'grant'; grant: Grant }
  /** It could not be held (fail closed): no approval service, its store cannot be reached, or a text too long to show. */
  | { kind: 'refused'; why: UnheldWhy }
  /** It was held, and this is the outcome. */
  | { kind: 'decided'; hold: Hold; outcome: HoldOutcome };

export type UnheldWhy = 'unconfigured' | 'unreachable' | 'too-long';

/**
 * The longest statement text (characters) held for approval. Approvers must see all of what would
 * run; a longer text is refused rather than shown cut (its tail could hold another statement).
 */
export const MAX_HELD_SQL = 256 * 1024;

/**
 * Asks for approval: a grant first, else a request whose outcome is awaited. `onHeld` runs as
 * soon as the request exists (before any wait), so the relay can tell the agent, record the
 * statement with the request id, and be ready to withdraw it.
 */
export async function seekApproval(
  approvals: ApprovalService | undefined,
  request: HoldRequest,
  log: Logger,
  onHeld: (hold: Hold) => void,
): Promise<HoldResult> {
  if (!approvals) return { kind: 'refused', why: 'unconfigured' };
  const grant = await approvals.findGrant(request).catch((err: unknown) => {
    log.error({ err: (err as Error).message }, 'approval store unreachable while looking for a grant');
    return undefined;
  });
  if (grant) return { kind: 'grant', grant };
  if (request.sql.length > MAX_HELD_SQL) return { kind: 'refused', why: 'too-long' };
  let hold: Hold;
  try {
    hold = await approvals.hold(request);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'approval store unreachable; refusing the held statement');
    return { kind: 'refused', why: 'unreachable' };
  }
  onHeld(hold);
  return { kind: 'decided', hold, outcome: await hold.outcome };
}

export type WithdrawReason = 'cancelled' | 'disconnected' | 'session-ended' | 'token-expired';

/**
 * A statement being held, from the moment the relay starts looking for a grant: what a cancel or
 * disconnect withdraws. Until the request is stored there is nothing to withdraw yet; the reason
 * is kept (`early`) and the request withdrawn as soon as it exists, so a client that leaves or
 * cancels at once leaves no pending request for approvers.
 */
export class PendingHold {
  hold: Hold | undefined;
  early: WithdrawReason | undefined;
  /** The client cancelled it (the relay answers as for a cancelled statement). */
  cancelled = false;

  withdraw(reason: WithdrawReason): void {
    if (this.hold) this.hold.withdraw(reason);
    else this.early ??= reason;
  }

  /** The request is stored: withdrawn at once if the client already cancelled or left. */
  stored(hold: Hold): void {
    this.hold = hold;
    if (this.early) hold.withdraw(this.early);
  }
}

/** What the agent is told: a headline, and detail and hint where the protocol has room for them. */
export interface AgentText {
  message: string;
  detail?: string;
  hint?: string;
}

/** The words for a statement that is waiting for an approver. */
export function heldText(hold: Hold, verdict: { rule: string; reason: string }): Required<AgentText> {
  return {
    message: `warden: statement held for approval (request ${hold.id}, rule "${verdict.rule}")`,
    detail: `${verdict.reason}. Waiting until ${hold.expiresAt.toISOString()} for an approver.`,
    hint: `approve or deny at ${hold.url}`,
  };
}

/** The refusal of a statement that could not be held. */
export function unheldText(rule: string, why: UnheldWhy): AgentText {
  switch (why) {
    case 'unconfigured':
      return { message: `statement requires approval (rule "${rule}") but approvals are not configured` };
    case 'unreachable':
      return { message: `statement requires approval (rule "${rule}") but the approval store cannot be reached`, hint: 'try again later' };
    case 'too-long':
      return {
        message: `statement requires approval (rule "${rule}") but is too long to show to an approver (more than ${MAX_HELD_SQL} characters)`,
        hint: 'send it as smaller statements',
      };
  }
}

/** The refusal for an outcome other than approval (a withdrawal by the agent's own cancel is the relay's to word). */
export function outcomeText(id: string, outcome: Exclude<HoldOutcome, { decision: 'approved' }>): AgentText {
  switch (outcome.decision) {
    case 'denied':
      return { message: `statement denied by ${outcome.approver} (request ${id})`, ...(outcome.reason ? { detail: `reason: ${outcome.reason}` } : {}) };
    case 'expired':
      return { message: `statement was not approved in time (request ${id})` };
    case 'withdrawn':
      return { message: `approval request ${id} was withdrawn: ${outcome.reason}` };
    case 'error':
      return { message: `approval request ${id} failed: the approval store cannot be reached`, hint: 'try again later' };
  }
}

/** The text on one line, for protocols whose messages have no detail or hint (TDS). */
export function oneLine(t: AgentText): string {
  return `${t.message}${t.detail ? `; ${t.detail}` : ''}${t.hint ? ` (${t.hint})` : ''}`;
}

/** The transcript's decision record for an outcome. */
export function decisionRecord(statementId: number, requestId: string, outcome: HoldOutcome): StatementDecisionInfo {
  const decision = outcome.decision === 'approved' ? 'approved' : outcome.decision === 'denied' ? 'denied' : outcome.decision === 'expired' ? 'expired' : 'cancelled';
  return {
    statementId,
    decision,
    requestId,
    ...('approver' in outcome ? { approver: outcome.approver } : {}),
    ...('reason' in outcome && outcome.reason ? { reason: outcome.reason } : outcome.decision === 'error' ? { reason: outcome.message } : {}),
  };
}

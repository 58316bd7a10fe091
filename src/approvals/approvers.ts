// Who may decide what. An approver is a validated token (same issuers as agents) that matches an
// approver rule; the rule limits which targets, statement rules and principals it covers. Nobody
// decides their own request: same issuer and the same subject or object id as the requester.
import { ruleMatches } from '../policy/principals.js';
import type { VerifiedIdentity } from '../identity/types.js';
import { ANY, type ApproverRule } from './config.js';
import type { ActorInfo, ApprovalRequest, GrantRecord } from './model.js';

/** An authenticated caller of the approvals API. */
export interface Approver {
  identity: VerifiedIdentity;
  /** preferred_username / upn / email / name, when the token carries one. */
  displayName?: string;
}

function covers(list: readonly string[], value: string): boolean {
  return list.some((v) => v === ANY || v === value);
}

export class ApproverPolicy {
  constructor(readonly rules: readonly ApproverRule[]) {}

  /** The approver rules this identity falls under (empty: not an approver). */
  rulesFor(identity: VerifiedIdentity): ApproverRule[] {
    return this.rules.filter((r) => ruleMatches(identity, r.match));
  }

  /** The first of `rules` that covers a request (or a grant) for this target, rule and principal. */
  covering(rules: readonly ApproverRule[], what: { target: string; rule: string; principal: string }): ApproverRule | undefined {
    return rules.find((r) => covers(r.targets, what.target) && covers(r.rules, what.rule) && covers(r.principals, what.principal));
  }
}

/** True when the approver is the agent that raised the request. */
export function isRequester(identity: VerifiedIdentity, request: ApprovalRequest): boolean {
  const p = request.principal;
  if (identity.issuer !== p.issuer) return false;
  if (identity.subject === p.subject) return true;
  return identity.objectId !== undefined && identity.objectId === p.objectId;
}

/** How an approver is recorded. */
export function actorOf(approver: Approver, rule: ApproverRule): ActorInfo {
  const { identity } = approver;
  const who = approver.displayName ?? identity.subject;
  return {
    rule: rule.name,
    issuerName: identity.issuerName,
    issuer: identity.issuer,
    subject: identity.subject,
    ...(identity.objectId !== undefined ? { objectId: identity.objectId } : {}),
    ...(approver.displayName !== undefined ? { displayName: approver.displayName } : {}),
    label: `${identity.issuerName}:${who}`,
  };
}

export function grantScope(g: GrantRecord): { target: string; rule: string; principal: string } {
  return { target: g.target, rule: g.rule, principal: g.principalName };
}

export function requestScope(r: ApprovalRequest): { target: string; rule: string; principal: string } {
  return { target: r.target, rule: r.rule, principal: r.principal.name };
}

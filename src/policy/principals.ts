// Which principal rule a verified identity falls under, and which targets that rule may reach.
// Rules are tried in order and the first match wins. Within a rule every match field given must
// hold (AND); a list field holds when any one of its values is present. Fail closed: a rule with
// no match fields, or an empty list, matches nobody, and `groups` never match a token whose
// groups claim was replaced by an overage pointer (the list is incomplete).

import type { PrincipalMatch, PrincipalRule } from '../config/types.js';
import type { Principal, VerifiedIdentity } from '../identity/types.js';

/** Target name that stands for every target. */
export const ALL_TARGETS = '*';

function anyOf(wanted: readonly string[], held: readonly string[]): boolean {
  return wanted.some((value) => held.includes(value));
}

export function ruleMatches(identity: VerifiedIdentity, match: PrincipalMatch): boolean {
  const { issuer, subject, roles, groups } = match;
  if (issuer === undefined && subject === undefined && roles === undefined && groups === undefined) return false;
  if (issuer !== undefined && identity.issuerName !== issuer) return false;
  if (subject !== undefined && identity.subject !== subject) return false;
  if (roles !== undefined && !anyOf(roles, identity.roles)) return false;
  if (groups !== undefined && (identity.groupsOverage || !anyOf(groups, identity.groups))) return false;
  return true;
}

export function matchPrincipal(
  identity: VerifiedIdentity,
  rules: readonly PrincipalRule[],
): { principal: Principal; rule: PrincipalRule } | undefined {
  const rule = rules.find((r) => ruleMatches(identity, r.match));
  if (!rule) return undefined;
  return { principal: { ...identity, name: rule.name }, rule };
}

export function mayReach(rule: PrincipalRule, targetName: string): boolean {
  return rule.targets.some((t) => t === ALL_TARGETS || t === targetName);
}

/** A token (or ticket) whose expiry has already passed when the login is decided: accepted by
 *  the verifier's clock_skew allowance, but a session under an `on_token_expiry: end` rule would
 *  be ended at once, so the login is refused as `token expired` instead. */
export function tokenExpiredAtLogin(expiresAt: Date | undefined, now = Date.now()): boolean {
  return expiresAt !== undefined && expiresAt.getTime() <= now;
}

/** The longest delay setTimeout honours (2^31-1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * How long a session's expiry timer waits: until the token expires, or, when that is further off
 * than setTimeout can wait, one step of MAX_TIMER_MS after which the timer is set again (`final`
 * false). Firing at the cap instead would end a 30-day token's session after 24.8 days.
 */
export function expiryWait(expiresAt: Date, now = Date.now()): { delayMs: number; final: boolean } {
  const ms = expiresAt.getTime() - now;
  return ms > MAX_TIMER_MS ? { delayMs: MAX_TIMER_MS, final: false } : { delayMs: Math.max(0, ms), final: true };
}

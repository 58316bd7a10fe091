// Principal rules: first match wins, fields AND, lists match on any element, groups fail closed
// on an overage, and target reach.
import { describe, expect, it } from 'vitest';
import type { PrincipalMatch, PrincipalRule } from '../../src/config/types.js';
import type { VerifiedIdentity } from '../../src/identity/types.js';
import { matchPrincipal, mayReach, ruleMatches } from '../../src/policy/principals.js';

const agent: VerifiedIdentity = {
  issuerName: 'entra',
  issuer: 'https://login.microsoftonline.com/t/v2.0',
  subject: 'app-1',
  subjectClaim: 'azp',
  roles: ['Reports.Read', 'Orders.Read'],
  groups: ['g-analysts'],
  groupsOverage: false,
  audience: 'https://ossrdbms-aad.database.windows.net',
};

function rule(name: string, match: PrincipalMatch, targets: string[] = ['shop']): PrincipalRule {
  return { name, match, targets, onTokenExpiry: 'end' };
}

describe('ruleMatches', () => {
  it('matches each field on its own', () => {
    expect(ruleMatches(agent, { issuer: 'entra' })).toBe(true);
    expect(ruleMatches(agent, { subject: 'app-1' })).toBe(true);
    expect(ruleMatches(agent, { roles: ['Admin', 'Orders.Read'] })).toBe(true);
    expect(ruleMatches(agent, { groups: ['g-other', 'g-analysts'] })).toBe(true);
  });

  it('refuses each field on its own', () => {
    expect(ruleMatches(agent, { issuer: 'dev' })).toBe(false);
    expect(ruleMatches(agent, { subject: 'app-2' })).toBe(false);
    expect(ruleMatches(agent, { subject: 'APP-1' })).toBe(false);
    expect(ruleMatches(agent, { roles: ['Admin'] })).toBe(false);
    expect(ruleMatches(agent, { groups: ['g-other'] })).toBe(false);
  });

  it('ANDs the fields of one rule', () => {
    expect(ruleMatches(agent, { issuer: 'entra', subject: 'app-1', roles: ['Reports.Read'] })).toBe(true);
    expect(ruleMatches(agent, { issuer: 'entra', subject: 'app-1', roles: ['Admin'] })).toBe(false);
    expect(ruleMatches(agent, { issuer: 'dev', subject: 'app-1' })).toBe(false);
    expect(ruleMatches(agent, { roles: ['Reports.Read'], groups: ['g-other'] })).toBe(false);
  });

  it('matches nobody with no fields or an empty list (fail closed)', () => {
    expect(ruleMatches(agent, {})).toBe(false);
    expect(ruleMatches(agent, { roles: [] })).toBe(false);
    expect(ruleMatches(agent, { issuer: 'entra', groups: [] })).toBe(false);
  });

  it('never matches groups when the token has a groups overage', () => {
    const overage = { ...agent, groupsOverage: true };
    expect(ruleMatches(overage, { groups: ['g-analysts'] })).toBe(false);
    expect(ruleMatches(overage, { issuer: 'entra', groups: ['g-analysts'] })).toBe(false);
    // Rules that do not depend on groups are unaffected.
    expect(ruleMatches(overage, { roles: ['Reports.Read'] })).toBe(true);
  });
});

describe('matchPrincipal', () => {
  const rules = [
    rule('admin', { roles: ['Admin'] }, ['*']),
    rule('analyst-by-group', { issuer: 'entra', groups: ['g-analysts'] }, ['shop', 'warehouse']),
    rule('reader', { roles: ['Reports.Read'] }, ['shop']),
  ];

  it('takes the first matching rule and names the principal after it', () => {
    const hit = matchPrincipal(agent, rules);
    expect(hit?.rule).toBe(rules[1]);
    expect(hit?.principal).toEqual({ ...agent, name: 'analyst-by-group' });
  });

  it('falls through to a later rule when a group rule cannot apply', () => {
    const hit = matchPrincipal({ ...agent, groupsOverage: true }, rules);
    expect(hit?.rule.name).toBe('reader');
  });

  it('returns undefined when nothing matches', () => {
    expect(matchPrincipal({ ...agent, roles: [], groups: [] }, rules)).toBeUndefined();
    expect(matchPrincipal(agent, [])).toBeUndefined();
  });
});

describe('mayReach', () => {
  it('reaches listed targets and every target with "*"', () => {
    expect(mayReach(rule('r', { subject: 'x' }, ['shop', 'warehouse']), 'warehouse')).toBe(true);
    expect(mayReach(rule('r', { subject: 'x' }, ['shop']), 'warehouse')).toBe(false);
    expect(mayReach(rule('r', { subject: 'x' }, ['shop']), 'Shop')).toBe(false);
    expect(mayReach(rule('r', { subject: 'x' }, ['*']), 'anything')).toBe(true);
    expect(mayReach(rule('r', { subject: 'x' }, []), 'shop')).toBe(false);
  });
});

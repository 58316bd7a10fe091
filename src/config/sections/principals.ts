// `principals:` — which identities may reach which targets. Each rule matches validated tokens
// by issuer, subject, app roles or groups (all given fields must match) and names the principal
// in logs and transcripts.
//
//   principals:
//     - name: reporting-agent
//       match: { issuer: azure, roles: [Reports.Read] }
//       targets: [shop]
import type { PrincipalMatch, PrincipalRule } from '../types.js';
import { didYouMean } from '../suggest.js';
import type { Field } from '../validate.js';
import { DEV_ISSUER_NAME } from './identity.js';
import { name } from './checks.js';

export const ALL_TARGETS = '*';
export const TOKEN_EXPIRY = ['end', 'continue'] as const;

/** What names may be referred to; an absent set (its section could not be read) is not checked. */
export interface PrincipalRefs {
  /** Target names written under `targets` (valid or not). */
  targets?: ReadonlySet<string>;
  /** Issuer names written under identity.issuers, plus "dev" when the dev issuer is enabled. */
  issuers?: ReadonlySet<string>;
}

export function readPrincipals(field: Field, refs: PrincipalRefs): PrincipalRule[] | undefined {
  const names = new Map<string, number>(); // name → line
  return field.list((f) => readPrincipal(f, refs, names)) ?? (field.present ? undefined : []);
}

function readPrincipal(field: Field, refs: PrincipalRefs, names: Map<string, number>): PrincipalRule | undefined {
  const s = field.section(['name', 'match', 'targets', 'on_token_expiry']);
  if (!s) return undefined;
  const nameField = s.need('name');
  const ruleName = nameField.string({ check: name });
  if (ruleName !== undefined) {
    const first = names.get(ruleName);
    if (first !== undefined) nameField.fail(`duplicate principal name "${ruleName}" (first used at line ${first})`);
    else names.set(ruleName, nameField.line);
  }
  const match = readPrincipalMatch(s.need('match'), refs);
  const targets = s.need('targets').list((f) => targetRef(f, refs), { nonEmpty: true });
  const onTokenExpiry = s.get('on_token_expiry').oneOf(TOKEN_EXPIRY) ?? 'end';
  if (ruleName === undefined || match === undefined || targets === undefined) return undefined;
  return { name: ruleName, match, targets, onTokenExpiry };
}

/** A `match:` map (issuer, subject, roles, groups), shared by principals, approvers and auditors. */
export function readPrincipalMatch(field: Field, refs: Pick<PrincipalRefs, 'issuers'>): PrincipalMatch | undefined {
  if (!field.present) return undefined;
  const s = field.section(['issuer', 'subject', 'roles', 'groups']);
  if (!s) return undefined;
  const read = {
    issuer: issuerRef(s.get('issuer'), refs),
    subject: s.get('subject').string(),
    roles: s.get('roles').strings({ nonEmpty: true }),
    groups: s.get('groups').strings({ nonEmpty: true }),
  };
  const written = (['issuer', 'subject', 'roles', 'groups'] as const).filter((key) => s.has(key));
  // An empty match would admit every valid token from every issuer (or make it an approver, an auditor).
  if (written.length === 0) return s.fail('must name at least one of issuer, subject, roles, groups');
  // A field that is written but invalid (already reported) must not silently widen the match.
  if (written.some((key) => read[key] === undefined)) return undefined;
  const match: PrincipalMatch = {};
  if (read.issuer !== undefined) match.issuer = read.issuer;
  if (read.subject !== undefined) match.subject = read.subject;
  if (read.roles !== undefined) match.roles = read.roles;
  if (read.groups !== undefined) match.groups = read.groups;
  return match;
}

function issuerRef(field: Field, refs: Pick<PrincipalRefs, 'issuers'>): string | undefined {
  const value = field.string();
  if (value === undefined || refs.issuers === undefined || refs.issuers.has(value)) return value;
  if (value === DEV_ISSUER_NAME) return field.fail('refers to the development issuer, which is not enabled (set identity.dev_issuer.enabled: true)');
  const known = [...refs.issuers];
  const list = known.length === 0 ? 'none are configured' : `known issuers: ${known.join(', ')}`;
  return field.fail(`unknown issuer "${value}"${didYouMean(value, known)}; ${list}`);
}

function targetRef(field: Field, refs: PrincipalRefs): string | undefined {
  const value = field.string();
  if (value === undefined || value === ALL_TARGETS || refs.targets === undefined || refs.targets.has(value)) return value;
  const known = [...refs.targets];
  const list = known.length === 0 ? 'none are configured' : `known targets: ${known.join(', ')}`;
  return field.fail(`unknown target "${value}"${didYouMean(value, known)}; ${list} (or "*" for all)`);
}

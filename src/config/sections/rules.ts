// `rules:` — which statements are allowed, denied, or held for a human's approval. Rules are
// tried in order for each statement; the first whose scope and match hold decides. A statement
// no rule matches is allowed; a text the parser cannot understand is held unless a rule denies it.
//
//   rules:
//     - name: ddl
//       match: { kinds: [drop, truncate, alter, create] }
//       action: hold
//     - name: no-privilege-changes
//       match: { flags: [privilege_change] }
//       action: deny
//       message: privilege changes go through the DBA team
import { ANY, RULE_FLAGS, type RuleFlag, type StatementRule, type StatementRuleMatch } from '../../approvals/config.js';
import type { StatementAction } from '../../approvals/types.js';
import { STATEMENT_KINDS, type RelationAccess, type StatementKind } from '../../sql/types.js';
import { didYouMean } from '../suggest.js';
import type { Field } from '../validate.js';
import { name } from './checks.js';

export const RULE_ACTIONS: readonly StatementAction[] = ['allow', 'deny', 'hold'];
export const RELATION_ACCESS: readonly RelationAccess[] = ['read', 'insert', 'update', 'delete', 'truncate', 'ddl', 'lock', 'copy'];
const RULE_FLAG_NAMES = Object.keys(RULE_FLAGS) as RuleFlag[];
const MATCH_KEYS = ['unparseable', 'all', 'kinds', 'flags', 'dangerous_functions', 'functions', 'relations', 'access', 'read_only'] as const;
const RULE_KEYS = ['name', 'match', 'principals', 'roles', 'groups', 'targets', 'action', 'message'] as const;
const MAX_MESSAGE = 500;

/** A function name, optionally schema-qualified, with `*` wildcards: `dblink*`, `pg_catalog.set_config`. */
const FUNCTION_PATTERN = /^[A-Za-z_*][A-Za-z0-9_$*]*(?:\.[A-Za-z_*][A-Za-z0-9_$*]*)?$/;
/** One to three name parts with `*` wildcards: `orders`, `public.orders`, `payroll.*`, `shop.public.orders`. */
const RELATION_PATTERN = /^(?:[A-Za-z_*][A-Za-z0-9_$*]*|"[^"]+")(?:\.(?:[A-Za-z_*][A-Za-z0-9_$*]*|"[^"]+")){0,2}$/;

export interface RuleRefs {
  /** Target names written under `targets` (absent: not checked). */
  targets?: ReadonlySet<string>;
  /** Principal rule names (absent: not checked). */
  principals?: ReadonlySet<string>;
}

export interface RulesRead {
  rules: StatementRule[];
  /** Every rule name written, valid or not (approvers refer to them). */
  names: ReadonlySet<string>;
}

export function readRules(field: Field, refs: RuleRefs): RulesRead | undefined {
  const names = new Map<string, number>(); // name → line
  const rules = field.list((f) => readRule(f, refs, names));
  if (rules === undefined) return field.present ? undefined : { rules: [], names: new Set() };
  return { rules, names: new Set(names.keys()) };
}

function readRule(field: Field, refs: RuleRefs, names: Map<string, number>): StatementRule | undefined {
  const s = field.section(RULE_KEYS);
  if (!s) return undefined;
  const nameField = s.need('name');
  const ruleName = nameField.string({ check: name });
  if (ruleName !== undefined) {
    const first = names.get(ruleName);
    if (first !== undefined) nameField.fail(`duplicate rule name "${ruleName}" (first used at line ${first})`);
    else names.set(ruleName, nameField.line);
  }
  const actionField = s.need('action');
  const action = actionField.oneOf(RULE_ACTIONS);
  const match = readRuleMatch(s.need('match'));
  if (match?.unparseable && action === 'allow') {
    actionField.fail('cannot be allow for unparseable statements: what the parser cannot read is never allowed (use hold or deny)');
    return undefined;
  }
  const principals = refList(s.get('principals'), refs.principals, 'principal');
  const roles = s.get('roles').strings({ nonEmpty: true });
  const groups = s.get('groups').strings({ nonEmpty: true });
  const targets = refList(s.get('targets'), refs.targets, 'target');
  const message = s.get('message').string({ check: (v) => (v.length > MAX_MESSAGE ? `must be at most ${MAX_MESSAGE} characters` : undefined) });
  const scope = { principals, roles, groups, targets };
  // A scope key that is written but invalid must not silently widen the rule to everyone.
  const scopeBroken = (Object.keys(scope) as Array<keyof typeof scope>).some((k) => s.has(k) && scope[k] === undefined);
  if (ruleName === undefined || action === undefined || match === undefined || scopeBroken) return undefined;
  if (s.has('message') && message === undefined) return undefined;
  const rule: StatementRule = { name: ruleName, match, action };
  if (principals !== undefined) rule.principals = principals;
  if (roles !== undefined) rule.roles = roles;
  if (groups !== undefined) rule.groups = groups;
  if (targets !== undefined) rule.targets = targets;
  if (message !== undefined) rule.message = message;
  return rule;
}

function refList(field: Field, known: ReadonlySet<string> | undefined, what: string): string[] | undefined {
  return field.list((f) => {
    const value = f.string();
    if (value === undefined || value === ANY || known === undefined || known.has(value)) return value;
    const list = known.size === 0 ? 'none are configured' : `known ${what}s: ${[...known].join(', ')}`;
    return f.fail(`unknown ${what} "${value}"${didYouMean(value, [...known])}; ${list} (or "*" for all)`);
  }, { nonEmpty: true });
}

export function readRuleMatch(field: Field): StatementRuleMatch | undefined {
  if (!field.present) return undefined;
  const s = field.section(MATCH_KEYS);
  if (!s) return undefined;
  const written = MATCH_KEYS.filter((k) => s.has(k));
  if (written.length === 0) {
    return s.fail(`must name at least one of ${MATCH_KEYS.join(', ')} (write all: true to match every statement)`);
  }
  for (const alone of ['unparseable', 'all'] as const) {
    if (s.has(alone) && written.length > 1) {
      return s.fail(`${alone} stands alone: write the other keys (${written.filter((k) => k !== alone).join(', ')}) in a separate rule`);
    }
  }
  const match: StatementRuleMatch = {};
  let broken = false;
  const keep = <T>(value: T | undefined, key: (typeof MATCH_KEYS)[number]): T | undefined => {
    if (value === undefined && s.has(key)) broken = true;
    return value;
  };
  if (s.has('unparseable')) {
    if (trueOnly(s.get('unparseable'))) match.unparseable = true;
    else broken = true;
  }
  if (s.has('all')) {
    if (trueOnly(s.get('all'))) match.all = true;
    else broken = true;
  }
  const kinds = keep(s.get('kinds').list((f) => f.oneOf<StatementKind>(STATEMENT_KINDS), { nonEmpty: true }), 'kinds');
  if (kinds) match.kinds = kinds;
  const flags = keep(s.get('flags').list((f) => f.oneOf(RULE_FLAG_NAMES), { nonEmpty: true }), 'flags');
  if (flags) match.flags = flags;
  const dfField = s.get('dangerous_functions');
  if (dfField.present) {
    const df = dfField.size !== undefined ? patterns(dfField, FUNCTION_PATTERN, 'a function name') : trueOnly(dfField) ? true : undefined;
    if (df === undefined) broken = true;
    else match.dangerousFunctions = df;
  }
  const functions = keep(patterns(s.get('functions'), FUNCTION_PATTERN, 'a function name'), 'functions');
  if (functions) match.functions = functions;
  const relations = keep(patterns(s.get('relations'), RELATION_PATTERN, 'a relation name'), 'relations');
  if (relations) match.relations = relations;
  const access = keep(s.get('access').list((f) => f.oneOf(RELATION_ACCESS), { nonEmpty: true }), 'access');
  if (access) match.access = access;
  const readOnly = keep(s.get('read_only').boolean(), 'read_only');
  if (readOnly !== undefined) match.readOnly = readOnly;
  return broken ? undefined : match;
}

/** `true`, the only value that makes sense for a switch that selects statements. */
function trueOnly(field: Field): boolean {
  const value = field.boolean();
  if (value === false) field.fail('must be true (leave the key out otherwise)');
  return value === true;
}

function patterns(field: Field, pattern: RegExp, what: string): string[] | undefined {
  return field.strings({
    nonEmpty: true,
    check: (v) => (pattern.test(v) ? undefined : `must be ${what}, optionally qualified, with "*" as a wildcard`),
  });
}

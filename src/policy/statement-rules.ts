// Statement rules: for each statement the first rule (in order) whose scope and match hold decides
// allow, deny or hold; no matching rule allows. A text of several statements takes the strictest
// verdict (deny > hold > allow). A text the parser could not understand is held unless a rule
// denies it: it is never allowed.
//
// Restrictive rules (deny, hold) and allow rules read their match lists differently, so that an
// uncertainty never loosens policy:
//   - deny/hold match when ANY listed thing is present (a flag, a function, a relation);
//     allow matches only when EVERYTHING of that sort in the statement is listed.
//   - An unqualified relation (`orders`, schema decided by search_path at run time) matches a
//     qualified pattern (`payroll.orders`) for deny/hold, never for allow.
//   - A token whose groups were replaced by an overage pointer is in every listed group for
//     deny/hold rules and in none for allow rules.
//
// evaluate() is on the hot path. Rules are compiled once; the rules that apply to a principal and
// target are computed once per principal object; verdicts are cached per (classification object,
// rule set), and the classifier hands out the same frozen classification for the same text.
import { ANY, RULE_FLAGS, type RuleFlag, type StatementRule } from '../approvals/config.js';
import type { PolicyContext, StatementPolicy, StatementVerdict } from '../approvals/types.js';
import type { Principal } from '../identity/types.js';
import { isKnownBuiltin } from '../sql/functions.js';
import type { Classification, RelationRef, StatementFlags, StatementInfo } from '../sql/types.js';

/** Rule name reported when no rule speaks about an unparseable text (it is held). */
export const UNPARSEABLE_RULE = 'unparseable';

const STRICTNESS = { allow: 0, hold: 1, deny: 2 } as const;
/** Distinct (target, principal name, roles, groups) rule sets kept. */
const MAX_SHARED_RULE_SETS = 4096;

const FLAG_TEXT: Record<keyof typeof RULE_FLAGS, (st: StatementInfo) => string> = {
  no_where: (st) => `${st.commandTag} without a WHERE clause`,
  data_modifying_cte: () => 'a data-modifying WITH clause',
  privilege_change: (st) => `a privilege change (${st.commandTag})`,
  session_escape: (st) => `a change of session identity (${st.commandTag})`,
  alter_system: () => 'ALTER SYSTEM',
  do_block: () => 'a DO block',
  copy_program: () => 'COPY with PROGRAM (a shell command on the database server)',
  copy_to_file: () => 'COPY to a file on the database server',
  copy_from_file: () => 'COPY from a file on the database server',
};

const FLAG_NAMES = Object.keys(RULE_FLAGS) as RuleFlag[];

/** What a condition says when it holds (for the reason shown to agents and approvers). */
type Condition = (st: StatementInfo) => string | undefined;

interface CompiledRule {
  readonly rule: StatementRule;
  readonly restrictive: boolean;
  /** Applies to unparseable texts. */
  readonly unparseable: boolean;
  /** undefined: never matches a parsed statement (an `unparseable` rule). */
  readonly matches: ((st: StatementInfo) => string | undefined) | undefined;
  applies(principal: Principal, target: string): boolean;
}

/** The rules that apply to one principal on one target, in order. */
interface RuleSet {
  readonly rules: readonly CompiledRule[];
}

// ---- name patterns ------------------------------------------------------------------------

function globPart(part: string): (name: string) => boolean {
  if (part.length > 1 && part.startsWith('"') && part.endsWith('"')) {
    const exact = part.slice(1, -1);
    return (name) => name === exact;
  }
  const lower = part.toLowerCase();
  if (lower === '*') return () => true;
  if (!lower.includes('*')) return (name) => name.toLowerCase() === lower;
  const re = new RegExp(`^${lower.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (name) => re.test(name.toLowerCase());
}

/** Splits `a."B.c".d` on the dots outside quotes. */
function splitName(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

type FunctionMatcher = (written: string) => boolean;

/** `name` matches the function's own name whatever schema is written; `schema.name` needs both. */
function functionMatcher(patterns: readonly string[]): FunctionMatcher {
  const compiled = patterns.map((p) => splitName(p).map(globPart));
  return (written) => {
    const parts = written.split('.');
    const own = parts[parts.length - 1] ?? '';
    return compiled.some((pat) => {
      if (pat.length === 1) return pat[0]!(own);
      const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined;
      // Unqualified call of a qualified pattern: search_path decides which function runs.
      return pat[1]!(own) && (schema === undefined || pat[0]!(schema));
    });
  };
}

type RelationMatcher = (ref: RelationRef, assumeUnknown: boolean) => boolean;

function relationMatcher(patterns: readonly string[]): RelationMatcher {
  const compiled = patterns.map((p) => splitName(p).map(globPart).reverse()); // [name, schema?, catalog?]
  return (ref, assumeUnknown) => {
    const written = [ref.name, ref.schema, ref.catalog];
    return compiled.some((pat) => pat.every((part, i) => {
      const value = written[i];
      return value === undefined ? assumeUnknown : part(value);
    }));
  };
}

// ---- conditions ---------------------------------------------------------------------------

function setFlags(st: StatementInfo): RuleFlag[] {
  return FLAG_NAMES.filter((f) => st.flags[RULE_FLAGS[f] as keyof StatementFlags] === true);
}

function describeRelation(ref: RelationRef): string {
  return [ref.catalog, ref.schema, ref.name].filter((p) => p !== undefined).join('.');
}

function conditions(rule: StatementRule, restrictive: boolean): Condition[] {
  const m = rule.match;
  const out: Condition[] = [];
  if (m.all) out.push((st) => st.commandTag);
  if (m.kinds) {
    const kinds = new Set(m.kinds);
    out.push((st) => (kinds.has(st.kind) ? st.commandTag : undefined));
  }
  if (m.flags) {
    const listed = new Set(m.flags);
    out.push((st) => {
      const present = setFlags(st);
      if (restrictive) {
        const hit = present.find((f) => listed.has(f));
        return hit === undefined ? undefined : FLAG_TEXT[hit](st);
      }
      return present.length > 0 && present.every((f) => listed.has(f)) ? present.map((f) => FLAG_TEXT[f](st)).join(', ') : undefined;
    });
  }
  if (m.dangerousFunctions !== undefined) {
    const matcher = m.dangerousFunctions === true ? () => true : functionMatcher(m.dangerousFunctions);
    out.push((st) => {
      const hits = st.dangerousFunctions.filter(matcher);
      const ok = restrictive ? hits.length > 0 : hits.length > 0 && hits.length === st.dangerousFunctions.length;
      return ok ? `calls ${hits.join(', ')}` : undefined;
    });
  }
  if (m.functions) {
    const matcher = functionMatcher(m.functions);
    out.push((st) => {
      if (restrictive) {
        const hits = st.functions.filter(matcher);
        return hits.length > 0 ? `calls ${hits.join(', ')}` : undefined;
      }
      const opaque = st.functions.filter((f) => !isKnownBuiltin(f.split('.')));
      return opaque.length > 0 && opaque.every(matcher) ? `calls ${opaque.join(', ')}` : undefined;
    });
  }
  if (m.relations || m.access) {
    const matcher = m.relations ? relationMatcher(m.relations) : () => true;
    const access = m.access ? new Set(m.access) : undefined;
    const fits = (ref: RelationRef): boolean => (access === undefined || access.has(ref.access)) && matcher(ref, restrictive);
    out.push((st) => {
      if (restrictive) {
        const hits = st.relations.filter(fits);
        return hits.length > 0 ? `touches ${[...new Set(hits.map((r) => `${describeRelation(r)} (${r.access})`))].join(', ')}` : undefined;
      }
      return st.relations.length > 0 && st.relations.every(fits) ? `touches only ${[...new Set(st.relations.map(describeRelation))].join(', ')}` : undefined;
    });
  }
  if (m.readOnly !== undefined) {
    const want = m.readOnly;
    out.push((st) => (st.readOnly === want ? (want ? 'read-only' : 'may write') : undefined));
  }
  return out;
}

function anyOf(wanted: readonly string[] | undefined, held: readonly string[]): boolean {
  return wanted === undefined || wanted.some((w) => w === ANY || held.includes(w));
}

export function compileRule(rule: StatementRule): CompiledRule {
  const restrictive = rule.action !== 'allow';
  const conds = rule.match.unparseable ? undefined : conditions(rule, restrictive);
  const matches = conds === undefined
    ? undefined
    : (st: StatementInfo): string | undefined => {
        const whys: string[] = [];
        for (const c of conds) {
          const why = c(st);
          if (why === undefined) return undefined;
          whys.push(why);
        }
        return whys.join('; ');
      };
  return {
    rule,
    restrictive,
    unparseable: rule.match.unparseable === true || rule.match.all === true,
    matches,
    applies(principal, target) {
      if (!anyOf(rule.targets, [target])) return false;
      if (!anyOf(rule.principals, [principal.name])) return false;
      if (!anyOf(rule.roles, principal.roles)) return false;
      if (rule.groups !== undefined) {
        // An overage token's groups are unknown: restrictive rules assume membership, allow rules do not.
        if (principal.groupsOverage) return restrictive;
        if (!anyOf(rule.groups, principal.groups)) return false;
      }
      return true;
    },
  };
}

// ---- the policy ---------------------------------------------------------------------------

export interface StatementPolicyOptions {
  /** Distinct (principal, target) rule sets cached per principal object, at most. Default 64. */
  targetsPerPrincipal?: number;
}

export class RuleStatementPolicy implements StatementPolicy {
  private readonly compiled: readonly CompiledRule[];
  private readonly ruleSets = new WeakMap<Principal, Map<string, RuleSet>>();
  private readonly verdicts = new WeakMap<Classification, WeakMap<RuleSet, StatementVerdict>>();
  private readonly maxTargets: number;
  private readonly byScope = new Map<string, RuleSet>();

  constructor(rules: readonly StatementRule[], opts: StatementPolicyOptions = {}) {
    this.compiled = rules.map(compileRule);
    this.maxTargets = opts.targetsPerPrincipal ?? 64;
  }

  /** The rule names, in order. */
  get ruleNames(): string[] {
    return this.compiled.map((c) => c.rule.name);
  }

  evaluate(ctx: PolicyContext, classification: Classification): StatementVerdict {
    const set = this.ruleSetFor(ctx);
    let perSet = this.verdicts.get(classification);
    const hit = perSet?.get(set);
    if (hit) return hit;
    const verdict = decide(set, classification);
    if (!perSet) {
      perSet = new WeakMap();
      this.verdicts.set(classification, perSet);
    }
    perSet.set(set, verdict);
    return verdict;
  }

  /**
   * Always false: a text the parser cannot understand is held or denied for every principal, so
   * evaluate() must see every statement.
   */
  permitsEverything(_ctx: PolicyContext): boolean {
    return false;
  }

  private ruleSetFor(ctx: PolicyContext): RuleSet {
    let byTarget = this.ruleSets.get(ctx.principal);
    if (!byTarget) {
      byTarget = new Map();
      this.ruleSets.set(ctx.principal, byTarget);
    }
    let set = byTarget.get(ctx.target);
    if (!set) {
      set = this.sharedRuleSet(ctx);
      if (byTarget.size >= this.maxTargets) byTarget.clear();
      byTarget.set(ctx.target, set);
    }
    return set;
  }

  /** Equal principals (another session of the same agent) share one rule set, and so its verdicts. */
  private sharedRuleSet(ctx: PolicyContext): RuleSet {
    const p = ctx.principal;
    const key = JSON.stringify([ctx.target, p.name, p.roles, p.groupsOverage ? null : p.groups]);
    let set = this.byScope.get(key);
    if (!set) {
      set = { rules: this.compiled.filter((c) => c.applies(p, ctx.target)) };
      if (this.byScope.size >= MAX_SHARED_RULE_SETS) this.byScope.clear();
      this.byScope.set(key, set);
    }
    return set;
  }
}

function decide(set: RuleSet, classification: Classification): StatementVerdict {
  if (!classification.ok) {
    const rule = set.rules.find((c) => c.unparseable);
    const why = `warden could not parse the statement (${classification.error})`;
    if (rule?.rule.action === 'deny') return { action: 'deny', rule: rule.rule.name, reason: rule.rule.message ?? why };
    // Fail closed: hold, whatever an allow rule says.
    if (rule?.rule.action === 'hold') return { action: 'hold', rule: rule.rule.name, reason: rule.rule.message ?? why };
    return { action: 'hold', rule: rule?.rule.name ?? UNPARSEABLE_RULE, reason: why };
  }
  const { statements } = classification;
  let best: StatementVerdict = { action: 'allow' };
  statements.forEach((st, index) => {
    const verdict = verdictFor(set, st, statements.length > 1 ? `statement ${index + 1} of ${statements.length}: ` : '');
    const stricter = STRICTNESS[verdict.action] - STRICTNESS[best.action];
    // Ties keep the first statement's verdict, but a named allow rule beats the default allow.
    if (stricter > 0 || (stricter === 0 && best.rule === undefined && verdict.rule !== undefined)) best = verdict;
  });
  return best;
}

function verdictFor(set: RuleSet, st: StatementInfo, prefix: string): StatementVerdict {
  for (const c of set.rules) {
    const why = c.matches?.(st);
    if (why === undefined) continue;
    const { name, action, message } = c.rule;
    if (action === 'allow') return { action, rule: name };
    const what = `${prefix}${why}`;
    const reason = message !== undefined ? `${message} (${what})` : action === 'deny' ? `${what}: not allowed by rule "${name}"` : `${what}: needs approval (rule "${name}")`;
    return { action, rule: name, reason };
  }
  return { action: 'allow' };
}

export function createStatementPolicy(rules: readonly StatementRule[], opts: StatementPolicyOptions = {}): RuleStatementPolicy {
  return new RuleStatementPolicy(rules, opts);
}

// From "which rules cover this value" to "what is done to it", with the reason in words.
//
//   - not traceable (unknown statement, unresolved lineage): fully redacted under the first
//     column rule, as if derived from every protected column;
//   - one rule, the value itself (possibly cast): the rule's strategy;
//   - one rule, a value computed from it: the strategy only when it cannot leak through the
//     computation (null, redact) — a partial mask of reverse(ssn) would show the part of the SSN
//     the rule hides, a hash of substr(name, 1, 1) beside one of a chosen letter tells the first
//     letter — else fully redacted;
//   - a whole row, or several rules: fully redacted under the first of them.
import type { MaskStrategyConfig } from '../config/sections/masking.js';
import type { Covered } from './coverage.js';
import type { CompiledRule, PrincipalRules } from './rules.js';
import type { MaskAction } from './value-masker.js';

/**
 * Strategies whose output reveals nothing of any input, whatever was computed from it. Not hash:
 * a hash of `substr(full_name, 1, 1)` next to the hash of `left(full_name, 0) || 'A'` (computed
 * from the column too, so hashed as well) tells the first letter, and so on letter by letter.
 */
const DERIVATION_SAFE: ReadonlySet<MaskStrategyConfig['kind']> = new Set(['null', 'redact']);

export interface Decision {
  action: MaskAction;
  because: string;
  /** The one table the covered columns belong to (as coverage names it, schema-qualified where known), if one. */
  table?: string;
}

/** The table of "schema.table.column" or "table.column": everything before the last dot. */
function tableOf(column: string): string | undefined {
  const dot = column.lastIndexOf('.');
  return dot > 0 ? column.slice(0, dot) : undefined;
}

/** The single table every covered column of every covering rule comes from, if there is one. */
function singleTable(c: Covered): string | undefined {
  let table: string | undefined;
  for (const cols of c.rules.values()) {
    for (const col of cols) {
      const t = tableOf(col);
      if (t === undefined || (table !== undefined && t !== table)) return undefined;
      table = t;
    }
  }
  return table;
}

function list(cols: Iterable<string>): string {
  const all = [...cols].sort();
  return all.length <= 3 ? all.join(', ') : `${all.slice(0, 3).join(', ')} and ${all.length - 3} more`;
}

function action(rule: CompiledRule, redactOnly: boolean): MaskAction {
  return { rule: rule.name, strategy: rule.strategy, redactOnly, redactText: rule.redactText, binary: rule.binary };
}

export function decide(c: Covered, rules: PrincipalRules): Decision | undefined {
  if (c.unresolved.length > 0) {
    const first = rules.first;
    if (!first) return undefined;
    return { action: action(first, true), because: `cannot be traced (${c.unresolved[0]}): treated as derived from every protected column` };
  }
  if (c.rules.size === 0) return undefined;
  const d = decideCovered(c, rules);
  const table = singleTable(c);
  return table === undefined ? d : { ...d, table };
}

function decideCovered(c: Covered, rules: PrincipalRules): Decision {
  const covering = [...c.rules.keys()].sort((a, b) => a.order - b.order);
  const rule = covering[0] as CompiledRule;
  const cols = list(c.rules.get(rule) ?? []);
  const how = c.transforms.size > 0 ? ` via ${[...c.transforms].sort().join(', ')}` : '';
  if (covering.length > 1) {
    const all = covering.map((r) => `${list(c.rules.get(r) ?? [])} (rule ${r.name})`).join(' and ');
    return { action: action(rule, true), because: `derived from ${all}${how}: several rules, fully redacted` };
  }
  if (c.wholeRow) return { action: action(rule, true), because: `whole row holding ${cols}: fully redacted` };
  if (c.derived) {
    const safe = DERIVATION_SAFE.has(rule.strategy.kind);
    return { action: action(rule, !safe), because: `derived from ${cols}${how}${safe ? '' : `: ${rule.strategy.kind} cannot follow the computation, fully redacted`}` };
  }
  return { action: action(rule, false), because: `${cols}${c.transforms.size > 0 ? how : ''}` };
}

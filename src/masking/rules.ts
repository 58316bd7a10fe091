// Masking rules compiled from the configuration, and the subset that applies to one principal.
//
// Who a rule is about (fail closed on groups): `applies_to` absent means everyone; present, it
// matches a listed principal name, app role or group — and a token with a groups overage (its
// group list is incomplete) counts as matching any listed group, so the rule still applies.
// `exempt` matches the same way except that groups never match under an overage, so an
// incomplete group list never lifts a mask.
import type { MaskAudience, MaskingConfig, MaskRuleConfig, MaskStrategyConfig, VerdictSetting } from '../config/sections/masking.js';
import { MASKING_DEFAULTS } from '../config/sections/masking.js';
import type { Principal } from '../identity/types.js';
import { BUILTIN, CLASSIFIER_GROUPS, customClassifier, type BuiltinClassifier, type Classifier } from './classifiers.js';
import { compileColumnNamePattern, parseColumnSelector, selectorMatches, type ColumnSelector } from './selectors.js';

export class CompiledRule {
  readonly name: string;
  readonly strategy: MaskStrategyConfig;
  readonly binary: 'null' | 'fail';
  readonly inference: VerdictSetting;
  readonly laundering: VerdictSetting;
  /** Text of a full redaction under this rule. */
  readonly redactText: string;
  readonly selectors: readonly ColumnSelector[];
  readonly namePatterns: readonly RegExp[];
  readonly classifiers: readonly Classifier[];
  /** Position in the configuration: the first covering rule wins. */
  readonly order: number;

  constructor(
    readonly config: MaskRuleConfig,
    order: number,
    custom: ReadonlyMap<string, Classifier>,
  ) {
    this.name = config.name;
    this.strategy = config.strategy;
    this.binary = config.binary;
    this.inference = config.inference;
    this.laundering = config.laundering;
    this.redactText = config.strategy.kind === 'redact' ? config.strategy.text : MASKING_DEFAULTS.redactText;
    this.selectors = config.columns.map((text) => {
      const sel = parseColumnSelector(text);
      if (typeof sel === 'string') throw new Error(`masking rule "${config.name}": column selector ${JSON.stringify(text)} ${sel}`);
      return sel;
    });
    this.namePatterns = config.columnNames.map(compileColumnNamePattern);
    const classifiers: Classifier[] = [];
    for (const name of config.content) {
      const group = CLASSIFIER_GROUPS[name];
      const names: string[] = group ? [...group] : [name];
      for (const n of names) {
        const c = custom.get(n) ?? BUILTIN[n as BuiltinClassifier];
        if (!c) throw new Error(`masking rule "${config.name}": unknown content classifier "${n}"`);
        if (!classifiers.includes(c)) classifiers.push(c);
      }
    }
    this.classifiers = classifiers;
    this.order = order;
  }

  /** The rule selects columns (by schema.table.column or by column name). */
  get selectsColumns(): boolean {
    return this.selectors.length > 0 || this.namePatterns.length > 0;
  }

  /** `schema` undefined: the relation was named without a schema (any schema matches). */
  coversColumn(schema: string | undefined, table: string, column: string): boolean {
    for (const p of this.namePatterns) if (p.test(column)) return true;
    for (const s of this.selectors) if (selectorMatches(s, schema, table, column)) return true;
    return false;
  }

  appliesTo(p: Principal): boolean {
    const a = this.config.appliesTo;
    const e = this.config.exempt;
    const applies = a === undefined || matches(a, p, true);
    return applies && !(e !== undefined && matches(e, p, false));
  }
}

function matches(a: MaskAudience, p: Principal, overageMatchesGroups: boolean): boolean {
  if (a.principals.includes(p.name)) return true;
  if (a.roles.some((r) => p.roles.includes(r))) return true;
  if (a.groups.length === 0) return false;
  if (p.groupsOverage) return overageMatchesGroups;
  return a.groups.some((g) => p.groups.includes(g));
}

export function compileRules(config: MaskingConfig): CompiledRule[] {
  const custom = new Map<string, Classifier>();
  for (const c of config.classifiers) {
    const compiled = customClassifier(c.name, c.pattern, c.ignoreCase);
    if (typeof compiled === 'string') throw new Error(`masking classifier "${c.name}": pattern ${compiled}`);
    custom.set(c.name, compiled);
  }
  return config.rules.map((r, i) => new CompiledRule(r, i, custom));
}

/** pg_catalog columns that hold copies of table data (planner statistics). */
export const STATISTICS_COLUMNS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['pg_stats', new Set(['most_common_vals', 'histogram_bounds', 'most_common_elems'])],
  ['pg_stats_ext', new Set(['most_common_vals'])],
  ['pg_stats_ext_exprs', new Set(['most_common_vals', 'histogram_bounds', 'most_common_elems'])],
  ['pg_statistic', new Set(['stavalues1', 'stavalues2', 'stavalues3', 'stavalues4', 'stavalues5'])],
  ['pg_statistic_ext_data', new Set(['stxdmcv', 'stxdexpr'])],
]);

/** The rules that apply to one principal. */
export class PrincipalRules {
  /** Rules selecting columns, in configuration order. */
  readonly columnRules: readonly CompiledRule[];
  /** Rules with content classifiers, in configuration order. */
  readonly contentRules: readonly CompiledRule[];
  private readonly memo = new Map<string, CompiledRule | null>();

  constructor(readonly all: readonly CompiledRule[]) {
    this.columnRules = all.filter((r) => r.selectsColumns);
    this.contentRules = all.filter((r) => r.classifiers.length > 0);
  }

  static for(rules: readonly CompiledRule[], p: Principal): PrincipalRules {
    return new PrincipalRules(rules.filter((r) => r.appliesTo(p)));
  }

  get empty(): boolean {
    return this.all.length === 0;
  }

  /** The rule that stands for "every protected column" (unknown lineage): the first column rule. */
  get first(): CompiledRule | undefined {
    return this.columnRules[0];
  }

  /** The first column rule covering the column, or undefined. */
  ruleFor(schema: string | undefined, table: string, column: string): CompiledRule | undefined {
    const key = `${schema ?? ''}\u0000${table}\u0000${column}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit ?? undefined;
    let rule = this.columnRules.find((r) => r.coversColumn(schema, table, column));
    // Planner statistics hold sample values of every column: as protected as the data.
    if (!rule && (schema === undefined || schema === 'pg_catalog') && STATISTICS_COLUMNS.get(table)?.has(column)) rule = this.first;
    this.memo.set(key, rule ?? null);
    return rule;
  }
}

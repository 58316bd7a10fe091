// Which masking rules cover a value, and how it got here. Names come from two places:
//   - RowDescription origins (a relation by OID, a column by number): exact;
//   - lineage sources (relations named as the query wrote them): an unqualified name could be any
//     same-named relation (search_path, temp tables), so every candidate counts — if any of them
//     is protected, the value is.
// Views are followed through their definitions (pg_get_viewdef, traced with lineage), so a view
// column derived from a protected column is covered, and a rule may also name the view itself.
import { classify, lineage, type LineageResult, type OutputColumn, type SourceColumn } from '../sql/index.js';
import { VIEW_KINDS, type CatalogSnapshot, type Relation } from './catalog-snapshot.js';
import type { CompiledRule, PrincipalRules } from './rules.js';

/** The rules covering one value. */
export interface Covered {
  /** Covering rules, each with the protected columns (qualified where known) that bring it. */
  readonly rules: Map<CompiledRule, Set<string>>;
  /** The value went through more than casts on its way (a function, an operator, CASE, …). */
  derived: boolean;
  /** The value is a whole row (composite, row_to_json, …). */
  wholeRow: boolean;
  /** Why it could not be traced; non-empty means: treat as derived from every protected column. */
  readonly unresolved: string[];
  /** How it was derived, for explanations ("function", "concat", …). */
  readonly transforms: Set<string>;
}

export function emptyCovered(): Covered {
  return { rules: new Map(), derived: false, wholeRow: false, unresolved: [], transforms: new Set() };
}

export function mergeInto(into: Covered, from: Covered): void {
  for (const [rule, cols] of from.rules) {
    const set = into.rules.get(rule) ?? new Set<string>();
    for (const c of cols) set.add(c);
    into.rules.set(rule, set);
  }
  into.derived ||= from.derived;
  into.wholeRow ||= from.wholeRow;
  for (const r of from.unresolved) if (!into.unresolved.includes(r)) into.unresolved.push(r);
  for (const t of from.transforms) into.transforms.add(t);
}

function addRule(c: Covered, rule: CompiledRule | undefined, column: string): void {
  if (!rule) return;
  const set = c.rules.get(rule) ?? new Set<string>();
  set.add(column);
  c.rules.set(rule, set);
}

const MAX_VIEW_DEPTH = 16;
/** Transforms that keep the value as it is (a cast to text of a text column …). */
const VALUE_PRESERVING = new Set(['cast']);

/** View definitions traced once per snapshot, shared by every session on the target. */
const viewLineage = new WeakMap<CatalogSnapshot, Map<number, LineageResult | string>>();

function qualified(schema: string | undefined, table: string, column: string): string {
  return `${schema === undefined ? '' : `${schema}.`}${table}.${column}`;
}

export class Coverage {
  constructor(
    readonly snapshot: CatalogSnapshot,
    readonly rules: PrincipalRules,
  ) {}

  /** A column of a known relation (a RowDescription origin). */
  relationColumn(rel: Relation, column: string, depth = 0): Covered {
    const c = emptyCovered();
    addRule(c, this.rules.ruleFor(rel.schema, rel.name, column), qualified(rel.schema, rel.name, column));
    if (VIEW_KINDS.has(rel.kind)) mergeInto(c, this.viewColumn(rel, column, depth));
    return c;
  }

  /** Every column of a relation, as a whole-row value (attnum 0, `SELECT t FROM t`). */
  wholeRelation(rel: Relation): Covered {
    const c = emptyCovered();
    for (const col of rel.columns) mergeInto(c, this.relationColumn(rel, col.name));
    c.wholeRow = true;
    c.derived = true;
    return c;
  }

  /** A lineage source: a column of a relation named as the query wrote it. */
  source(src: SourceColumn, depth = 0): Covered {
    const c = emptyCovered();
    if (src.column === '*') {
      c.unresolved.push(`columns of ${src.table} could not be listed`);
      return c;
    }
    for (const rel of this.snapshot.candidates(src.schema, src.table)) {
      if (!rel.columns.some((col) => col.name === src.column)) continue;
      mergeInto(c, this.relationColumn(rel, src.column, depth));
    }
    // By name too: without a schema, a rule for that table in any schema applies (the relation
    // may be one the snapshot does not hold yet).
    const byName = this.rules.ruleFor(src.schema, src.table, src.column);
    if (byName && !c.rules.has(byName)) addRule(c, byName, qualified(src.schema, src.table, src.column));
    return c;
  }

  /** An output column of lineage: the union of its sources, with its derivation. */
  outputColumn(oc: OutputColumn, depth = 0): Covered {
    const c = emptyCovered();
    if (oc.unresolved) c.unresolved.push(...oc.reasons);
    let unprotected = false;
    for (const s of oc.sources) {
      const one = this.source(s, depth);
      if (one.rules.size === 0 && one.unresolved.length === 0) unprotected = true;
      mergeInto(c, one);
    }
    for (const t of oc.transforms) c.transforms.add(t);
    // One of several columns (UNION ALL, VALUES), some of them unprotected: rows of those are
    // values the agent may have written itself, and a hash of them beside the protected ones
    // would tell which guess a name is. Treated as computed.
    if (unprotected && c.rules.size > 0 && oc.derivation === 'direct') {
      c.derived = true;
      c.transforms.add('values');
    }
    if (oc.derivation === 'whole_row') {
      c.wholeRow = true;
      c.derived = true;
    } else if (oc.derivation === 'derived' && !oc.transforms.every((t) => VALUE_PRESERVING.has(t))) {
      c.derived = true;
    }
    return c;
  }

  /** A view column, traced through the view's definition. */
  private viewColumn(rel: Relation, column: string, depth: number): Covered {
    const c = emptyCovered();
    if (depth >= MAX_VIEW_DEPTH) {
      c.unresolved.push(`views nested deeper than ${MAX_VIEW_DEPTH} levels at ${rel.schema}.${rel.name}`);
      return c;
    }
    const lin = this.traceView(rel);
    if (typeof lin === 'string') {
      c.unresolved.push(lin);
      return c;
    }
    const index = rel.columns.findIndex((col) => col.name === column);
    const oc = lin.columns[index];
    if (!oc || lin.output !== 'rows' || !lin.shapeKnown || lin.columns.length !== rel.columns.length) {
      c.unresolved.push(`the definition of ${rel.schema}.${rel.name} could not be matched to its columns`);
      return c;
    }
    return this.outputColumn(oc, depth + 1);
  }

  private traceView(rel: Relation): LineageResult | string {
    let cache = viewLineage.get(this.snapshot);
    if (!cache) {
      cache = new Map();
      viewLineage.set(this.snapshot, cache);
    }
    const hit = cache.get(rel.oid);
    if (hit !== undefined) return hit;
    let result: LineageResult | string;
    if (rel.definition === undefined) {
      result = `the definition of ${rel.schema}.${rel.name} is not available`;
    } else {
      const parsed = classify(rel.definition.replace(/;\s*$/, ''));
      const stmt = parsed.ok ? parsed.statements[0] : undefined;
      result = stmt ? lineage(stmt, this.snapshot.view) : `the definition of ${rel.schema}.${rel.name} could not be parsed`;
    }
    cache.set(rel.oid, result);
    return result;
  }
}

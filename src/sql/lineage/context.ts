// State shared by one lineage run: the catalog, the collected predicates and laundering, a work
// budget, and the query analyser (injected so expressions can analyse their subqueries).
import type { Node } from 'libpg-query';
import { sourceKey, type Lin } from './lin.js';
import type { Col, CteEnv, Scope } from './scope.js';
import type { CatalogView, Comparison, Laundering, PredicateClause, PredicateColumn, SourceColumn } from './types.js';

/** The columns a query produces; `complete` is false when a `*` could not be expanded. */
export interface Shape {
  readonly cols: readonly Col[];
  readonly complete: boolean;
}

export class BudgetExceeded extends Error {
  constructor() {
    super('lineage analysis exceeded its work limit');
  }
}

export class Ctx {
  readonly predicates: PredicateColumn[] = [];
  readonly laundering: Laundering[] = [];
  readonly reasons: string[] = [];
  /** Reasons that concern predicates or laundering rather than output columns. */
  readonly sideReasons: string[] = [];
  private readonly predicateKeys = new Set<string>();
  private steps = 0;
  /** Set by the query analyser: analyses a SELECT (or DML with RETURNING) at a nested level. */
  query!: (node: Node | undefined, parent: Scope | undefined, ctes: CteEnv) => Shape;

  constructor(
    readonly catalog: CatalogView,
    private readonly maxSteps: number,
  ) {}

  step(): void {
    if (++this.steps > this.maxSteps) throw new BudgetExceeded();
  }

  reason(r: string): void {
    if (!this.reasons.includes(r)) this.reasons.push(r);
  }

  sideReason(r: string): void {
    this.reason(r);
    if (!this.sideReasons.includes(r)) this.sideReasons.push(r);
  }

  /** Records every source of `lin` as a predicate column of `clause`. */
  predicate(lin: Lin, clause: PredicateClause, comparedWith: Comparison): void {
    for (const r of lin.reasons) this.sideReason(r);
    const direct = lin.derivation === 'direct';
    for (const column of lin.sources.values()) {
      const key = `${sourceKey(column)}\u0000${clause}\u0000${comparedWith}\u0000${direct}`;
      if (this.predicateKeys.has(key)) continue;
      this.predicateKeys.add(key);
      this.predicates.push({ column, clause, comparedWith, direct });
    }
  }

  launder(entry: Omit<Laundering, 'sources' | 'unresolved'>, lins: readonly Lin[]): void {
    const sources = new Map<string, SourceColumn>();
    let unresolved = false;
    for (const l of lins) {
      for (const [k, s] of l.sources) sources.set(k, s);
      if (l.reasons.length > 0) {
        unresolved = true;
        for (const r of l.reasons) this.sideReason(r);
      }
    }
    if (sources.size === 0 && !unresolved) return;
    this.laundering.push({ ...entry, sources: [...sources.values()], unresolved });
  }
}

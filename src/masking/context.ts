// What one session's masking decisions share: the principal's rules, the target's catalog, and
// per-snapshot caches (coverage, lineage of the statements seen).
import { lineage, type LineageResult, type StatementInfo } from '../sql/index.js';
import type { CatalogSnapshot } from './catalog-snapshot.js';
import type { TargetCatalog } from './catalog.js';
import type { ContentRule } from './value-masker.js';
import { Coverage } from './coverage.js';
import type { PrincipalRules } from './rules.js';

export class MaskingContext {
  private cov: Coverage | undefined;
  private readonly lineages = new WeakMap<StatementInfo, { snap: CatalogSnapshot; result: LineageResult }>();
  readonly contentRules: readonly ContentRule[];

  constructor(
    readonly rules: PrincipalRules,
    readonly catalog: TargetCatalog,
  ) {
    this.contentRules = rules.contentRules.map((r) => ({ rule: r.name, classifiers: r.classifiers, strategy: r.strategy, redactText: r.redactText }));
  }

  coverage(snap: CatalogSnapshot): Coverage {
    if (this.cov?.snapshot !== snap) this.cov = new Coverage(snap, this.rules);
    return this.cov;
  }

  lineageOf(stmt: StatementInfo, snap: CatalogSnapshot): LineageResult {
    const hit = this.lineages.get(stmt);
    if (hit?.snap === snap) return hit.result;
    const result = lineage(stmt, snap.view);
    this.lineages.set(stmt, { snap, result });
    return result;
  }

  /** The rule named when something fails before any rule was involved (catalog errors …). */
  get anyRule(): string {
    return (this.rules.first ?? this.rules.all[0])?.name ?? 'masking';
  }
}

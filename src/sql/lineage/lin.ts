// The lineage of one value while a query is analysed: its source columns, how it was derived,
// and why (if at all) it could not be resolved. Values are immutable; combinators build new ones.
import type { Derivation, SourceColumn, Transform } from './types.js';

export interface Lin {
  readonly sources: ReadonlyMap<string, SourceColumn>;
  readonly derivation: Derivation;
  readonly transforms: ReadonlySet<Transform>;
  /** Reasons it is unresolved; empty when resolved. */
  readonly reasons: readonly string[];
  /** A bind parameter ($n) feeds the value. */
  readonly params: boolean;
}

const RANK: Readonly<Record<Derivation, number>> = { constant: 0, direct: 1, derived: 2, whole_row: 3 };
const NO_SOURCES: ReadonlyMap<string, SourceColumn> = new Map();
const NO_TRANSFORMS: ReadonlySet<Transform> = new Set();

export function sourceKey(s: SourceColumn): string {
  return `${s.schema ?? ''}\u0000${s.table}\u0000${s.column}`;
}

export const CONSTANT: Lin = { sources: NO_SOURCES, derivation: 'constant', transforms: NO_TRANSFORMS, reasons: [], params: false };
export const PARAM: Lin = { ...CONSTANT, params: true };

export function direct(source: SourceColumn): Lin {
  return { sources: new Map([[sourceKey(source), source]]), derivation: 'direct', transforms: NO_TRANSFORMS, reasons: [], params: false };
}

/** An unresolved value; `hints` are source columns it probably reads (kept so callers can see them). */
export function unresolved(reason: string, hints: readonly SourceColumn[] = []): Lin {
  const sources = new Map<string, SourceColumn>();
  for (const h of hints) sources.set(sourceKey(h), h);
  return { sources, derivation: 'derived', transforms: NO_TRANSFORMS, reasons: [reason], params: false };
}

function merge(lins: readonly Lin[]): { sources: Map<string, SourceColumn>; transforms: Set<Transform>; reasons: string[]; params: boolean } {
  const sources = new Map<string, SourceColumn>();
  const transforms = new Set<Transform>();
  const reasons: string[] = [];
  let params = false;
  for (const l of lins) {
    for (const [k, s] of l.sources) sources.set(k, s);
    for (const t of l.transforms) transforms.add(t);
    for (const r of l.reasons) if (!reasons.includes(r)) reasons.push(r);
    params ||= l.params;
  }
  return { sources, transforms, reasons, params };
}

/** A value computed from `inputs` through `transform` (a function, a cast, an operator, …). */
export function derive(transform: Transform, inputs: readonly Lin[]): Lin {
  const m = merge(inputs);
  m.transforms.add(transform);
  const wholeRow = inputs.some((l) => l.derivation === 'whole_row');
  const derivation: Derivation = wholeRow ? 'whole_row' : m.sources.size === 0 && m.reasons.length === 0 ? 'constant' : 'derived';
  return { ...m, derivation };
}

/**
 * A value that is one of `alternatives` (UNION branches, JOIN USING sides, VALUES rows). When
 * some alternatives are column values and others constants the agent wrote
 * (`SELECT full_name FROM customers UNION ALL SELECT 'Alice'`), the column mixes the two: a mask
 * applied to every row (a hash) would show the agent what its own guess masks to, so the value
 * counts as derived ('values'), not as the column itself.
 */
export function either(alternatives: readonly Lin[]): Lin {
  if (alternatives.length === 1) return alternatives[0]!;
  const m = merge(alternatives);
  let rank = 0;
  for (const l of alternatives) rank = Math.max(rank, RANK[l.derivation]);
  if (rank === RANK.direct && alternatives.some((l) => l.derivation === 'constant')) {
    rank = RANK.derived;
    m.transforms.add('values');
  }
  const derivation = (Object.keys(RANK) as Derivation[]).find((d) => RANK[d] === rank) ?? 'derived';
  return { ...m, derivation };
}

/** Whole rows built from the columns `cols` (`t.*` as a value, `SELECT t FROM t`). */
export function wholeRow(cols: readonly Lin[], extraReasons: readonly string[] = [], hints: readonly SourceColumn[] = []): Lin {
  const m = merge(cols);
  for (const h of hints) m.sources.set(sourceKey(h), h);
  for (const r of extraReasons) if (!m.reasons.includes(r)) m.reasons.push(r);
  return { ...m, derivation: 'whole_row' };
}

export function withReason(lin: Lin, reason: string): Lin {
  if (lin.reasons.includes(reason)) return lin;
  return { ...lin, reasons: [...lin.reasons, reason], derivation: lin.derivation === 'constant' ? 'derived' : lin.derivation };
}

export function sameLin(a: Lin, b: Lin): boolean {
  if (a.derivation !== b.derivation || a.sources.size !== b.sources.size || a.reasons.length !== b.reasons.length) return false;
  for (const k of a.sources.keys()) if (!b.sources.has(k)) return false;
  if (a.transforms.size !== b.transforms.size) return false;
  for (const t of a.transforms) if (!b.transforms.has(t)) return false;
  return true;
}

// Name resolution the way PostgreSQL's parser does it (parse_relation.c, simplified): FROM items
// per query level, innermost level first, CTEs in their own chain. A relation whose columns are
// unknown makes a lookup that might land on it unresolved instead of guessing.
import { CONSTANT, derive, either, unresolved, wholeRow, withReason, type Lin } from './lin.js';
import type { SourceColumn } from './types.js';

export interface Col {
  readonly name: string;
  readonly lin: Lin;
}

/** A FROM item: a relation, subquery, function, CTE reference or join. */
export interface RelItem {
  /** Name for qualified references (`alias.col`, `alias.*`, whole-row `alias`). */
  readonly refname: string | undefined;
  /** Schema as written, for `schema.table.col` (only for un-aliased relations). */
  readonly schema?: string;
  readonly cols: readonly Col[];
  /** False when the item may have columns not in `cols` (unknown relation or function). */
  readonly complete: boolean;
  /** The base relation, when unknown to the catalog (for hints in unresolved results). */
  readonly unknownRelation?: { schema?: string; table: string };
  /** Reason the item is incomplete. */
  readonly why?: string;
  /** Visible to `name.col`; a join with an alias hides its inputs. */
  qualified: boolean;
  /** Visible to bare `col`; inside a join only the join's own item is. */
  unqualified: boolean;
}

export interface CteBinding {
  cols: Col[];
  complete: boolean;
  why?: string;
}

export class CteEnv {
  private readonly own = new Map<string, CteBinding>();
  constructor(readonly parent: CteEnv | undefined) {}

  define(name: string, binding: CteBinding): void {
    this.own.set(name, binding);
  }

  lookup(name: string): CteBinding | undefined {
    return this.own.get(name) ?? this.parent?.lookup(name);
  }
}

export class Scope {
  readonly items: RelItem[] = [];
  /** Named windows (WINDOW w AS (…)) of this level: their PARTITION BY / ORDER BY lineage. */
  readonly windows = new Map<string, Lin>();

  constructor(
    readonly parent: Scope | undefined,
    readonly ctes: CteEnv,
  ) {}

  add(item: RelItem): void {
    this.items.push(item);
  }

  /** A scope that sees this level's items so far (LATERAL) and the same outer levels. */
  lateralView(): Scope {
    const s = new Scope(this.parent, this.ctes);
    for (const i of this.items) s.items.push(i);
    for (const [k, v] of this.windows) s.windows.set(k, v);
    return s;
  }

  /** Resolves a ColumnRef's name parts (without a trailing `*`). */
  column(parts: readonly string[]): Lin {
    const name = parts.join('.');
    if (parts.length === 1) return this.bare(parts[0]!);
    // qualifier.col, schema.table.col, catalog.schema.table.col: the longest matching prefix wins.
    for (let q = Math.min(parts.length - 1, 3); q >= 1; q--) {
      const rel = this.relation(parts.slice(0, q));
      if (!rel) continue;
      const col = parts[q]!;
      const found = colOf(rel, col);
      const lin = found ?? missing(rel, col);
      if (q + 1 < parts.length) return fieldOf(lin, parts.slice(q + 1));
      return lin;
    }
    // No relation by that name: the first part is a column of composite type, the rest fields.
    const base = this.bare(parts[0]!);
    return fieldOf(base, parts.slice(1), `"${name}"`);
  }

  /** `name.*` or a bare relation name used as a value: the whole row. */
  wholeRowOf(qualifier: readonly string[]): Lin | undefined {
    const rel = this.relation(qualifier);
    return rel ? itemRow(rel) : undefined;
  }

  /** `*` used as a value: every visible item's whole row. */
  allRows(): Lin {
    const rows = this.items.filter((i) => i.unqualified).map(itemRow);
    return rows.length > 0 ? wholeRow(rows) : unresolved('* used where no FROM item is visible');
  }

  private relation(qualifier: readonly string[]): RelItem | undefined {
    const refname = qualifier[qualifier.length - 1];
    const schema = qualifier.length >= 2 ? qualifier[qualifier.length - 2] : undefined;
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const hits = s.items.filter(
        (i) => i.qualified && i.refname === refname && (schema === undefined || i.schema === undefined || i.schema === schema),
      );
      if (hits.length > 0) return hits[hits.length - 1];
    }
    return undefined;
  }

  private bare(col: string): Lin {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const visible = s.items.filter((i) => i.unqualified);
      const found: Lin[] = [];
      for (const i of visible) {
        const c = colOf(i, col);
        if (c) found.push(c);
      }
      if (found.length > 0) return either(found);
      const unknown = visible.filter((i) => !i.complete);
      if (unknown.length > 0) {
        const hints: SourceColumn[] = unknown.flatMap((i) => (i.unknownRelation ? [{ ...i.unknownRelation, column: col }] : []));
        return unresolved(`column "${col}" may come from ${unknown.map(describe).join(', ')}`, hints);
      }
    }
    // Not a column anywhere: PostgreSQL then tries a whole-row reference to a relation of that name.
    const rel = this.relation([col]);
    if (rel) return itemRow(rel);
    if (SYSTEM_COLUMNS.has(col)) return CONSTANT;
    return unresolved(`column "${col}" not found`);
  }
}

/** System columns (row versions and addresses): not user data, and not in the catalog view. */
const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

function describe(i: RelItem): string {
  const base = i.refname ? `"${i.refname}"` : 'a FROM item';
  return i.why ? `${base} (${i.why})` : base;
}

function colOf(item: RelItem, col: string): Lin | undefined {
  const hits = item.cols.filter((c) => c.name === col);
  if (hits.length === 0) return undefined;
  return either(hits.map((h) => h.lin));
}

function missing(item: RelItem, col: string): Lin {
  if (SYSTEM_COLUMNS.has(col)) return CONSTANT;
  if (!item.complete) {
    const hints = item.unknownRelation ? [{ ...item.unknownRelation, column: col }] : [];
    return unresolved(`column "${col}" of ${describe(item)} cannot be traced`, hints);
  }
  // Not a column: PostgreSQL reads `t.f` as the function call f(t) (functional notation).
  return unresolved(`"${item.refname ?? '?'}.${col}" is not a known column (function call on the row?)`, []);
}

/**
 * `value.field`: a field of a composite value, or PostgreSQL's functional notation field(value),
 * which may run any function. The type is not known here, so the result is unresolved.
 */
export function fieldOf(base: Lin, fields: readonly string[], what = ''): Lin {
  return withReason(derive('field', [base]), `${what || fields.join('.')} selects a field of a composite value or calls a function on it`);
}

/** The whole row of an item. */
export function itemRow(item: RelItem): Lin {
  if (item.complete) return wholeRow(item.cols.map((c) => c.lin));
  const hints = item.unknownRelation ? [{ ...item.unknownRelation, column: '*' }] : [];
  return wholeRow(item.cols.map((c) => c.lin), [`whole row of ${describe(item)} cannot be traced`], hints);
}

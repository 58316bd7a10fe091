// An immutable picture of a target's relations (tables, views, materialized views, foreign and
// partitioned tables, every schema including pg_catalog and other sessions' temp schemas), their
// live columns and types, and view definitions — what the masking engine needs to answer
// synchronously: lineage's CatalogView, and "which relations could this name mean".
import type { CatalogView } from '../sql/index.js';
import type { CatalogType } from './pg-types.js';

export interface CatalogColumn {
  name: string;
  attnum: number;
  typeOid: number;
  typmod: number;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, f foreign, v view, m materialized view. */
  kind: string;
  /** Live columns in attribute order. */
  columns: CatalogColumn[];
  /** Views and materialized views: pg_get_viewdef() with every name schema-qualified. */
  definition?: string;
}

export const VIEW_KINDS: ReadonlySet<string> = new Set(['v', 'm']);

export class CatalogSnapshot {
  readonly byOid = new Map<number, Relation>();
  private readonly byName = new Map<string, Relation[]>();

  constructor(
    relations: Iterable<Relation>,
    readonly types: ReadonlyMap<number, CatalogType>,
    /** When the snapshot was read (ms since epoch). */
    readonly loadedAt: number,
    /**
     * Built-in function names lineage traces through that the target also defines outside
     * pg_catalog, each with one such definition (`public.lower`): an unqualified call of the name
     * may run that one instead.
     */
    readonly shadowedBuiltins: ReadonlyMap<string, string> = new Map(),
  ) {
    for (const r of relations) this.add(r);
  }

  /** Adds a relation found after the snapshot was taken (a lookup by OID that missed). */
  add(r: Relation): void {
    const old = this.byOid.get(r.oid);
    if (old) {
      const list = this.byName.get(old.name) ?? [];
      this.byName.set(old.name, list.filter((x) => x !== old));
    }
    this.byOid.set(r.oid, r);
    const list = this.byName.get(r.name) ?? [];
    list.push(r);
    this.byName.set(r.name, list);
  }

  /**
   * Relations a name as written could mean. With a schema: that schema (`pg_temp` means any
   * session's temp schema, since which one is the agent's is not known here). Without one: every
   * schema — the agent's search_path is not known either, so callers treat all as candidates.
   */
  candidates(schema: string | undefined, name: string): Relation[] {
    const all = this.byName.get(name) ?? [];
    if (schema === undefined) return all;
    if (schema === 'pg_temp') return all.filter((r) => r.schema.startsWith('pg_temp_'));
    return all.filter((r) => r.schema === schema);
  }

  /** True when every relation a name could mean has the same columns in the same order. */
  columnsAgree(schema: string | undefined, name: string): boolean {
    const c = this.candidates(schema, name);
    const first = c[0];
    if (!first) return true;
    const names = (r: Relation): string => r.columns.map((col) => col.name).join('\u0000');
    return c.every((r) => names(r) === names(first));
  }

  /**
   * lineage()'s view. When the candidates of a name disagree, the likeliest is chosen (pg_catalog,
   * which is searched first, then public, then any other non-temp schema): positions found with it
   * are only trusted by the plan when the output column names match the RowDescription, and
   * protection is decided over every candidate (Coverage), so a wrong guess cannot unmask a column
   * named one by one. The name is reported ambiguous, so lineage trusts no whole row or `*` of it:
   * `SELECT s::text FROM staff s` listed the agent's public.staff (id, note) while PostgreSQL read
   * hr.staff (id, ssn) and sent the SSNs in clear.
   */
  readonly view: CatalogView = {
    columnsOf: (schema, table) => {
      const c = this.candidates(schema, table);
      const first = c[0];
      if (!first) return undefined;
      const names = (r: Relation): string[] => r.columns.map((col) => col.name);
      if (this.columnsAgree(schema, table)) return names(first);
      const pick =
        c.find((r) => r.schema === 'pg_catalog') ??
        c.find((r) => r.schema === 'public') ??
        c.find((r) => !r.schema.startsWith('pg_temp_') && r.schema !== 'information_schema');
      return pick ? names(pick) : undefined;
    },
    ambiguous: (schema, table) => !this.columnsAgree(schema, table),
  };

  typeLookup = (oid: number): CatalogType | undefined => this.types.get(oid);
}

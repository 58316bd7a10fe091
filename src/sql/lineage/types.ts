// Public shapes of column lineage: which source columns feed each output column, which columns
// steer the result through predicates, and which statements copy data somewhere else.

/**
 * What lineage needs to know about relations, answered synchronously (the caller keeps a
 * catalog snapshot). Names arrive as written: `schema` is undefined for an unqualified name and
 * the caller resolves it its own way (search_path).
 */
export interface CatalogView {
  /** Column names in attribute order (dropped columns left out), or undefined for an unknown relation. */
  columnsOf(schema: string | undefined, table: string): readonly string[] | undefined;
  /**
   * True when the name could mean relations with different columns and columnsOf guessed one:
   * its columns by name are usable, its whole row and `*` are not.
   */
  ambiguous?(schema: string | undefined, table: string): boolean;
}

/** A column of a table or view, named as the query wrote the relation. */
export interface SourceColumn {
  readonly schema?: string;
  readonly table: string;
  readonly column: string;
}

/**
 * - `direct`: the value is a source column's value, unchanged (possibly one of several, as in UNION);
 * - `derived`: computed from source columns (function, cast, concatenation, CASE, aggregate, …);
 * - `whole_row`: encodes whole rows (`t.*` in ROW()/row_to_json, `SELECT t FROM t`, `json_agg(t)`);
 * - `constant`: derived from no source column.
 */
export type Derivation = 'constant' | 'direct' | 'derived' | 'whole_row';

export type Transform =
  | 'function' | 'cast' | 'conversion' | 'concat' | 'case' | 'aggregate' | 'window' | 'arithmetic' | 'operator'
  | 'comparison' | 'boolean' | 'subquery' | 'array' | 'row' | 'field' | 'subscript' | 'json' | 'xml'
  | 'values';

export interface OutputColumn {
  /** The column name PostgreSQL gives it (alias, column name, function name, or ?column?). */
  readonly name: string;
  /**
   * The columns the value derives from. For an unresolved column this is what could be traced
   * plus hints (`{ table: 'unknown_t', column: 'x' }`, `column: '*'`), never the whole story.
   */
  readonly sources: readonly SourceColumn[];
  readonly derivation: Derivation;
  /** The constructs the value passed through, sorted. */
  readonly transforms: readonly Transform[];
  /** True when lineage could not be fully worked out: mask or deny this column. */
  readonly unresolved: boolean;
  readonly reasons: readonly string[];
}

export type PredicateClause =
  | 'where' | 'join' | 'having' | 'order_by' | 'group_by' | 'window' | 'distinct_on' | 'limit' | 'set_operation'
  /** A CASE's WHEN condition or an aggregate's FILTER: it decides which branch (and error) runs. */
  | 'case'
  /** The arguments of a set-returning function: how many rows come back depends on them. */
  | 'set_returning'
  /** INSERT … ON CONFLICT: which rows are inserted tells which equal a row already there. */
  | 'on_conflict'
  /** The referenced columns of a foreign key: each referencing row is checked against them. */
  | 'foreign_key';

/**
 * What a predicate column is compared with: a literal, a bind parameter, a pattern (LIKE,
 * SIMILAR TO, regular expressions), another column, a NULL test; 'none' when the column only
 * orders, groups or partitions, or when the predicate is opaque (`WHERE f(col)`).
 */
export type Comparison = 'constant' | 'parameter' | 'pattern' | 'column' | 'null' | 'none';

export interface PredicateColumn {
  readonly column: SourceColumn;
  readonly clause: PredicateClause;
  readonly comparedWith: Comparison;
  /** The column itself is compared (`ssn = …`), not a value computed from it (`lower(ssn) = …`). */
  readonly direct: boolean;
}

export type LaunderingKind =
  | 'create_table_as' | 'select_into' | 'create_matview' | 'create_view' | 'insert_select' | 'update_set'
  | 'merge' | 'copy_to_file' | 'copy_to_program' | 'rename';

/** The statement copies (or relabels) data derived from `sources` into `target`. */
export interface Laundering {
  readonly kind: LaunderingKind;
  readonly target: { readonly schema?: string; readonly table: string } | { readonly file: string } | { readonly program: string };
  readonly targetColumns?: readonly string[];
  readonly sources: readonly SourceColumn[];
  /** Some of what is copied could not be traced: treat as copying anything. */
  readonly unresolved: boolean;
}

export interface LineageResult {
  /**
   * 'rows': `columns` describes the result rows (for PREPARE and DECLARE CURSOR: the rows a
   * later EXECUTE/FETCH returns); 'none': the statement returns no rows; 'opaque': it may return
   * rows that cannot be described here (EXECUTE, FETCH, CALL, unknown statements) — mask or deny.
   */
  readonly output: 'rows' | 'none' | 'opaque';
  readonly columns: readonly OutputColumn[];
  /** False when a `*` could not be expanded, so positions in `columns` may not match the result. */
  readonly shapeKnown: boolean;
  readonly predicateColumns: readonly PredicateColumn[];
  /** False when a predicate could not be fully traced (an unknown function or operator in WHERE…). */
  readonly predicatesComplete: boolean;
  readonly laundering: readonly Laundering[];
  /**
   * False when the statement runs code lineage cannot see (DO, CALL, EXECUTE) or the analysis
   * failed: it may copy data anywhere. (Functions outside the known built-ins can write too;
   * they show up in `unresolved` and make the statement not read-only.)
   */
  readonly launderingComplete: boolean;
  /** Every reason something was not resolved, for logs and approval prompts. */
  readonly unresolved: readonly string[];
}

export interface LineageOptions {
  /** Work limit (expressions and subqueries visited); past it the result is opaque. Default 100 000. */
  maxSteps?: number;
}

// Statement-level checks before a statement is forwarded:
//   - inference: a protected column steers the result through a predicate (WHERE ssn LIKE '9%',
//     a range on salary, JOIN ON, HAVING, ORDER BY, GROUP BY, …) — masking the output does not
//     hide what the predicate reveals. `IS NULL` tests are allowed (NULL is never masked).
//   - laundering: a statement copies protected values where masking no longer sees them
//     (CREATE TABLE AS, SELECT INTO, INSERT … SELECT, UPDATE … SET x = ssn, COPY … TO a file or
//     program, renaming a protected column or table), or runs code lineage cannot see (DO, CALL,
//     a function outside the known built-ins in a statement that may write), or defines code
//     PostgreSQL runs later out of lineage's sight (CREATE FUNCTION, TRIGGER, RULE, POLICY,
//     AGGREGATE, OPERATOR, CAST …, and renaming, moving or altering a function: a trigger or rule
//     on the agent's own table copies protected values when a harmless INSERT fires it; a
//     function named like a built-in warden traces through, `public.lower(integer)`, is called
//     by `lower(1)`).
// Each covering rule says allow, deny or hold for each; the strictest finding decides. A
// statement that cannot be parsed is treated as touching every protected column.
import type { PredicateClause, StatementInfo } from '../sql/index.js';
import { isKnownBuiltin } from '../sql/functions.js';
import type { CatalogSnapshot } from './catalog-snapshot.js';
import type { MaskingContext } from './context.js';
import type { Covered } from './coverage.js';
import type { CompiledRule } from './rules.js';
import type { MaskVerdict } from './types.js';

type Concern = 'inference' | 'laundering';

export interface Finding {
  concern: Concern;
  rule: CompiledRule;
  reason: string;
}

export interface StatementCheck {
  verdict: MaskVerdict;
  /** The statement reads or steers by protected data, or may run code that does (for side-channel scrubbing). */
  touched: boolean;
  findings: Finding[];
}

const CLAUSE: Readonly<Record<PredicateClause, string>> = {
  where: 'WHERE',
  join: 'JOIN ON',
  having: 'HAVING',
  order_by: 'ORDER BY',
  group_by: 'GROUP BY',
  window: 'a window (PARTITION BY / ORDER BY)',
  distinct_on: 'DISTINCT / DISTINCT ON',
  limit: 'LIMIT / OFFSET',
  set_operation: 'a set operation (UNION / INTERSECT / EXCEPT)',
  case: 'a CASE condition or FILTER (it picks the branch that runs, and whether an error is raised)',
  set_returning: 'a set-returning function or one warden does not know (how many rows it returns, and what else it does, depends on its arguments)',
  on_conflict: 'ON CONFLICT (which rows are inserted tells which equal a row already there)',
  foreign_key: 'a foreign key (every row written is checked against the referenced values)',
};

const LAUNDERING: Readonly<Record<string, string>> = {
  create_table_as: 'CREATE TABLE AS',
  select_into: 'SELECT INTO',
  create_matview: 'CREATE MATERIALIZED VIEW',
  create_view: 'CREATE VIEW',
  insert_select: 'INSERT',
  update_set: 'UPDATE … SET',
  merge: 'MERGE',
  copy_to_file: 'COPY … TO a file',
  copy_to_program: 'COPY … TO PROGRAM',
  rename: 'renaming',
};

/**
 * Statements that define code PostgreSQL runs later (a body, a trigger, a rule's actions, a
 * policy's subqueries), which lineage never sees when it runs: `CREATE FUNCTION` includes
 * `CREATE PROCEDURE` and `CREATE OR REPLACE`.
 */
const DEFINES_CODE = new Set([
  'CreateFunctionStmt', 'CreateTrigStmt', 'RuleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt', 'CreateCastStmt',
  'CreateEventTrigStmt', 'CreateTransformStmt', 'CreatePLangStmt', 'CreateExtensionStmt', 'CreateConversionStmt',
]);
/** DefineStmt kinds that bind functions to names warden traces as built-ins (aggregates, operators). */
const DEFINES_CODE_TAG = /^CREATE (AGGREGATE|OPERATOR)$/;
/**
 * Renaming, moving or changing an existing function, procedure, aggregate or operator: a DBA's
 * function renamed to `upper` is what `SELECT upper()` calls while warden traces the built-in.
 */
const ALTERS_CODE = new Set(['RenameStmt', 'AlterObjectSchemaStmt', 'AlterFunctionStmt', 'AlterOperatorStmt']);
const ALTERS_CODE_TAG = /^ALTER (FUNCTION|PROCEDURE|ROUTINE|AGGREGATE|OPERATOR)$/;

function definesCode(stmt: StatementInfo): boolean {
  return DEFINES_CODE.has(stmt.nodeType)
    || (stmt.nodeType === 'DefineStmt' && DEFINES_CODE_TAG.test(stmt.commandTag))
    || (ALTERS_CODE.has(stmt.nodeType) && ALTERS_CODE_TAG.test(stmt.commandTag));
}

/**
 * DDL that stores expressions PostgreSQL evaluates later — column defaults, generated columns,
 * check constraints, domain defaults and checks, index and statistics expressions — or at once
 * over stored rows (ALTER COLUMN … TYPE … USING). A function there that warden does not know runs
 * out of lineage's sight: `CREATE TEMP TABLE t (v text DEFAULT public.f())` with a DBA's f that
 * reads protected columns filled t.v, a column no rule covers, with them on the next INSERT.
 */
const STORES_EXPRESSIONS = new Set(['CreateStmt', 'AlterTableStmt', 'CreateDomainStmt', 'AlterDomainStmt', 'IndexStmt', 'CreateStatsStmt']);
/** Sequence functions, as serial-style defaults call them: they read no table data. */
const SEQUENCE_FUNCTIONS = new Set(['nextval', 'currval']);

function storedUnknownCall(stmt: StatementInfo): string | undefined {
  if (!STORES_EXPRESSIONS.has(stmt.nodeType)) return undefined;
  return stmt.functions.find((f) => {
    const parts = f.toLowerCase().split('.');
    const sequence = SEQUENCE_FUNCTIONS.has(parts[parts.length - 1] ?? '') && (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog'));
    return !sequence && !isKnownBuiltin(parts);
  });
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);
/** System views that hold samples of table data (most common values, histograms). */
const STATISTICS = /^(pg_statistic|pg_stats|pg_statistic_ext_data|pg_stats_ext|pg_stats_ext_exprs)$/;

/**
 * A statement that reads only schema-qualified system catalogs (no statistics views, which hold
 * samples of table data) and calls only pure built-ins and catalog-introspection functions
 * cannot test protected values in its conditions, even where warden cannot trace them (psql's \d
 * queries use regular-expression operators and catalog functions).
 */
function catalogOnly(stmt: StatementInfo): boolean {
  if (stmt.relations.length === 0 || stmt.dangerousFunctions.length > 0) return false;
  for (const r of stmt.relations) {
    if (!r.schema || !SYSTEM_SCHEMAS.has(r.schema.toLowerCase()) || STATISTICS.test(r.name.toLowerCase())) return false;
  }
  // Unqualified or pg_catalog. only (isKnownBuiltin checks).
  for (const f of stmt.functions) if (!isKnownBuiltin(f.toLowerCase().split('.'))) return false;
  return true;
}

/**
 * An unqualified call of a built-in name that the target also defines outside pg_catalog (a DBA's
 * function; extension members are not listed, see catalog.ts): lineage traced it as the built-in,
 * which it may not be.
 */
function shadowedCall(stmt: StatementInfo, snap: CatalogSnapshot): { call: string; definition: string } | undefined {
  if (snap.shadowedBuiltins.size === 0) return undefined;
  for (const f of stmt.functions) {
    if (f.includes('.')) continue; // qualified: pg_catalog.x is the built-in, s.x is not traced as one
    const definition = snap.shadowedBuiltins.get(f.toLowerCase());
    if (definition !== undefined) return { call: f, definition };
  }
  return undefined;
}

function cols(c: Covered, rule: CompiledRule): string {
  return [...(c.rules.get(rule) ?? [])].sort().join(', ');
}

export function checkStatement(ctx: MaskingContext, stmt: StatementInfo | undefined): StatementCheck {
  const rules = ctx.rules.columnRules;
  if (rules.length === 0) return { verdict: { action: 'allow' }, touched: false, findings: [] };
  const findings: Finding[] = [];
  const every = (concern: Concern, reason: string): void => {
    for (const rule of rules) findings.push({ concern, rule, reason });
  };
  const covering = (concern: Concern, c: Covered, reason: (rule: CompiledRule) => string, unresolved: string): boolean => {
    for (const rule of c.rules.keys()) findings.push({ concern, rule, reason: reason(rule) });
    if (c.unresolved.length > 0) every(concern, `${unresolved} (${c.unresolved[0]})`);
    return c.rules.size > 0 || c.unresolved.length > 0;
  };
  // A statement that may write can fire triggers and run functions that read anything.
  let touched = stmt !== undefined && !stmt.readOnly;
  const snap = ctx.catalog.current();
  if (!stmt || !snap) {
    const why = !stmt ? 'the statement could not be parsed: treated as touching every protected column' : 'the catalog of the target is being read again after DDL; retry the statement';
    every('inference', why);
    every('laundering', why);
    return { verdict: verdictOf(findings), touched: true, findings };
  }
  const lin = ctx.lineageOf(stmt, snap);
  const cov = ctx.coverage(snap);

  let outputUntraceable = false;
  for (const oc of lin.columns) {
    const c = cov.outputColumn(oc);
    if (c.rules.size > 0 || c.unresolved.length > 0) touched = true;
    if (oc.unresolved && (c.rules.size > 0 || c.unresolved.length > 0)) outputUntraceable = true;
  }
  if (lin.output === 'opaque') touched = true;

  if (!lin.launderingComplete && stmt.nodeType !== 'ExecuteStmt') {
    // EXECUTE runs a statement that was itself checked when it was prepared.
    every('laundering', `${stmt.commandTag} runs code warden cannot trace, which may copy protected values`);
    touched = true;
  }
  const shadowed = shadowedCall(stmt, snap);
  if (shadowed) {
    every('laundering', `${shadowed.call}() may run ${shadowed.definition}, which the target defines besides the built-in: warden cannot trace which one runs (call pg_catalog.${shadowed.call}() to mean the built-in)`);
    touched = true;
  }
  const stored = storedUnknownCall(stmt);
  if (stored !== undefined) {
    every('laundering', `${stmt.commandTag} stores an expression calling ${stored}(), which PostgreSQL runs later out of warden's sight and which may read and copy protected values`);
    touched = true;
  }
  if (definesCode(stmt)) {
    every('laundering', `${stmt.commandTag} defines or changes code warden cannot trace, which may read and copy protected values when it runs`);
    touched = true;
  }
  const systemOnly = catalogOnly(stmt);
  if (!stmt.readOnly && outputUntraceable && !systemOnly) {
    every('laundering', 'protected values pass through code warden cannot trace in a statement that may write');
  }
  for (const l of lin.laundering) {
    const what = LAUNDERING[l.kind] ?? l.kind;
    if (l.unresolved) {
      every('laundering', `${what} copies values warden cannot trace`);
      touched = true;
    }
    for (const s of l.sources) {
      const c = cov.source(s);
      if (covering('laundering', c, (r) => `${what} copies ${cols(c, r)}`, `${what} copies a value warden cannot trace`)) touched = true;
    }
  }

  if (!lin.predicatesComplete && !systemOnly) {
    every('inference', 'a condition could not be traced (it may test protected values)');
    touched = true;
  }
  for (const p of lin.predicateColumns) {
    if (p.comparedWith === 'null') continue;
    const c = cov.source(p.column);
    const how = p.comparedWith === 'none' ? '' : ` (compared with ${p.comparedWith === 'constant' ? 'a constant' : p.comparedWith === 'parameter' ? 'a parameter' : p.comparedWith === 'pattern' ? 'a pattern' : 'a column'})`;
    if (covering('inference', c, (r) => `${CLAUSE[p.clause]} on ${cols(c, r)}${how}`, `${CLAUSE[p.clause]} on a value warden cannot trace`)) touched = true;
  }
  return { verdict: verdictOf(findings), touched, findings };
}

function verdictOf(findings: readonly Finding[]): MaskVerdict {
  const pickSetting = (f: Finding): 'allow' | 'deny' | 'hold' => (f.concern === 'inference' ? f.rule.inference : f.rule.laundering);
  const rank = { allow: 0, hold: 1, deny: 2 } as const;
  let best: Finding | undefined;
  for (const f of findings) if (!best || rank[pickSetting(f)] > rank[pickSetting(best)]) best = f;
  if (!best || pickSetting(best) === 'allow') return { action: 'allow' };
  const setting = pickSetting(best) as 'deny' | 'hold';
  return { action: setting, rule: best.rule.name, reason: `${best.reason}: ${best.concern} is ${setting === 'deny' ? 'denied' : 'held for approval'} by masking rule "${best.rule.name}"` };
}

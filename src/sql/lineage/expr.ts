// Lineage of expressions, and predicate columns of WHERE/ON/HAVING-like clauses. Anything not
// understood still yields the columns found inside it, marked unresolved.
import type { A_Expr, FuncCall, Node, SubLink, WindowDef } from 'libpg-query';
import { dotted, listItems, nameParts, strVal, unwrap } from '../ast.js';
import { AGGREGATE_FUNCTIONS, isKnownBuiltin, SET_RETURNING } from '../functions.js';
import type { Ctx } from './context.js';
import { CONSTANT, PARAM, derive, either, unresolved, withReason, type Lin } from './lin.js';
import { fieldOf, type Scope } from './scope.js';
import type { Comparison, PredicateClause, Transform } from './types.js';

type Body = Record<string, unknown>;

/** Built-in operator symbols; any other (or a schema-qualified OPERATOR()) may run user code. */
const BUILTIN_OPERATORS = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '^', '||', '~', '~*', '!~', '!~*',
  '~~', '~~*', '!~~', '!~~*', '@@', '@>', '<@', '&&', '->', '->>', '#>', '#>>', '?', '?|', '?&', '#-',
  '|/', '||/', '@', '&', '|', '#', '<<', '>>', '<->', '~=', '@?', '-|-', '&<', '&>', '<<|', '|>>',
]);
const ARITHMETIC = new Set(['+', '-', '*', '/', '%', '^', '|/', '||/', '@', '&', '|', '#', '<<', '>>']);
const COMPARISON = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~', '~*', '!~', '!~*', '~~', '~~*', '!~~', '!~~*', '@@', '@>', '<@', '&&', '?', '?|', '?&', '@?', '~=']);
const PATTERN_OPS = new Set(['~', '~*', '!~', '!~*', '~~', '~~*', '!~~', '!~~*', '@@', '@?']);
const PATTERN_KINDS = new Set(['AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_SIMILAR']);
const PATTERN_FUNCTIONS = new Set(['starts_with', 'regexp_like', 'regexp_match', 'regexp_matches', 'regexp_count', 'regexp_instr', 'regexp_substr', 'strpos', 'position', 'like_escape', 'similar_to_escape', 'jsonb_path_exists', 'jsonb_path_match']);

/** Expression nodes handled by walking their children (JSON and XML constructors and friends). */
function isGenericFamily(tag: string): boolean {
  return tag.startsWith('Json') || tag.startsWith('Xml');
}

export function expr(node: unknown, scope: Scope, ctx: Ctx): Lin {
  if (node === undefined || node === null) return CONSTANT;
  ctx.step();
  const u = unwrap(node);
  if (!u) return unresolved('expression the analyser cannot read');
  const b = u.body;
  switch (u.tag) {
    case 'ColumnRef':
      return columnRef(b.fields as Node[] | undefined, scope);
    case 'ParamRef':
      return PARAM;
    case 'A_Const':
    case 'SQLValueFunction':
    case 'SetToDefault':
    case 'MergeSupportFunc':
    case 'CurrentOfExpr':
      return CONSTANT;
    case 'TypeCast':
      return derive(keepsValue(b.typeName) ? 'cast' : 'conversion', [expr(b.arg, scope, ctx)]);
    case 'CollateClause':
    case 'NamedArgExpr':
      return expr(b.arg, scope, ctx);
    case 'A_Expr':
      return aExpr(b as A_Expr, scope, ctx);
    case 'BoolExpr':
      return derive('boolean', exprs(b.args, scope, ctx));
    case 'NullTest':
    case 'BooleanTest':
      return derive('comparison', [expr(b.arg, scope, ctx)]);
    case 'FuncCall':
      return funcCall(b as FuncCall, scope, ctx);
    case 'SubLink':
      return subLink(b as SubLink, scope, ctx).value;
    case 'CaseExpr': {
      const parts: Lin[] = [expr(b.arg, scope, ctx)];
      for (const w of (b.args as Node[] | undefined) ?? []) {
        const cw = unwrap(w)?.body ?? {};
        // CASE WHEN ssn LIKE '941%' THEN 1/0 END: the error tells what the masked value hides.
        predicate(cw.expr, 'case', scope, ctx);
        parts.push(expr(cw.expr, scope, ctx), expr(cw.result, scope, ctx));
      }
      // CASE ssn WHEN '941-74-7468' THEN …: the operand is compared with each WHEN.
      if (b.arg) ctx.predicate(parts[0]!, 'case', 'constant');
      parts.push(expr(b.defresult, scope, ctx));
      return derive('case', parts);
    }
    case 'CoalesceExpr':
    case 'MinMaxExpr':
    case 'GroupingFunc':
      return derive('function', exprs(b.args, scope, ctx));
    case 'A_ArrayExpr':
      return derive('array', exprs(b.elements, scope, ctx));
    case 'RowExpr':
      return derive('row', exprs(b.args, scope, ctx));
    case 'A_Indirection':
      return indirection(b, scope, ctx);
    case 'MultiAssignRef':
      return expr(b.source, scope, ctx);
    case 'List':
      return either(exprs(listItems(node), scope, ctx));
    default: {
      const children = generic(b, scope, ctx);
      if (isGenericFamily(u.tag)) {
        const t: Transform = u.tag.startsWith('Xml') ? 'xml' : 'json';
        const lin = derive(t, children);
        return u.tag.endsWith('Agg') ? derive('aggregate', [lin]) : lin;
      }
      return withReason(derive('function', children), `unsupported expression ${u.tag}`);
    }
  }
}

/**
 * Target types a cast to which keeps a text value as it is: unbounded text types. Any other cast
 * may change it — `card_number::varchar(8)` keeps the digits a partial mask of the last four
 * hides, `::char` keeps the first character — so it counts as a computation.
 */
const VALUE_KEEPING_TYPES = new Set(['text', 'varchar', 'bpchar']);

function keepsValue(typeName: unknown): boolean {
  const t = typeName as { names?: Node[]; typmods?: Node[]; arrayBounds?: Node[] } | undefined;
  const parts = nameParts(t?.names);
  const name = parts[parts.length - 1];
  if (name === undefined || (parts.length === 2 && parts[0] !== 'pg_catalog') || parts.length > 2) return false;
  return VALUE_KEEPING_TYPES.has(name) && (t?.typmods?.length ?? 0) === 0 && (t?.arrayBounds?.length ?? 0) === 0;
}

export function exprs(list: unknown, scope: Scope, ctx: Ctx): Lin[] {
  return (Array.isArray(list) ? list : []).map((n) => expr(n, scope, ctx));
}

/** Lineage of every expression inside a node the analyser has no rule for. */
function generic(body: Body, scope: Scope, ctx: Ctx): Lin[] {
  const out: Lin[] = [];
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    const u = unwrap(v);
    if (u) {
      if (u.tag === 'SelectStmt') {
        const shape = ctx.query(v as Node, scope, scope.ctes);
        out.push(derive('subquery', shape.cols.map((c) => c.lin)));
        if (!shape.complete) out.push(unresolved('subquery with columns that cannot be traced'));
      } else if (u.tag !== 'TypeName' && u.tag !== 'String') {
        out.push(expr(v, scope, ctx));
      }
      return;
    }
    for (const x of Object.values(v)) visit(x);
  };
  for (const [k, v] of Object.entries(body)) if (k !== 'typeName' && k !== 'returning' && k !== 'output') visit(v);
  return out;
}

function columnRef(fields: readonly Node[] | undefined, scope: Scope): Lin {
  const list = fields ?? [];
  const star = list.length > 0 && unwrap(list[list.length - 1])?.tag === 'A_Star';
  const parts = nameParts(star ? list.slice(0, -1) : list);
  if (parts.length !== (star ? list.length - 1 : list.length)) return unresolved('column reference the analyser cannot read');
  if (star) {
    if (parts.length === 0) return scope.allRows();
    return scope.wholeRowOf(parts) ?? unresolved(`no FROM item named "${parts.join('.')}"`);
  }
  return scope.column(parts);
}

function opName(name: readonly Node[] | undefined): { op: string; qualified: boolean } {
  const parts = nameParts(name);
  return { op: parts[parts.length - 1] ?? '', qualified: parts.length > 1 };
}

function rightSide(rexpr: unknown, scope: Scope, ctx: Ctx): Lin {
  if (unwrap(rexpr)?.tag === 'List') return either(exprs(listItems(rexpr), scope, ctx));
  return expr(rexpr, scope, ctx);
}

function aExpr(b: A_Expr, scope: Scope, ctx: Ctx): Lin {
  const inputs = [expr(b.lexpr, scope, ctx), rightSide(b.rexpr, scope, ctx)];
  if (b.kind === 'AEXPR_NULLIF') return derive('function', inputs);
  if (b.kind !== 'AEXPR_OP') return derive('comparison', inputs);
  const { op, qualified } = opName(b.name);
  const t: Transform = op === '||' ? 'concat' : ARITHMETIC.has(op) ? 'arithmetic' : COMPARISON.has(op) ? 'comparison' : 'operator';
  const lin = derive(t, inputs);
  if (qualified || !BUILTIN_OPERATORS.has(op)) return withReason(lin, `operator ${op} is not a known built-in`);
  return lin;
}

function funcCall(f: FuncCall, scope: Scope, ctx: Ctx): Lin {
  const parts = nameParts(f.funcname);
  const own = parts[parts.length - 1] ?? '';
  const inputs: Lin[] = exprs(f.args, scope, ctx);
  for (const s of f.agg_order ?? []) inputs.push(expr(unwrap(s)?.body.node, scope, ctx));
  if (f.agg_filter) {
    predicate(f.agg_filter, 'case', scope, ctx);
    inputs.push(expr(f.agg_filter, scope, ctx));
  }
  const aggregate = AGGREGATE_FUNCTIONS.has(own) || f.agg_star === true || f.agg_distinct === true || f.agg_within_group === true || f.agg_filter !== undefined || (f.agg_order?.length ?? 0) > 0;
  let t: Transform = aggregate ? 'aggregate' : 'function';
  if (f.over) {
    t = 'window';
    inputs.push(windowLin(f.over, scope, ctx));
  }
  const lin = derive(t, inputs);
  const known = f.funcformat === 'COERCE_SQL_SYNTAX' || isKnownBuiltin(parts);
  // generate_series(1, substr(ssn, 1, 3)::int) returns 941 rows: the count is the value. Any
  // function warden does not know may return a set too (pg_options_to_table(array_fill(…))).
  if (SET_RETURNING.has(own) || !known) ctx.predicate(either(inputs.length > 0 ? inputs : [CONSTANT]), 'set_returning', 'none');
  if (known) return lin;
  return withReason(lin, `function ${dotted(parts)} is not a known built-in: it may read data the query does not show`);
}

/** PARTITION BY / ORDER BY of a window (inline or named), recorded as predicate columns too. */
export function windowLin(w: WindowDef, scope: Scope, ctx: Ctx): Lin {
  const parts: Lin[] = [];
  if (w.refname) parts.push(scope.windows.get(w.refname) ?? unresolved(`window "${w.refname}" not found`));
  for (const p of w.partitionClause ?? []) parts.push(expr(p, scope, ctx));
  for (const s of w.orderClause ?? []) parts.push(expr(unwrap(s)?.body.node, scope, ctx));
  for (const o of [w.startOffset, w.endOffset]) if (o) parts.push(expr(o, scope, ctx));
  const lin = either(parts.length > 0 ? parts : [CONSTANT]);
  ctx.predicate(lin, 'window', 'none');
  return lin;
}

function indirection(b: Body, scope: Scope, ctx: Ctx): Lin {
  const ind = (b.indirection as Node[] | undefined) ?? [];
  let rest = ind;
  let lin: Lin | undefined;
  // (t).col and (t.*).col on a FROM item pick that column exactly.
  const ref = unwrap(b.arg);
  const firstField = strVal(ind[0]);
  if (ref?.tag === 'ColumnRef' && firstField !== undefined) {
    const fields = (ref.body.fields as Node[] | undefined) ?? [];
    const star = unwrap(fields[fields.length - 1])?.tag === 'A_Star';
    const qualifier = nameParts(star ? fields.slice(0, -1) : fields);
    if (qualifier.length > 0 && scope.wholeRowOf(qualifier) && (star || isRelationOnly(qualifier, scope))) {
      lin = scope.column([...qualifier, firstField]);
      rest = ind.slice(1);
    }
  }
  lin ??= expr(b.arg, scope, ctx);
  for (const i of rest) {
    const field = strVal(i);
    const iu = unwrap(i);
    if (field !== undefined) lin = fieldOf(lin, [field]);
    else if (iu?.tag === 'A_Indices') lin = derive('subscript', [lin, expr(iu.body.lidx, scope, ctx), expr(iu.body.uidx, scope, ctx)]);
  }
  return lin;
}

/** `(name).x`: name is a relation when no column of that name is in scope. */
function isRelationOnly(qualifier: readonly string[], scope: Scope): boolean {
  if (qualifier.length > 1) return true;
  const asColumn = scope.column(qualifier);
  return asColumn.derivation === 'whole_row';
}

interface SubLinkParts {
  value: Lin;
  test?: Lin;
  sub: Lin;
}

function subLink(s: SubLink, scope: Scope, ctx: Ctx): SubLinkParts {
  const shape = ctx.query(s.subselect, scope, scope.ctes);
  const cols = shape.cols.map((c) => c.lin);
  let sub = either(cols.length > 0 ? cols : [CONSTANT]);
  if (!shape.complete) sub = withReason(sub, 'subquery with columns that cannot be traced');
  switch (s.subLinkType) {
    case 'EXISTS_SUBLINK':
      return { value: derive('subquery', shape.complete ? [] : [unresolvedOnly(sub)]), sub };
    case 'EXPR_SUBLINK':
    case 'MULTIEXPR_SUBLINK':
      return { value: derive('subquery', [sub]), sub };
    case 'ARRAY_SUBLINK':
      return { value: derive('array', [derive('subquery', [sub])]), sub };
    default: {
      const test = expr(s.testexpr, scope, ctx);
      return { value: derive('comparison', [test, derive('subquery', [sub])]), test, sub };
    }
  }
}

function unresolvedOnly(lin: Lin): Lin {
  return { ...CONSTANT, reasons: lin.reasons, derivation: 'derived' };
}

function nature(other: Lin | undefined, pattern: boolean): Comparison {
  if (!other) return 'none';
  if (other.sources.size > 0 || other.reasons.length > 0) return 'column';
  if (pattern) return 'pattern';
  return other.params ? 'parameter' : 'constant';
}

/** Records the predicate columns of a boolean clause (WHERE, ON, HAVING, WHEN …). */
export function predicate(node: unknown, clause: PredicateClause, scope: Scope, ctx: Ctx, negated = false): void {
  if (node === undefined || node === null) return;
  ctx.step();
  const u = unwrap(node);
  if (!u) {
    ctx.sideReason(`${clause} clause the analyser cannot read`);
    return;
  }
  const b = u.body;
  switch (u.tag) {
    case 'BoolExpr': {
      const not = b.boolop === 'NOT_EXPR';
      for (const a of (b.args as Node[] | undefined) ?? []) predicate(a, clause, scope, ctx, not !== negated);
      return;
    }
    case 'A_Expr': {
      const e = b as A_Expr;
      const left = e.lexpr ? expr(e.lexpr, scope, ctx) : undefined;
      const right = e.rexpr ? rightSide(e.rexpr, scope, ctx) : undefined;
      const { op, qualified } = opName(e.name);
      if (e.kind === 'AEXPR_OP' && (qualified || !BUILTIN_OPERATORS.has(op))) ctx.sideReason(`operator ${op} is not a known built-in`);
      const pattern = PATTERN_KINDS.has(e.kind ?? '') || (e.kind === 'AEXPR_OP' && PATTERN_OPS.has(op));
      if (left) ctx.predicate(left, clause, nature(right, pattern));
      if (right) ctx.predicate(right, clause, nature(left, false));
      return;
    }
    case 'NullTest': {
      // `IS NULL` of the column itself selects rows whose value is NULL, which is never masked.
      // Of a value computed from it, it tells what the computation made NULL: nullif(ssn,
      // '941-74-7468') IS NULL is an equality test, (ssn > '95' OR NULL) IS NULL a range test.
      // `IS NOT NULL` (or NOT … IS NULL) in WHERE or ON selects rows with values, and an index on
      // the column can serve it: the rows then come back in the column's order, and probe rows the
      // agent inserts show where each value falls (a binary search).
      const arg = expr(b.arg, scope, ctx);
      const itself = arg.derivation === 'direct' || (arg.derivation === 'derived' && [...arg.transforms].every((t) => t === 'cast'));
      const isNull = (b.nulltesttype === 'IS_NULL') !== negated || (clause !== 'where' && clause !== 'join');
      ctx.predicate(arg, clause, itself && isNull ? 'null' : 'none');
      return;
    }
    case 'BooleanTest':
      ctx.predicate(expr(b.arg, scope, ctx), clause, 'constant');
      return;
    case 'SubLink': {
      const parts = subLink(b as SubLink, scope, ctx);
      if (parts.test) {
        ctx.predicate(parts.test, clause, nature(parts.sub, false));
        ctx.predicate(parts.sub, clause, nature(parts.test, false));
      } else {
        ctx.predicate(parts.value, clause, 'none');
      }
      return;
    }
    case 'FuncCall': {
      const f = b as FuncCall;
      const args = exprs(f.args, scope, ctx);
      const own = nameParts(f.funcname).pop() ?? '';
      const pattern = PATTERN_FUNCTIONS.has(own);
      args.forEach((a, i) => {
        const others = args.filter((_, j) => j !== i);
        ctx.predicate(a, clause, others.length === 0 ? 'none' : nature(either(others), pattern));
      });
      if (f.funcformat !== 'COERCE_SQL_SYNTAX' && !isKnownBuiltin(nameParts(f.funcname))) {
        ctx.sideReason(`function ${dotted(nameParts(f.funcname))} in ${clause} may read data the query does not show`);
      }
      return;
    }
    default:
      ctx.predicate(expr(node, scope, ctx), clause, 'none');
  }
}

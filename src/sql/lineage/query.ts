// Lineage of queries: SELECT (FROM items, target list, set operations, VALUES), WITH (recursive
// CTEs by fixed point), and the clauses whose columns steer the result (predicate columns).
import type { Alias, CommonTableExpr, FuncCall, JoinExpr, Node, RangeFunction, RangeSubselect, RangeVar, ResTarget, SelectStmt, WindowDef } from 'libpg-query';
import { as, listItems, nameParts, strVal, unwrap } from '../ast.js';
import { isKnownBuiltin, KEY_VALUE_SET_RETURNING, RECORD_SET_RETURNING } from '../functions.js';
import type { Ctx, Shape } from './context.js';
import { expr, exprs, predicate, windowLin } from './expr.js';
import { CONSTANT, derive, direct, either, sameLin, unresolved, withReason, type Lin } from './lin.js';
import { figureName } from './names.js';
import { CteEnv, Scope, type Col, type CteBinding, type RelItem } from './scope.js';

/** Fixed-point rounds for a recursive CTE before giving up (sources only grow, so it converges). */
const MAX_RECURSION_ROUNDS = 32;

type Body = Record<string, unknown>;

/** What a FROM element contributes: its columns for `*`, and the items it names. */
export interface FromOut {
  cols: Col[];
  complete: boolean;
  items: RelItem[];
}

export class QueryAnalyzer {
  constructor(private readonly ctx: Ctx) {
    ctx.query = (node, parent, ctes) => this.query(node, parent, ctes);
  }

  /** A query node at a nested level: SELECT, or INSERT/UPDATE/DELETE/MERGE with RETURNING. */
  query(node: Node | undefined, parent: Scope | undefined, ctes: CteEnv): Shape {
    this.ctx.step();
    const u = unwrap(node);
    if (u?.tag === 'SelectStmt') return this.select(u.body as SelectStmt, parent, ctes);
    if (u && this.dml) return this.dml(u.tag, u.body, parent, ctes);
    return { cols: [], complete: false };
  }

  /** Set by the statement analyser: DML (in CTEs) with RETURNING. */
  dml: ((tag: string, body: Body, parent: Scope | undefined, ctes: CteEnv) => Shape) | undefined;

  /** Adds the WITH entries to a new CTE environment. */
  withClause(w: SelectStmt['withClause'], parent: Scope | undefined, outer: CteEnv): CteEnv {
    if (!w?.ctes?.length) return outer;
    const env = new CteEnv(outer);
    for (const n of w.ctes) {
      const cte = as<CommonTableExpr>(n, 'CommonTableExpr');
      if (!cte?.ctename) continue;
      const aliases = nameParts(cte.aliascolnames);
      if (w.recursive) this.recursiveCte(cte, aliases, parent, env);
      else env.define(cte.ctename, bind(this.query(cte.ctequery, parent, env), aliases));
    }
    return env;
  }

  private recursiveCte(cte: CommonTableExpr, aliases: string[], parent: Scope | undefined, env: CteEnv): void {
    const name = cte.ctename!;
    const q = as<SelectStmt>(cte.ctequery, 'SelectStmt');
    // Seed with the non-recursive term, then iterate the whole query until nothing changes.
    const seedNode = q && q.op && q.op !== 'SETOP_NONE' && q.larg ? ({ SelectStmt: q.larg } as Node) : cte.ctequery;
    const binding: CteBinding = { cols: [], complete: false, why: 'recursive CTE being resolved' };
    env.define(name, binding);
    const seed = bind(this.query(seedNode, parent, env), aliases);
    binding.cols = seed.cols;
    binding.complete = seed.complete;
    for (let round = 0; round < MAX_RECURSION_ROUNDS; round++) {
      const next = bind(this.query(cte.ctequery, parent, env), aliases);
      const merged = next.cols.map((c, i) => {
        const old = binding.cols[i];
        return old ? { name: c.name, lin: either([old.lin, c.lin]) } : c;
      });
      const stable = merged.length === binding.cols.length && merged.every((c, i) => sameLin(c.lin, binding.cols[i]!.lin));
      binding.cols = merged;
      binding.complete = binding.complete && next.complete;
      if (stable) return;
    }
    binding.cols = binding.cols.map((c) => ({ name: c.name, lin: withReason(c.lin, `recursive CTE "${name}" did not settle`) }));
  }

  select(s: SelectStmt, parent: Scope | undefined, outer: CteEnv): Shape {
    const ctes = this.withClause(s.withClause, parent, outer);
    if (s.op && s.op !== 'SETOP_NONE') return this.setOperation(s, parent, ctes);
    const scope = new Scope(parent, ctes);
    if (s.valuesLists?.length) return this.values(s.valuesLists, scope);

    const froms: FromOut[] = [];
    for (const f of s.fromClause ?? []) {
      const out = this.from(f, scope);
      for (const i of out.items) scope.add(i);
      froms.push(out);
    }
    predicate(s.whereClause, 'where', scope, this.ctx);

    for (const w of s.windowClause ?? []) {
      const def = as<WindowDef>(w, 'WindowDef');
      if (def?.name) scope.windows.set(def.name, windowLin(def, scope, this.ctx));
    }

    const { cols, complete } = this.projection(s.targetList, scope, froms);

    for (const g of s.groupClause ?? []) this.grouping(g, scope, cols);
    predicate(s.havingClause, 'having', scope, this.ctx);
    for (const d of s.distinctClause ?? []) {
      if (unwrap(d)) this.ctx.predicate(this.outputOrInput(d, scope, cols, true), 'distinct_on', 'none');
      // Plain DISTINCT (an empty entry) compares whole output rows: how many come back tells
      // which values are equal, as GROUP BY would.
      else for (const c of cols) this.ctx.predicate(c.lin, 'distinct_on', 'none');
    }
    this.orderAndLimit(s, scope, cols);
    return { cols, complete };
  }

  /** A select list or RETURNING list, with `*` and `t.*` expanded over `froms`. */
  projection(list: readonly Node[] | undefined, scope: Scope, froms: readonly FromOut[]): { cols: Col[]; complete: boolean } {
    const cols: Col[] = [];
    let complete = true;
    for (const t of list ?? []) {
      const rt = as<ResTarget>(t, 'ResTarget');
      if (!rt) continue;
      const expanded = this.star(rt.val, scope, froms);
      if (expanded) {
        cols.push(...expanded.cols);
        complete &&= expanded.complete;
        continue;
      }
      cols.push({ name: rt.name ?? figureName(rt.val), lin: expr(rt.val, scope, this.ctx) });
    }
    return { cols, complete };
  }

  private orderAndLimit(s: SelectStmt, scope: Scope, cols: readonly Col[]): void {
    for (const sb of s.sortClause ?? []) {
      const n = unwrap(sb)?.body.node;
      this.ctx.predicate(this.outputOrInput(n, scope, cols, true), 'order_by', 'none');
    }
    for (const l of [s.limitCount, s.limitOffset]) if (l) this.ctx.predicate(expr(l, scope, this.ctx), 'limit', 'none');
  }

  /** GROUP BY item: input column first (PostgreSQL's rule), then output name or position. */
  private grouping(g: Node, scope: Scope, cols: readonly Col[]): void {
    const u = unwrap(g);
    if (u?.tag === 'GroupingSet') {
      for (const c of (u.body.content as Node[] | undefined) ?? []) this.grouping(c, scope, cols);
      return;
    }
    if (u?.tag === 'List') {
      for (const c of listItems(g)) this.grouping(c, scope, cols);
      return;
    }
    this.ctx.predicate(this.outputOrInput(g, scope, cols, false), 'group_by', 'none');
  }

  /**
   * ORDER BY / DISTINCT ON / GROUP BY item: an integer is an output position, a bare name may
   * be an output column (ORDER BY prefers output names, GROUP BY input columns).
   */
  private outputOrInput(n: unknown, scope: Scope, cols: readonly Col[], outputFirst: boolean): Lin {
    const u = unwrap(n);
    const ival = u?.tag === 'A_Const' ? (u.body as { ival?: { ival?: number } }).ival : undefined;
    if (ival) {
      const col = cols[(ival.ival ?? 0) - 1];
      return col ? col.lin : unresolved('ORDER/GROUP BY position outside the select list');
    }
    const fields = u?.tag === 'ColumnRef' ? ((u.body.fields as Node[] | undefined) ?? []) : [];
    const bare = fields.length === 1 ? strVal(fields[0]) : undefined;
    const byName = bare !== undefined ? cols.filter((c) => c.name === bare) : [];
    if (bare !== undefined && byName.length > 0 && outputFirst) return either(byName.map((c) => c.lin));
    const input = expr(n, scope, this.ctx);
    if (bare !== undefined && byName.length > 0 && input.reasons.length > 0) return either(byName.map((c) => c.lin));
    return input;
  }

  private setOperation(s: SelectStmt, parent: Scope | undefined, ctes: CteEnv): Shape {
    const left = s.larg ? this.select(s.larg, parent, ctes) : { cols: [], complete: false };
    const right = s.rarg ? this.select(s.rarg, parent, ctes) : { cols: [], complete: false };
    const n = Math.max(left.cols.length, right.cols.length);
    const cols: Col[] = [];
    for (let i = 0; i < n; i++) {
      const l = left.cols[i];
      const r = right.cols[i];
      const branches = [l?.lin, r?.lin].filter((x): x is Lin => x !== undefined);
      let lin = either(branches);
      if (!l || !r) lin = withReason(lin, 'set operation branches with different column counts');
      cols.push({ name: l?.name ?? r?.name ?? '?column?', lin });
      // INTERSECT and EXCEPT compare the branches row by row; so does UNION without ALL, which
      // drops duplicates: its row count tells whether a guess equals a protected value, and the
      // sort it may use to find them orders the rows by it.
      if ((s.op !== 'SETOP_UNION' || s.all !== true) && l && r) {
        this.ctx.predicate(l.lin, 'set_operation', comparisonWith(r.lin));
        this.ctx.predicate(r.lin, 'set_operation', comparisonWith(l.lin));
      }
    }
    const complete = left.complete && right.complete && left.cols.length === right.cols.length;
    // ORDER BY / LIMIT of a set operation refer to its output columns.
    this.orderAndLimit(s, new Scope(parent, ctes), cols);
    return { cols, complete };
  }

  private values(lists: readonly Node[], scope: Scope): Shape {
    const rows = lists.map((l) => exprs(listItems(l), scope, this.ctx));
    const width = Math.max(0, ...rows.map((r) => r.length));
    const cols: Col[] = [];
    for (let i = 0; i < width; i++) {
      const cells = rows.map((r) => r[i] ?? CONSTANT);
      cols.push({ name: `column${i + 1}`, lin: either(cells) });
    }
    return { cols, complete: true };
  }

  /** Expands `*` / `t.*` in a target list; undefined when the entry is not a star. */
  private star(val: unknown, scope: Scope, froms: readonly FromOut[]): { cols: Col[]; complete: boolean } | undefined {
    const ref = as<{ fields?: Node[] }>(val, 'ColumnRef');
    const fields = ref?.fields ?? [];
    if (fields.length === 0 || unwrap(fields[fields.length - 1])?.tag !== 'A_Star') return undefined;
    const qualifier = nameParts(fields.slice(0, -1));
    if (qualifier.length === 0) {
      if (froms.length === 0) return { cols: [unresolvedCol('*', 'SELECT * without FROM')], complete: false };
      const cols: Col[] = [];
      let complete = true;
      for (const f of froms) {
        cols.push(...f.cols);
        if (!f.complete) {
          complete = false;
          cols.push(unresolvedCol('*', `* covers ${describeFrom(f)} whose columns cannot be traced`, f));
        }
      }
      return { cols, complete };
    }
    const item = findQualified(scope, qualifier);
    if (!item) return { cols: [unresolvedCol('*', `no FROM item named "${qualifier.join('.')}"`)], complete: false };
    if (item.complete) return { cols: [...item.cols], complete: true };
    const why = `${qualifier.join('.')}.* covers columns that cannot be traced`;
    return { cols: [...item.cols, unresolvedCol('*', why, { cols: [], complete: false, items: [item] })], complete: false };
  }

  /** One FROM element. Items are added by the caller after the element is analysed. */
  from(node: Node, scope: Scope): FromOut {
    this.ctx.step();
    const u = unwrap(node);
    switch (u?.tag) {
      case 'RangeVar':
        return this.rangeVar(u.body as RangeVar, scope);
      case 'RangeSubselect': {
        const rs = u.body as RangeSubselect;
        const parent = rs.lateral ? scope.lateralView() : scope.parent;
        const shape = this.query(rs.subquery, parent, scope.ctes);
        return named(rs.alias, renamed(shape.cols, rs.alias), shape.complete, 'a subquery');
      }
      case 'RangeFunction':
        return this.rangeFunction(u.body as RangeFunction, scope);
      case 'JoinExpr':
        return this.join(u.body as JoinExpr, scope);
      case 'RangeTableSample': {
        const inner = this.from(u.body.relation as Node, scope);
        for (const a of (u.body.args as Node[] | undefined) ?? []) expr(a, scope, this.ctx);
        return inner;
      }
      case 'RangeTableFunc':
      case 'JsonTable':
        return this.tableFunction(u.tag, u.body, scope);
      default:
        return { cols: [], complete: false, items: [item(undefined, [], false, { why: `unsupported FROM item ${u?.tag ?? '?'}` })] };
    }
  }

  private rangeVar(rv: RangeVar, scope: Scope): FromOut {
    const relname = rv.relname ?? '';
    const cte = rv.schemaname ? undefined : scope.ctes.lookup(relname);
    if (cte) {
      const cols = renamed(cte.cols, rv.alias);
      const refname = rv.alias?.aliasname ?? relname;
      const why = cte.why ?? `CTE "${relname}" has columns that cannot be traced`;
      return { cols, complete: cte.complete, items: [item(refname, cols, cte.complete, { why })] };
    }
    const names = this.ctx.catalog.columnsOf(rv.schemaname, relname);
    const refname = rv.alias?.aliasname ?? relname;
    const table = rv.schemaname ? { schema: rv.schemaname, table: relname } : { table: relname };
    if (!names) {
      const extra: Partial<RelItem> = { unknownRelation: table, why: 'relation unknown to the catalog' };
      if (!rv.alias && rv.schemaname) Object.assign(extra, { schema: rv.schemaname });
      return { cols: [], complete: false, items: [item(refname, [], false, extra)] };
    }
    const cols = renamed(
      names.map((c) => ({ name: c, lin: direct({ ...table, column: c }) })),
      rv.alias,
    );
    const extra: Partial<RelItem> = !rv.alias && rv.schemaname ? { schema: rv.schemaname } : {};
    // A name that could mean relations with different columns: the columns listed are a guess,
    // good for columns named one by one (covered over every candidate), not for * or a whole row.
    const known = !this.ctx.catalog.ambiguous?.(rv.schemaname, relname);
    if (!known) Object.assign(extra, { unknownRelation: table, why: 'the name could mean relations with different columns' });
    return { cols, complete: known, items: [item(refname, cols, known, extra)] };
  }

  private rangeFunction(rf: RangeFunction, scope: Scope): FromOut {
    const view = scope.lateralView(); // functions in FROM may always refer to earlier items
    const cols: Col[] = [];
    let complete = true;
    let scalar = true;
    const calls = rf.functions ?? [];
    for (const entry of calls) {
      const [call, defs] = listItems(entry);
      const parts = nameParts(as<FuncCall>(call, 'FuncCall')?.funcname);
      const own = parts[parts.length - 1] ?? '?column?';
      // expr() marks calls of functions that are not known built-ins unresolved.
      const lin = expr(call, view, this.ctx);
      const deflist = [...listItems(defs), ...(calls.length === 1 ? (rf.coldeflist ?? []) : [])];
      const defNames = deflist.map((d) => (unwrap(d)?.body as { colname?: string } | undefined)?.colname).filter((n): n is string => !!n);
      const pure = isKnownBuiltin(parts);
      if (defNames.length > 0) {
        scalar = false;
        for (const n of defNames) cols.push({ name: n, lin });
      } else if (pure && KEY_VALUE_SET_RETURNING.has(own)) {
        scalar = false;
        cols.push({ name: 'key', lin }, { name: 'value', lin });
      } else if (pure && !RECORD_SET_RETURNING.has(own)) {
        cols.push({ name: own, lin });
      } else {
        complete = false; // a function whose result columns are not known here
        scalar = false;
        cols.push(...nameParts(rf.alias?.colnames).slice(cols.length).map((n) => ({ name: n, lin: withReason(lin, `columns of ${own}() cannot be traced`) })));
      }
    }
    if (rf.ordinality) cols.push({ name: 'ordinality', lin: CONSTANT });
    const refname = rf.alias?.aliasname ?? nameParts(as<FuncCall>(listItems(calls[0])[0], 'FuncCall')?.funcname).pop();
    let out = renamed(cols, rf.alias);
    // A single scalar function's column is named after the alias (FROM generate_series(1, 3) AS g).
    if (calls.length === 1 && scalar && complete && rf.alias?.aliasname && nameParts(rf.alias.colnames).length === 0 && out[0]) {
      out = [{ name: rf.alias.aliasname, lin: out[0].lin }, ...out.slice(1)];
    }
    return { cols: out, complete, items: [item(refname, out, complete, { why: 'a function result that cannot be traced' })] };
  }

  private tableFunction(tag: string, b: Body, scope: Scope): FromOut {
    const view = scope.lateralView();
    const inputs = [expr(b.docexpr, view, this.ctx), expr(b.rowexpr, view, this.ctx)];
    const ctxItem = b.context_item as { raw_expr?: Node } | undefined;
    if (ctxItem?.raw_expr) inputs.push(expr(ctxItem.raw_expr, view, this.ctx));
    for (const p of (b.passing as Node[] | undefined) ?? []) inputs.push(expr(unwrap(p)?.body.val ?? p, view, this.ctx));
    const lin = derive(tag === 'JsonTable' ? 'json' : 'xml', inputs);
    // How many rows the document yields depends on it, as for a set-returning function.
    this.ctx.predicate(either(inputs), 'set_returning', 'none');
    const names: string[] = [];
    const gather = (list: unknown): void => {
      for (const c of Array.isArray(list) ? list : []) {
        const cb = unwrap(c)?.body as { colname?: string; name?: string; columns?: Node[]; coltype?: string } | undefined;
        if (!cb) continue;
        if (cb.coltype === 'JTC_NESTED') gather(cb.columns);
        else if (cb.colname ?? cb.name) names.push((cb.colname ?? cb.name)!);
      }
    };
    gather(b.columns);
    const alias = b.alias as Alias | undefined;
    return named(alias, renamed(names.map((n) => ({ name: n, lin })), alias), true, 'a table function');
  }

  private join(j: JoinExpr, scope: Scope): FromOut {
    const left = this.from(j.larg as Node, scope);
    for (const i of left.items) scope.add(i);
    // The right side may be LATERAL; it sees the left side's items through the scope.
    const right = this.from(j.rarg as Node, scope);
    for (const i of right.items) scope.add(i);
    predicate(j.quals, 'join', scope, this.ctx);

    let using = nameParts(j.usingClause);
    if (j.isNatural) {
      if (left.complete && right.complete) {
        const rightNames = new Set(right.cols.map((c) => c.name));
        using = [...new Set(left.cols.map((c) => c.name).filter((n) => rightNames.has(n)))];
      } else {
        using = [];
      }
    }
    const merged: Col[] = using.map((name) => {
      const sides = [left, right].map((s) => {
        const hit = s.cols.filter((c) => c.name === name).map((c) => c.lin);
        return hit.length > 0 ? either(hit) : unresolved(`USING column "${name}" cannot be traced`);
      });
      if (using.length > 0) this.ctx.predicate(either(sides), 'join', 'column');
      return { name, lin: either(sides) };
    });
    const rest = (s: FromOut): Col[] => s.cols.filter((c) => !using.includes(c.name));
    const cols = [...merged, ...rest(left), ...rest(right)];
    const complete = left.complete && right.complete;
    for (const i of [...left.items, ...right.items]) {
      i.unqualified = false;
      if (j.alias) i.qualified = false;
    }
    const items = [...left.items, ...right.items];
    const joinItem = item(j.alias?.aliasname, renamed(cols, j.alias), complete, { why: 'a join with columns that cannot be traced' });
    joinItem.qualified = j.alias !== undefined;
    items.push(joinItem);
    if (j.join_using_alias?.aliasname) {
      const u = item(j.join_using_alias.aliasname, merged, true, {});
      u.unqualified = false;
      items.push(u);
    }
    // Remove what the join adds before the caller adds everything again in order.
    scope.items.splice(scope.items.length - left.items.length - right.items.length);
    return { cols: renamed(cols, j.alias), complete, items };
  }
}

export function item(refname: string | undefined, cols: readonly Col[], complete: boolean, extra: Partial<RelItem>): RelItem {
  return { refname, cols, complete, qualified: true, unqualified: true, ...extra };
}

function named(alias: Alias | undefined, cols: Col[], complete: boolean, what: string, fallbackName?: string): FromOut {
  const refname = alias?.aliasname ?? fallbackName;
  return { cols, complete, items: [item(refname, cols, complete, { why: `${what} with columns that cannot be traced` })] };
}

/** Applies an alias column list: the first names replace the first columns. */
function renamed(cols: readonly Col[], alias: Alias | undefined): Col[] {
  const names = nameParts(alias?.colnames);
  if (names.length === 0) return [...cols];
  return cols.map((c, i) => (i < names.length ? { name: names[i]!, lin: c.lin } : c));
}

function bind(shape: Shape, aliases: readonly string[]): CteBinding {
  const cols = shape.cols.map((c, i) => (i < aliases.length ? { name: aliases[i]!, lin: c.lin } : c));
  return { cols, complete: shape.complete };
}

function findQualified(scope: Scope, qualifier: readonly string[]): RelItem | undefined {
  const refname = qualifier[qualifier.length - 1];
  const schema = qualifier.length >= 2 ? qualifier[qualifier.length - 2] : undefined;
  const hits = scope.items.filter((i) => i.qualified && i.refname === refname && (schema === undefined || i.schema === undefined || i.schema === schema));
  return hits[hits.length - 1];
}

function describeFrom(f: FromOut): string {
  const names = f.items.filter((i) => !i.complete).map((i) => (i.refname ? `"${i.refname}"` : 'a FROM item'));
  return names.join(', ') || 'a FROM item';
}

function unresolvedCol(name: string, why: string, from?: FromOut): Col {
  const hints = (from?.items ?? []).flatMap((i) => (i.unknownRelation ? [{ ...i.unknownRelation, column: '*' }] : []));
  return { name, lin: unresolved(why, hints) };
}

function comparisonWith(other: Lin): 'column' | 'parameter' | 'constant' {
  if (other.sources.size > 0 || other.reasons.length > 0) return 'column';
  return other.params ? 'parameter' : 'constant';
}

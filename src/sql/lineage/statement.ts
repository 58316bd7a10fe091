// lineage(): per statement, the lineage of its result columns (SELECT, RETURNING, COPY … TO
// STDOUT, SHOW, EXPLAIN), its predicate columns, and what it copies elsewhere (laundering).
import type { CopyStmt, Node, RangeVar, ResTarget, ReturningClause, SelectStmt } from 'libpg-query';
import { as, nameParts, rangeVarOf, unwrap } from '../ast.js';
import { kindAndTag } from '../kinds.js';
import type { StatementInfo } from '../types.js';
import { BudgetExceeded, Ctx, type Shape } from './context.js';
import { expr, predicate } from './expr.js';
import { CONSTANT, direct, either, sourceKey, type Lin } from './lin.js';
import { item, QueryAnalyzer, type FromOut } from './query.js';
import { CteEnv, Scope, type Col, type RelItem } from './scope.js';
import type { CatalogView, LaunderingKind, LineageOptions, LineageResult, OutputColumn } from './types.js';

type Body = Record<string, unknown>;

const DEFAULT_MAX_STEPS = 100_000;

/** Utility statements that return rows we cannot describe here. */
const OPAQUE = new Set(['ExecuteStmt', 'FetchStmt', 'CallStmt']);

/** Statements that run code lineage cannot see, so may copy data anywhere. */
const RUNS_UNSEEN_CODE = new Set(['ExecuteStmt', 'CallStmt', 'DoStmt']);

function isStatementInfo(x: StatementInfo | Node): x is StatementInfo {
  return typeof (x as StatementInfo).nodeType === 'string' && (x as StatementInfo).tree !== undefined;
}

/**
 * Lineage of one statement against a catalog. Pure and synchronous. Whatever cannot be traced is
 * reported as unresolved (per column, per laundering entry, or `output: 'opaque'`), never dropped.
 */
export function lineage(input: StatementInfo | Node, catalog: CatalogView, options: LineageOptions = {}): LineageResult {
  const tree = isStatementInfo(input) ? input.tree : input;
  const ctx = new Ctx(catalog, options.maxSteps ?? DEFAULT_MAX_STEPS);
  const analyzer = new StatementAnalyzer(ctx);
  let out: { output: LineageResult['output']; shape: Shape };
  try {
    out = analyzer.statement(tree);
  } catch (err) {
    // Fail closed: a budget overrun, a tree too deep for the stack, or a defect here all leave
    // the statement undescribed rather than half-described.
    const reason =
      err instanceof BudgetExceeded ? err.message
      : err instanceof RangeError ? 'statement nested too deeply to analyse'
      : `lineage analysis failed: ${err instanceof Error ? err.message : String(err)}`;
    return {
      output: 'opaque', columns: [], shapeKnown: false, predicateColumns: [], predicatesComplete: false,
      laundering: [], launderingComplete: false, unresolved: [reason],
    };
  }
  const columns = out.shape.cols.map((c) => outputColumn(c, ctx));
  return {
    output: out.output,
    columns,
    shapeKnown: out.shape.complete,
    predicateColumns: ctx.predicates,
    predicatesComplete: ctx.sideReasons.length === 0,
    laundering: ctx.laundering,
    launderingComplete: !RUNS_UNSEEN_CODE.has(unwrap(tree)?.tag ?? ''),
    unresolved: ctx.reasons,
  };
}

function outputColumn(c: Col, ctx: Ctx): OutputColumn {
  for (const r of c.lin.reasons) ctx.reason(r);
  return {
    name: c.name,
    sources: [...c.lin.sources.values()],
    derivation: c.lin.derivation,
    transforms: [...c.lin.transforms].sort(),
    unresolved: c.lin.reasons.length > 0,
    reasons: c.lin.reasons,
  };
}

const NONE: Shape = { cols: [], complete: true };

interface Target {
  rv: RangeVar;
  table: { schema?: string; table: string };
  /** Column names, or undefined when the catalog does not know the relation. */
  names: readonly string[] | undefined;
  item: RelItem;
  from: FromOut;
}

class StatementAnalyzer {
  private readonly q: QueryAnalyzer;

  constructor(private readonly ctx: Ctx) {
    this.q = new QueryAnalyzer(ctx);
    this.q.dml = (tag, body, parent, ctes) => this.dml(tag, body, parent, ctes);
  }

  statement(tree: Node): { output: LineageResult['output']; shape: Shape } {
    const u = unwrap(tree);
    if (!u) return { output: 'opaque', shape: { cols: [], complete: false } };
    const b = u.body;
    const top = new CteEnv(undefined);
    switch (u.tag) {
      case 'SelectStmt': {
        const into = (b as SelectStmt).intoClause;
        const shape = this.q.select(b as SelectStmt, undefined, top);
        if (!into) return { output: 'rows', shape };
        this.launderShape('select_into', into.rel, nameParts(into.colNames), shape);
        return { output: 'none', shape: NONE };
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const shape = this.dml(u.tag, b, undefined, top);
        return (b.returningClause as ReturningClause | undefined)?.exprs?.length ? { output: 'rows', shape } : { output: 'none', shape: NONE };
      }
      case 'CopyStmt':
        return this.copy(b as CopyStmt, top);
      case 'CreateTableAsStmt': {
        const into = b.into as { rel?: RangeVar; colNames?: Node[] } | undefined;
        const shape = this.q.query(b.query as Node, undefined, top);
        const kind: LaunderingKind = b.objtype === 'OBJECT_MATVIEW' ? 'create_matview' : b.is_select_into ? 'select_into' : 'create_table_as';
        this.launderShape(kind, into?.rel, nameParts(into?.colNames), shape);
        return { output: 'none', shape: NONE };
      }
      case 'ViewStmt': {
        const shape = this.q.query(b.query as Node, undefined, top);
        this.launderShape('create_view', rangeVarOf(b.view), nameParts(b.aliases as Node[] | undefined), shape);
        return { output: 'none', shape: NONE };
      }
      case 'RenameStmt':
        this.rename(b);
        return { output: 'none', shape: NONE };
      case 'CreateStmt':
      case 'AlterTableStmt':
        this.foreignKeys(b);
        return { output: 'none', shape: NONE };
      case 'ExplainStmt': {
        const before = this.ctx.laundering.length;
        const analyze = ((b.options as Node[] | undefined) ?? []).some((o) => as<{ defname?: string }>(o, 'DefElem')?.defname === 'analyze');
        this.statement(b.query as Node);
        // Plain EXPLAIN runs nothing, so it copies nothing (its estimates still reflect predicates).
        if (!analyze) this.ctx.laundering.splice(before);
        return { output: 'rows', shape: { cols: [{ name: 'QUERY PLAN', lin: CONSTANT }], complete: true } };
      }
      case 'PrepareStmt':
      case 'DeclareCursorStmt': {
        const inner = this.statement(b.query as Node);
        return inner.output === 'none' ? inner : { output: 'rows', shape: inner.shape };
      }
      case 'VariableShowStmt': {
        const name = typeof b.name === 'string' ? b.name : '?column?';
        const cols = name === 'all' ? ['name', 'setting', 'description'] : [name];
        return { output: 'rows', shape: { cols: cols.map((n) => ({ name: n, lin: CONSTANT })), complete: true } };
      }
      default:
        // EXECUTE, FETCH, CALL (OUT parameters) and unknown statements may return rows we cannot
        // describe; every other utility statement returns none.
        if (OPAQUE.has(u.tag) || kindAndTag(u.tag, b).tag === '???') return { output: 'opaque', shape: { cols: [], complete: false } };
        return { output: 'none', shape: NONE };
    }
  }

  private launderShape(kind: LaunderingKind, rel: RangeVar | undefined, names: readonly string[], shape: Shape): void {
    const lins = shape.cols.map((c) => c.lin);
    if (!shape.complete) lins.push({ ...CONSTANT, reasons: ['copied columns include a * that cannot be traced'], derivation: 'derived' });
    const targetColumns = shape.cols.map((c, i) => names[i] ?? c.name);
    this.ctx.launder({ kind, target: tableOf(rel), targetColumns }, lins);
  }

  private target(rvRaw: unknown, scope: Scope): Target {
    const rv = rangeVarOf(rvRaw) ?? { relname: '?' };
    const table = rv.schemaname ? { schema: rv.schemaname, table: rv.relname ?? '?' } : { table: rv.relname ?? '?' };
    const names = this.ctx.catalog.columnsOf(rv.schemaname, rv.relname ?? '?');
    const cols: Col[] = (names ?? []).map((c) => ({ name: c, lin: direct({ ...table, column: c }) }));
    // A name that could mean relations with different columns: its whole row and * are a guess.
    const ambiguous = names !== undefined && this.ctx.catalog.ambiguous?.(rv.schemaname, rv.relname ?? '?') === true;
    const extra: Partial<RelItem> = names && !ambiguous ? {} : { unknownRelation: table, why: names ? 'the name could mean relations with different columns' : 'relation unknown to the catalog' };
    if (!rv.alias && rv.schemaname) Object.assign(extra, { schema: rv.schemaname });
    const known = names !== undefined && !ambiguous;
    const it = item(rv.alias?.aliasname ?? rv.relname, cols, known, extra);
    scope.add(it);
    return { rv, table, names, item: it, from: { cols, complete: known, items: [it] } };
  }

  /** INSERT/UPDATE/DELETE/MERGE at any level; returns the RETURNING shape. */
  dml(tag: string, b: Body, parent: Scope | undefined, outer: CteEnv): Shape {
    const ctes = this.q.withClause(b.withClause as SelectStmt['withClause'], parent, outer);
    const scope = new Scope(parent, ctes);
    const target = this.target(b.relation, scope);
    const froms: FromOut[] = [target.from];
    const assigned = new Map<string, Lin[]>();
    const assign = (name: string, lin: Lin): void => {
      const list = assigned.get(name) ?? [];
      list.push(lin);
      assigned.set(name, list);
    };
    const addFrom = (list: unknown): void => {
      for (const f of Array.isArray(list) ? (list as Node[]) : []) {
        const out = this.q.from(f, scope);
        for (const i of out.items) scope.add(i);
        froms.push(out);
      }
    };

    switch (tag) {
      case 'InsertStmt': {
        const cols = ((b.cols as Node[] | undefined) ?? []).map((c) => as<ResTarget>(c, 'ResTarget')?.name ?? '?');
        const names = cols.length > 0 ? cols : target.names;
        let incomplete = false;
        if (b.selectStmt) {
          // The source query cannot see the target table; it sees the outer levels only.
          const shape = this.q.query(b.selectStmt as Node, parent, ctes);
          shape.cols.forEach((c, i) => assign(names?.[i] ?? `#${i + 1}`, c.lin));
          // Into a table the catalog does not know (created in this transaction), values that
          // derive from no column (VALUES of literals and parameters) still copy nothing.
          const copiesNothing = shape.complete && shape.cols.every((c) => c.lin.sources.size === 0 && c.lin.reasons.length === 0 && c.lin.derivation === 'constant');
          incomplete = !shape.complete || (names === undefined && !copiesNothing);
        }
        const values = [...assigned.values()].flat();
        if (incomplete) values.push(unresolvedLin('inserted columns cannot be traced'));
        this.ctx.launder({ kind: 'insert_select', target: target.table, targetColumns: [...assigned.keys()] }, values);
        const oc = b.onConflictClause as { targetList?: Node[]; whereClause?: Node; infer?: { indexElems?: Node[] } } | undefined;
        if (oc) this.arbiter(oc.infer?.indexElems ?? [], scope, target);
        if (oc) {
          const excludedCols = (target.names ?? []).map((n) => ({ name: n, lin: either(assigned.get(n) ?? [CONSTANT]) }));
          const ex = item('excluded', excludedCols, target.names !== undefined, { why: 'relation unknown to the catalog' });
          ex.unqualified = false;
          scope.add(ex);
          this.assignments(oc.targetList, scope, target, 'update_set', assign);
          predicate(oc.whereClause, 'where', scope, this.ctx);
        }
        break;
      }
      case 'UpdateStmt':
        addFrom(b.fromClause);
        predicate(b.whereClause, 'where', scope, this.ctx);
        this.assignments(b.targetList as Node[] | undefined, scope, target, 'update_set', assign);
        break;
      case 'DeleteStmt':
        addFrom(b.usingClause);
        predicate(b.whereClause, 'where', scope, this.ctx);
        break;
      case 'MergeStmt':
        addFrom(b.sourceRelation ? [b.sourceRelation] : []);
        predicate(b.joinCondition, 'join', scope, this.ctx);
        this.mergeActions(b, scope, target, assign);
        break;
      default:
        return { cols: [], complete: false };
    }
    return this.returning(b.returningClause as ReturningClause | undefined, scope, target, assigned, froms);
  }

  /**
   * ON CONFLICT compares every inserted row with the rows already in the table on its arbiter
   * columns: `INSERT INTO customers (email, notes) SELECT guess, n FROM guesses ON CONFLICT (email)
   * DO NOTHING RETURNING notes` names the guesses that are not someone's email. Without a column
   * list (ON CONSTRAINT, or none: every unique index) every column of the table may be compared.
   */
  private arbiter(elems: readonly Node[], scope: Scope, target: Target): void {
    if (elems.length === 0) {
      for (const c of target.item.cols) this.ctx.predicate(c.lin, 'on_conflict', 'column');
      if (!target.item.complete) this.ctx.predicate(unresolvedLin('ON CONFLICT on a relation unknown to the catalog', target.table, '*'), 'on_conflict', 'column');
      return;
    }
    for (const e of elems) {
      const ie = as<{ name?: string; expr?: Node }>(e, 'IndexElem');
      const lin = ie?.name !== undefined ? (target.item.cols.find((c) => c.name === ie.name)?.lin ?? unresolvedLin(`ON CONFLICT column "${ie.name}" cannot be traced`, target.table, ie.name)) : expr(ie?.expr, scope, this.ctx);
      this.ctx.predicate(lin, 'on_conflict', 'column');
    }
  }

  /**
   * Foreign keys in CREATE TABLE / ALTER TABLE: every row later written to the referencing table
   * is checked against the referenced columns, so a key on a protected column answers "is this
   * value someone's?" for each row inserted. Without a column list the key references the
   * primary key, which warden does not know: every column of the table counts.
   */
  private foreignKeys(node: unknown): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const x of node) this.foreignKeys(x);
      return;
    }
    const c = as<{ contype?: string; pktable?: RangeVar; pk_attrs?: Node[] }>(node, 'Constraint');
    if (c?.contype === 'CONSTR_FOREIGN' && c.pktable?.relname) {
      const rv = c.pktable;
      const table = rv.schemaname ? { schema: rv.schemaname, table: rv.relname! } : { table: rv.relname! };
      const named = nameParts(c.pk_attrs);
      const columns = named.length > 0 ? named : (this.ctx.catalog.columnsOf(rv.schemaname, rv.relname!) ?? ['*']);
      for (const column of columns) {
        const lin = column === '*' ? unresolvedLin('a foreign key to a relation unknown to the catalog', table, '*') : direct({ ...table, column });
        this.ctx.predicate(lin, 'foreign_key', 'column');
      }
      return;
    }
    for (const v of Object.values(node)) this.foreignKeys(v);
  }

  /** SET col = expr lists (UPDATE, ON CONFLICT DO UPDATE, MERGE … UPDATE). */
  private assignments(list: readonly Node[] | undefined, scope: Scope, target: Target, kind: LaunderingKind, assign: (n: string, l: Lin) => void): void {
    const multi = new Map<unknown, Shape | Lin[]>();
    const lins: Lin[] = [];
    const names: string[] = [];
    for (const t of list ?? []) {
      const rt = as<ResTarget>(t, 'ResTarget');
      if (!rt?.name) continue;
      let lin: Lin;
      const mar = as<{ source?: Node; colno?: number }>(rt.val, 'MultiAssignRef');
      if (mar) {
        // SET (a, b) = (SELECT …) or = ROW(…): one source, column colno of it.
        const key = mar.source;
        let src = multi.get(key);
        if (!src) {
          const sub = as<{ subselect?: Node }>(mar.source, 'SubLink');
          const row = as<{ args?: Node[] }>(mar.source, 'RowExpr');
          src = sub ? this.q.query(sub.subselect, scope, scope.ctes) : row ? (row.args ?? []).map((a) => expr(a, scope, this.ctx)) : [expr(mar.source, scope, this.ctx)];
          multi.set(key, src);
        }
        const i = (mar.colno ?? 1) - 1;
        lin = Array.isArray(src) ? (src[i] ?? src[0] ?? unresolvedLin('multiple assignment source')) : (src.cols[i]?.lin ?? unresolvedLin('multiple assignment source'));
      } else {
        lin = expr(rt.val, scope, this.ctx);
      }
      assign(rt.name, lin);
      names.push(rt.name);
      lins.push(withoutSource(lin, { ...target.table, column: rt.name }));
    }
    if (names.length > 0) this.ctx.launder({ kind, target: target.table, targetColumns: names }, lins);
  }

  private mergeActions(b: Body, scope: Scope, target: Target, assign: (n: string, l: Lin) => void): void {
    const lins: Lin[] = [];
    const cols: string[] = [];
    for (const w of (b.mergeWhenClauses as Node[] | undefined) ?? []) {
      const wc = as<{ commandType?: string; condition?: Node; targetList?: Node[]; values?: Node[] }>(w, 'MergeWhenClause');
      if (!wc) continue;
      predicate(wc.condition, 'where', scope, this.ctx);
      const targets = (wc.targetList ?? []).map((t) => as<ResTarget>(t, 'ResTarget'));
      if (wc.commandType === 'CMD_UPDATE') {
        for (const rt of targets) {
          if (!rt?.name) continue;
          const lin = expr(rt.val, scope, this.ctx);
          assign(rt.name, lin);
          cols.push(rt.name);
          lins.push(withoutSource(lin, { ...target.table, column: rt.name }));
        }
      } else if (wc.commandType === 'CMD_INSERT') {
        const names = targets.length > 0 ? targets.map((t) => t?.name ?? '?') : (target.names ?? []);
        (wc.values ?? []).forEach((v, i) => {
          const lin = expr(v, scope, this.ctx);
          const name = names[i] ?? `#${i + 1}`;
          assign(name, lin);
          cols.push(name);
          lins.push(lin);
        });
        if (names.length === 0 && (wc.values?.length ?? 0) > 0) lins.push(unresolvedLin('MERGE INSERT into a relation unknown to the catalog'));
      }
    }
    this.ctx.launder({ kind: 'merge', target: target.table, targetColumns: [...new Set(cols)] }, lins);
  }

  private returning(rc: ReturningClause | undefined, scope: Scope, target: Target, assigned: Map<string, Lin[]>, froms: FromOut[]): Shape {
    if (!rc?.exprs?.length) return NONE;
    // After the statement a target column holds its old value or the assigned one.
    const cols = target.item.cols.map((c) => ({ name: c.name, lin: either([c.lin, ...(assigned.get(c.name) ?? [])]) }));
    const now = item(target.item.refname, cols, target.item.complete, extraOf(target.item));
    const rscope = new Scope(scope.parent, scope.ctes);
    for (const i of scope.items) rscope.add(i === target.item ? now : i);
    // PostgreSQL 18: old.* and new.* (renamable with RETURNING WITH (OLD AS o, NEW AS n)).
    const names = { old: 'old', new: 'new' };
    for (const o of rc.options ?? []) {
      const opt = as<{ option?: string; value?: string }>(o, 'ReturningOption');
      if (opt?.value && opt.option === 'RETURNING_OPTION_OLD') names.old = opt.value;
      if (opt?.value && opt.option === 'RETURNING_OPTION_NEW') names.new = opt.value;
    }
    for (const [refname, c] of [[names.old, target.item.cols], [names.new, cols]] as const) {
      if (refname === target.item.refname) continue;
      const it = item(refname, c, target.item.complete, extraOf(target.item));
      it.unqualified = false;
      rscope.add(it);
    }
    const fromOuts: FromOut[] = [{ cols, complete: target.item.complete, items: [now] }, ...froms.slice(1)];
    return this.q.projection(rc.exprs, rscope, fromOuts);
  }

  private copy(b: CopyStmt, top: CteEnv): { output: LineageResult['output']; shape: Shape } {
    let shape: Shape;
    if (b.query) {
      shape = this.q.query(b.query, undefined, top);
    } else {
      const scope = new Scope(undefined, top);
      const t = this.target(b.relation, scope);
      const list = nameParts(b.attlist);
      shape = list.length === 0 ? t.from : { cols: list.map((n) => ({ name: n, lin: t.item.cols.find((c) => c.name === n)?.lin ?? unresolvedLin(`column "${n}" of ${t.table.table} cannot be traced`, t.table, n) })), complete: true };
    }
    if (b.is_from) return { output: 'none', shape: NONE };
    if (!b.is_program && b.filename === undefined) return { output: 'rows', shape };
    const lins = shape.cols.map((c) => c.lin);
    if (!shape.complete) lins.push(unresolvedLin('copied columns cannot be traced'));
    this.ctx.launder(
      { kind: b.is_program ? 'copy_to_program' : 'copy_to_file', target: b.is_program ? { program: b.filename ?? '' } : { file: b.filename ?? '' }, targetColumns: shape.cols.map((c) => c.name) },
      lins,
    );
    return { output: 'none', shape: NONE };
  }

  /** ALTER TABLE … RENAME: masking rules that match by name would no longer see the data. */
  private rename(b: Body): void {
    const rv = rangeVarOf(b.relation);
    if (!rv?.relname) return;
    const table = rv.schemaname ? { schema: rv.schemaname, table: rv.relname } : { table: rv.relname };
    const type = b.renameType;
    const newname = typeof b.newname === 'string' ? b.newname : '?';
    if (type === 'OBJECT_COLUMN' && typeof b.subname === 'string') {
      this.ctx.launder({ kind: 'rename', target: table, targetColumns: [newname] }, [direct({ ...table, column: b.subname })]);
      return;
    }
    if (type === 'OBJECT_TABLE' || type === 'OBJECT_VIEW' || type === 'OBJECT_MATVIEW' || type === 'OBJECT_FOREIGN_TABLE') {
      const names = this.ctx.catalog.columnsOf(rv.schemaname, rv.relname);
      const lins = names ? names.map((c) => direct({ ...table, column: c })) : [unresolvedLin('renamed relation unknown to the catalog', table, '*')];
      const to = rv.schemaname ? { schema: rv.schemaname, table: newname } : { table: newname };
      this.ctx.launder({ kind: 'rename', target: to, targetColumns: names ? [...names] : [] }, lins);
    }
  }
}

function extraOf(i: RelItem): Partial<RelItem> {
  const extra: { schema?: string; unknownRelation?: { schema?: string; table: string }; why?: string } = {};
  if (i.schema !== undefined) extra.schema = i.schema;
  if (i.unknownRelation) extra.unknownRelation = i.unknownRelation;
  if (i.why !== undefined) extra.why = i.why;
  return extra;
}

function tableOf(rel: RangeVar | undefined): { schema?: string; table: string } {
  if (!rel?.relname) return { table: '?' };
  return rel.schemaname ? { schema: rel.schemaname, table: rel.relname } : { table: rel.relname };
}

function unresolvedLin(reason: string, table?: { schema?: string; table: string }, column?: string): Lin {
  const sources = new Map();
  if (table && column) {
    const s = { ...table, column };
    sources.set(sourceKey(s), s);
  }
  return { ...CONSTANT, sources, reasons: [reason], derivation: 'derived' };
}

/**
 * The lineage without one source when the value is that column unchanged (UPDATE t SET c = c
 * moves nothing). A value computed from the column itself still counts: after
 * `SET card_number = reverse(card_number)` a partial mask of the last four shows the first four.
 */
function withoutSource(lin: Lin, self: { schema?: string; table: string; column: string }): Lin {
  const key = sourceKey(self);
  if (!lin.sources.has(key) || lin.derivation !== 'direct' || lin.transforms.size > 0) return lin;
  const sources = new Map(lin.sources);
  sources.delete(key);
  return { ...lin, sources };
}

// The relations a statement touches, each with how it is touched. Names stay as written; CTE
// names are not relations and are left out where they are in scope (WITH RECURSIVE sees itself,
// a plain WITH entry sees only the entries before it).
import type { Node, RangeVar } from 'libpg-query';
import { ON_TABLE_OBJECT_TYPES, RELATION_OBJECT_TYPES } from './kinds.js';
import { as, listItems, nameParts, rangeVarOf, unwrap } from './ast.js';
import type { RelationAccess, RelationRef } from './types.js';

type Body = Record<string, unknown>;
type Ctes = ReadonlySet<string>;

const NO_CTES: Ctes = new Set();

/**
 * Relations of a statement tree. `access` is what a bare relation inside the statement's own
 * fields means: 'ddl' for utility statements; queries nested anywhere switch to 'read', and DML
 * targets get their own access.
 */
export function collectRelations(tree: Node, access: RelationAccess = 'ddl'): RelationRef[] {
  const c = new Collector();
  c.walk(tree, access, NO_CTES);
  return c.out;
}

class Collector {
  readonly out: RelationRef[] = [];
  private readonly seen = new Set<string>();

  add(rv: RangeVar, access: RelationAccess): void {
    if (!rv.relname) return;
    const key = `${rv.catalogname ?? ''}\u0000${rv.schemaname ?? ''}\u0000${rv.relname}\u0000${access}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const ref: { catalog?: string; schema?: string; name: string; access: RelationAccess } = { name: rv.relname, access };
    if (rv.catalogname) ref.catalog = rv.catalogname;
    if (rv.schemaname) ref.schema = rv.schemaname;
    this.out.push(ref);
  }

  addName(parts: readonly string[], access: RelationAccess): void {
    const name = parts[parts.length - 1];
    if (name === undefined) return;
    const rv: RangeVar = { relname: name };
    if (parts.length >= 2) rv.schemaname = parts[parts.length - 2]!;
    if (parts.length >= 3) rv.catalogname = parts[parts.length - 3]!;
    this.add(rv, access);
  }

  private reference(rv: RangeVar, access: RelationAccess, ctes: Ctes): void {
    if (!rv.schemaname && rv.relname && ctes.has(rv.relname)) return; // a CTE, not a relation
    this.add(rv, access);
  }

  walk(value: unknown, access: RelationAccess, ctes: Ctes): void {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) this.walk(v, access, ctes);
      return;
    }
    const node = unwrap(value);
    if (node) {
      this.node(node.tag, node.body, access, ctes);
      return;
    }
    const rv = rangeVarOf(value);
    if (rv) {
      this.reference(rv, access, ctes);
      return;
    }
    this.fields(value as Body, access, ctes);
  }

  private fields(body: Body, access: RelationAccess, ctes: Ctes, skip?: ReadonlySet<string>): void {
    for (const [k, v] of Object.entries(body)) {
      if (skip?.has(k)) continue;
      if (v !== null && typeof v === 'object') this.walk(v, access, ctes);
    }
  }

  private node(tag: string, body: Body, access: RelationAccess, ctes: Ctes): void {
    switch (tag) {
      case 'RangeVar':
        this.reference(body as RangeVar, access, ctes);
        return;
      case 'SelectStmt':
        this.select(body, ctes);
        return;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.dml(tag, body, ctes);
        return;
      case 'CopyStmt': {
        const rv = rangeVarOf(body.relation);
        if (rv) this.add(rv, 'copy');
        this.fields(body, 'read', ctes, SKIP_RELATION);
        return;
      }
      case 'TruncateStmt':
        this.fields(body, 'truncate', ctes);
        return;
      case 'LockStmt':
        this.fields(body, 'lock', ctes);
        return;
      case 'DropStmt':
        this.drop(body);
        return;
      case 'CreateTableAsStmt': {
        const into = body.into as { rel?: RangeVar } | undefined;
        if (into?.rel) this.add(into.rel, 'ddl');
        this.walk(body.query, 'read', ctes);
        return;
      }
      case 'ViewStmt': {
        const view = rangeVarOf(body.view);
        if (view) this.add(view, 'ddl');
        this.walk(body.query, 'read', ctes);
        return;
      }
      default:
        this.fields(body, access, ctes);
    }
  }

  /** Adds the WITH entries' relations and returns the CTE names visible to the statement body. */
  private with(withClause: unknown, ctes: Ctes): Ctes {
    const w = withClause as { ctes?: Node[]; recursive?: boolean } | undefined;
    if (!w?.ctes?.length) return ctes;
    const entries = w.ctes.map((n) => as<{ ctename?: string; ctequery?: Node }>(n, 'CommonTableExpr')).filter((e) => e !== undefined);
    const all = new Set(ctes);
    for (const e of entries) if (e.ctename) all.add(e.ctename);
    const before = new Set(ctes);
    for (const e of entries) {
      this.walk(e.ctequery, 'read', w.recursive ? all : before);
      if (e.ctename) before.add(e.ctename);
    }
    return all;
  }

  private select(body: Body, outer: Ctes): void {
    const ctes = this.with(body.withClause, outer);
    if (body.larg) this.select(body.larg as Body, ctes);
    if (body.rarg) this.select(body.rarg as Body, ctes);
    const into = body.intoClause as { rel?: RangeVar } | undefined;
    if (into?.rel) this.add(into.rel, 'ddl');
    this.fields(body, 'read', ctes, SKIP_SELECT);
    const locking = (body.lockingClause as Node[] | undefined) ?? [];
    if (locking.length > 0) this.locks(body.fromClause as Node[] | undefined, locking, ctes);
  }

  /** SELECT … FOR UPDATE/SHARE [OF names]: the named (or all) relations of this level are locked. */
  private locks(from: readonly Node[] | undefined, locking: readonly Node[], ctes: Ctes): void {
    const level: RangeVar[] = [];
    const gather = (n: unknown): void => {
      const rv = as<RangeVar>(n, 'RangeVar');
      if (rv) {
        level.push(rv);
        return;
      }
      const j = as<{ larg?: Node; rarg?: Node }>(n, 'JoinExpr');
      if (j) {
        gather(j.larg);
        gather(j.rarg);
      }
    };
    for (const n of from ?? []) gather(n);
    for (const lc of locking) {
      const named = (as<{ lockedRels?: Node[] }>(lc, 'LockingClause')?.lockedRels ?? [])
        .map((n) => as<RangeVar>(n, 'RangeVar')?.relname)
        .filter((n): n is string => n !== undefined);
      for (const rv of level) {
        const ref = rv.alias?.aliasname ?? rv.relname;
        if (named.length === 0 || (ref !== undefined && named.includes(ref))) this.reference(rv, 'lock', ctes);
      }
    }
  }

  private dml(tag: string, body: Body, outer: Ctes): void {
    const ctes = this.with(body.withClause, outer);
    const target = rangeVarOf(body.relation);
    if (target) {
      for (const a of targetAccess(tag, body)) this.add(target, a);
    }
    this.fields(body, 'read', ctes, SKIP_DML);
  }

  private drop(body: Body): void {
    const type = body.removeType as string | undefined;
    if (!type) return;
    const onTable = ON_TABLE_OBJECT_TYPES.has(type);
    if (!onTable && !RELATION_OBJECT_TYPES.has(type)) return;
    for (const obj of (body.objects as Node[] | undefined) ?? []) {
      const parts = nameParts(listItems(obj));
      this.addName(onTable ? parts.slice(0, -1) : parts, 'ddl');
    }
  }
}

const SKIP_RELATION: ReadonlySet<string> = new Set(['relation']);
const SKIP_SELECT: ReadonlySet<string> = new Set(['withClause', 'larg', 'rarg', 'intoClause', 'lockingClause']);
const SKIP_DML: ReadonlySet<string> = new Set(['withClause', 'relation']);

function targetAccess(tag: string, body: Body): RelationAccess[] {
  switch (tag) {
    case 'InsertStmt': {
      const oc = body.onConflictClause as { action?: string } | undefined;
      return oc?.action === 'ONCONFLICT_UPDATE' ? ['insert', 'update'] : ['insert'];
    }
    case 'UpdateStmt':
      return ['update'];
    case 'DeleteStmt':
      return ['delete'];
    default: {
      const out: RelationAccess[] = [];
      for (const w of (body.mergeWhenClauses as Node[] | undefined) ?? []) {
        const cmd = as<{ commandType?: string }>(w, 'MergeWhenClause')?.commandType;
        const a: RelationAccess | undefined = cmd === 'CMD_UPDATE' ? 'update' : cmd === 'CMD_INSERT' ? 'insert' : cmd === 'CMD_DELETE' ? 'delete' : undefined;
        if (a && !out.includes(a)) out.push(a);
      }
      return out.length > 0 ? out : ['read'];
    }
  }
}

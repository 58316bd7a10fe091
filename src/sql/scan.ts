// One pass over a statement tree for what can be found anywhere in it: function calls (select
// list, WHERE, subqueries, CTEs, DEFAULTs, arguments of other calls…), data-modifying CTEs,
// UPDATE/DELETE without a row filter, row locks, set_config('role', …).
import type { A_Const, FuncCall, Node } from 'libpg-query';
import { dotted, nameParts, unwrap, walkTree } from './ast.js';
import { isKnownBuiltin, type FunctionMatcher } from './functions.js';

export interface TreeScan {
  /** Every function called, as written (schema-qualified when written so), first appearance first. */
  functions: string[];
  dangerousFunctions: string[];
  /** A function outside the known side-effect-free built-ins is called (it may write). */
  callsImpureFunction: boolean;
  /** set_config() of role or session_authorization, or with a name not known until run time. */
  setConfigEscape: boolean;
  dataModifyingCte: boolean;
  /**
   * An UPDATE or DELETE whose WHERE is missing or reads no column; a MERGE that updates or deletes
   * rows its ON condition does not filter (see mergeUnbounded).
   */
  noWhere: boolean;
  /** SELECT … FOR UPDATE/SHARE somewhere. */
  locking: boolean;
  /** INSERT/UPDATE/DELETE/MERGE below the root (CTE, EXPLAIN, PREPARE, COPY, rule actions…). */
  nestedDml: boolean;
}

const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

export function scanTree(tree: Node, dangerous: FunctionMatcher): TreeScan {
  const out: TreeScan = {
    functions: [],
    dangerousFunctions: [],
    callsImpureFunction: false,
    setConfigEscape: false,
    dataModifyingCte: false,
    noWhere: false,
    locking: false,
    nestedDml: false,
  };
  const root = unwrap(tree)?.body;
  const seen = new Set<string>();
  const seenDangerous = new Set<string>();
  walkTree(tree, (obj, key) => {
    switch (key) {
      case 'FuncCall':
      case 'funccall': // CallStmt.funccall arrives unwrapped
        onCall(obj as FuncCall);
        break;
      case 'ctequery':
        if (DML.has(unwrap(obj)?.tag ?? '')) out.dataModifyingCte = true;
        break;
      case 'UpdateStmt':
      case 'DeleteStmt':
        if (!filtersRows((obj as { whereClause?: Node }).whereClause)) out.noWhere = true;
        if (obj !== root) out.nestedDml = true;
        break;
      case 'MergeStmt':
        if (mergeUnbounded(obj as MergeNode)) out.noWhere = true;
        if (obj !== root) out.nestedDml = true;
        break;
      case 'InsertStmt':
        if (obj !== root) out.nestedDml = true;
        break;
      case 'SelectStmt':
      case 'larg':
      case 'rarg':
        if (((obj as { lockingClause?: unknown[] }).lockingClause?.length ?? 0) > 0) out.locking = true;
        break;
      default:
        break;
    }
  });
  return out;

  function onCall(call: FuncCall): void {
    const parts = nameParts(call.funcname);
    // Calls written as SQL syntax (EXTRACT, SUBSTRING … FROM, AT TIME ZONE) are built-ins the
    // parser names pg_catalog.x; show them as written.
    const syntax = call.funcformat === 'COERCE_SQL_SYNTAX';
    const shown = syntax && parts[0] === 'pg_catalog' ? parts.slice(1) : parts;
    const name = dotted(shown);
    if (!seen.has(name)) {
      seen.add(name);
      out.functions.push(name);
    }
    const own = parts[parts.length - 1] ?? '';
    if (dangerous.matches(own) && !seenDangerous.has(name)) {
      seenDangerous.add(name);
      out.dangerousFunctions.push(name);
    }
    if (!syntax && !isKnownBuiltin(parts)) out.callsImpureFunction = true;
    if (own === 'set_config' && setsIdentity(call)) out.setConfigEscape = true;
  }
}

/** set_config(name, …): true when name is role/session_authorization or not a literal. */
function setsIdentity(call: FuncCall): boolean {
  const first = call.args?.[0];
  const c = unwrap(first);
  if (!c || c.tag !== 'A_Const') return true;
  const sval = (c.body as A_Const).sval?.sval;
  if (sval === undefined) return true;
  return IDENTITY_SETTINGS.has(sval.trim().toLowerCase());
}

interface MergeNode {
  joinCondition?: Node;
  mergeWhenClauses?: Node[];
}

interface MergeWhen {
  matchKind?: string;
  commandType?: string;
  condition?: Node;
}

/**
 * A MERGE's UPDATE or DELETE is unbounded like an UPDATE or DELETE without WHERE when nothing that
 * reads a column picks its rows: WHEN MATCHED under an ON condition that reads no column (ON 1 = 1
 * matches every target row), or WHEN NOT MATCHED BY SOURCE (every target row the source lacks: all
 * of them for an empty source); an AND condition of the WHEN clause that reads a column bounds it.
 */
function mergeUnbounded(merge: MergeNode): boolean {
  const onFilters = filtersRows(merge.joinCondition);
  for (const w of merge.mergeWhenClauses ?? []) {
    const when = (w as { MergeWhenClause?: MergeWhen }).MergeWhenClause;
    if (!when || (when.commandType !== 'CMD_UPDATE' && when.commandType !== 'CMD_DELETE')) continue;
    if (filtersRows(when.condition)) continue;
    if (when.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE' || !onFilters) return true;
  }
  return false;
}

/** A WHERE filters rows only if it reads some column (WHERE true / 1 = 1 / $1 do not). */
function filtersRows(where: Node | undefined): boolean {
  if (!where) return false;
  let reads = false;
  walkTree(where, (_obj, key) => {
    if (key === 'ColumnRef' || key === 'CurrentOfExpr') reads = true;
    return !reads;
  });
  return reads;
}

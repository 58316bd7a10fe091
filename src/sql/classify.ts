// classify(): what each statement of a SQL text does, from PostgreSQL's own parse tree. Results
// are cached by text (LRU, bounded by count and estimated size) and frozen, because the same
// object is handed to every caller. A text the parser rejects is `ok: false`, never harmless.
import type { Node } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { as, deepFreeze, unwrap } from './ast.js';
import { ddlInfo } from './ddl.js';
import { DEFAULT_DANGEROUS_FUNCTIONS, FunctionMatcher } from './functions.js';
import { kindAndTag, TRANSACTION_CONTROL } from './kinds.js';
import { fingerprintTree } from './fingerprint.js';
import { normalizeStatement, parseStatements, type RawStatement } from './parser.js';
import { collectRelations } from './relations.js';
import { scanTree, type TreeScan } from './scan.js';
import type { Classification, CopyInfo, StatementFlags, StatementInfo, TransactionControl } from './types.js';
import type { TransactionStmtKind } from 'libpg-query';

export interface ClassifierOptions {
  /** Dangerous function names (a trailing `*` is a prefix); replaces the default list. */
  dangerousFunctions?: readonly string[];
  /** Cached texts, at most. Default 10 000. */
  cacheEntries?: number;
  /** Estimated bytes held by the cache, at most. Default 64 MiB. */
  cacheBytes?: number;
  /** Longer texts are refused (`ok: false`) rather than parsed. Default 4 Mi characters. */
  maxSqlLength?: number;
}

export const DEFAULTS = {
  cacheEntries: 10_000,
  cacheBytes: 64 * 1024 * 1024,
  maxSqlLength: 4 * 1024 * 1024,
} as const;

type Body = Record<string, unknown>;

/** Rough bytes a cached classification holds: parse trees run to ~20 bytes per input character. */
function estimateSize(sql: string): number {
  return 256 + sql.length * 24;
}

export class SqlClassifier {
  private readonly dangerous: FunctionMatcher;
  private readonly cache: LRUCache<string, Classification>;
  private readonly maxSqlLength: number;

  constructor(options: ClassifierOptions = {}) {
    this.dangerous = new FunctionMatcher(options.dangerousFunctions ?? DEFAULT_DANGEROUS_FUNCTIONS);
    const maxSize = options.cacheBytes ?? DEFAULTS.cacheBytes;
    this.cache = new LRUCache<string, Classification>({
      max: options.cacheEntries ?? DEFAULTS.cacheEntries,
      maxSize,
      maxEntrySize: Math.max(1, Math.floor(maxSize / 8)),
      sizeCalculation: (_v, sql) => estimateSize(sql),
    });
    this.maxSqlLength = options.maxSqlLength ?? DEFAULTS.maxSqlLength;
  }

  /** Classifies every statement of `sql`. Synchronous; needs `initSqlParser()` to have resolved. */
  classify(sql: string): Classification {
    const hit = this.cache.get(sql);
    if (hit) return hit;
    const result = deepFreeze(this.classifyUncached(sql));
    if (estimateSize(sql) <= this.cache.maxEntrySize) this.cache.set(sql, result);
    return result;
  }

  /** The same as classify() without the cache (for measurements and tests). */
  classifyUncached(sql: string): Classification {
    if (sql.length > this.maxSqlLength) {
      return { ok: false, error: `statement text of ${sql.length} characters exceeds the ${this.maxSqlLength} limit` };
    }
    const parsed = parseStatements(sql);
    if (!parsed.ok) return parsed;
    try {
      return { ok: true, statements: parsed.statements.map((s) => this.describe(s)) };
    } catch (err) {
      // A tree too deep for the walkers: not understood, so not harmless.
      return { ok: false, error: `statement could not be classified: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  clearCache(): void {
    this.cache.clear();
  }

  private describe(raw: RawStatement): StatementInfo {
    const { tree } = raw;
    const node = unwrap(tree);
    const tag = node?.tag ?? 'Unknown';
    const body: Body = node?.body ?? {};
    const { kind, tag: commandTag } = kindAndTag(tag, body);
    const scan = scanTree(tree, this.dangerous);
    const transactionControl = tag === 'TransactionStmt' ? TRANSACTION_CONTROL[body.kind as TransactionStmtKind]?.sub : undefined;
    const copy = tag === 'CopyStmt' ? copyInfo(body) : undefined;
    const flags: StatementFlags = {
      noWhere: scan.noWhere,
      dataModifyingCte: scan.dataModifyingCte,
      privilegeChange: privilegeChange(tag, body),
      sessionEscape: scan.setConfigEscape || sessionEscape(tag, body),
      alterSystem: tag === 'AlterSystemStmt',
      doBlock: tag === 'DoStmt',
      copyProgram: copy?.endpoint === 'program',
      copyToFile: copy?.endpoint === 'file' && copy.direction === 'to',
      copyFromFile: copy?.endpoint === 'file' && copy.direction === 'from',
      ...(transactionControl ? { transactionControl } : {}),
    };
    const info: StatementInfo = {
      kind,
      nodeType: tag,
      commandTag,
      readOnly: readOnly(tree, scan, this.dangerous),
      flags,
      dangerousFunctions: scan.dangerousFunctions,
      functions: scan.functions,
      relations: collectRelations(tree),
      fingerprint: fingerprintTree(tree),
      normalized: normalizeStatement(raw.text),
      text: raw.text,
      start: raw.start,
      tree,
    };
    const ddl = ddlInfo(tag, body);
    const name = targetName(tag, body);
    return {
      ...info,
      ...(ddl ? { ddl } : {}),
      ...(copy ? { copy } : {}),
      ...(name !== undefined ? { targetName: name } : {}),
    };
  }
}

function copyInfo(b: Body): CopyInfo {
  const direction = b.is_from ? 'from' : 'to';
  const filename = typeof b.filename === 'string' ? b.filename : undefined;
  if (b.is_program) return { direction, endpoint: 'program', target: filename ?? '' };
  if (filename !== undefined) return { direction, endpoint: 'file', target: filename };
  return { direction, endpoint: 'client' };
}

const PRIVILEGE_NODES = new Set([
  'GrantStmt', 'GrantRoleStmt', 'AlterDefaultPrivilegesStmt', 'CreateRoleStmt', 'AlterRoleStmt',
  'AlterRoleSetStmt', 'DropRoleStmt', 'AlterOwnerStmt', 'ReassignOwnedStmt', 'DropOwnedStmt',
  'CreatePolicyStmt', 'AlterPolicyStmt', 'CreateUserMappingStmt', 'AlterUserMappingStmt',
]);

const PRIVILEGE_TABLE_CMDS = new Set([
  'AT_ChangeOwner', 'AT_EnableRowSecurity', 'AT_DisableRowSecurity', 'AT_ForceRowSecurity', 'AT_NoForceRowSecurity',
]);

function defElems(list: unknown): Array<{ defname?: string; arg?: Node }> {
  if (!Array.isArray(list)) return [];
  return list.map((n) => as<{ defname?: string; arg?: Node }>(n, 'DefElem')).filter((d) => d !== undefined);
}

/** DefElem boolean as PostgreSQL's defGetBoolean reads it; anything unclear counts as true. */
function defTrue(arg: Node | undefined): boolean {
  if (arg === undefined) return true;
  const u = unwrap(arg);
  if (!u) return true;
  if (u.tag === 'Boolean') return (u.body as { boolval?: boolean }).boolval === true;
  if (u.tag === 'Integer') return ((u.body as { ival?: number }).ival ?? 0) !== 0;
  if (u.tag === 'String') return !['false', 'off', 'no', '0'].includes(((u.body as { sval?: string }).sval ?? '').toLowerCase());
  return true;
}

function privilegeChange(tag: string, b: Body): boolean {
  if (PRIVILEGE_NODES.has(tag)) return true;
  switch (tag) {
    case 'DropStmt':
      return b.removeType === 'OBJECT_POLICY';
    case 'AlterTableStmt':
      return ((b.cmds as Node[] | undefined) ?? []).some((c) => PRIVILEGE_TABLE_CMDS.has(as<{ subtype?: string }>(c, 'AlterTableCmd')?.subtype ?? ''));
    case 'CreateSchemaStmt':
      return b.authrole !== undefined;
    case 'CreateFunctionStmt':
      return defElems(b.options).some((d) => d.defname === 'security' && defTrue(d.arg));
    case 'AlterFunctionStmt':
      return defElems(b.actions).some((d) => d.defname === 'security' && defTrue(d.arg));
    case 'CreatedbStmt':
    case 'AlterDatabaseStmt':
      return defElems(b.options).some((d) => d.defname === 'owner');
    case 'CreateTableSpaceStmt':
      return b.owner !== undefined;
    default:
      return false;
  }
}

function sessionEscape(tag: string, b: Body): boolean {
  if (tag === 'VariableSetStmt') {
    const name = b.name;
    return name === 'role' || name === 'session_authorization';
  }
  // DISCARD ALL runs SET SESSION AUTHORIZATION DEFAULT and RESET ALL.
  if (tag === 'DiscardStmt') return b.target === 'DISCARD_ALL';
  return false;
}

const READ_ONLY_UTILITY = new Set([
  'VariableShowStmt', 'VariableSetStmt', 'ListenStmt', 'UnlistenStmt', 'DeallocateStmt', 'ClosePortalStmt',
  'DiscardStmt',
]);

const READ_ONLY_TRANSACTION = new Set<TransactionControl>(['begin', 'start', 'commit', 'rollback', 'savepoint', 'release', 'rollback_to']);

/** True only when the statement cannot write: unknown functions, EXECUTE, FETCH, DO, CALL are not. */
function readOnly(tree: Node, scan: TreeScan, dangerous: FunctionMatcher): boolean {
  const node = unwrap(tree);
  if (!node) return false;
  const b = node.body;
  if (scan.dangerousFunctions.length > 0) return false;
  const inner = (q: unknown): boolean => {
    const n = q as Node | undefined;
    return n !== undefined && readOnly(n, scanTree(n, dangerous), dangerous);
  };
  switch (node.tag) {
    case 'SelectStmt':
      return !b.intoClause && !scan.locking && !scan.nestedDml && !scan.callsImpureFunction;
    case 'ExplainStmt': {
      const analyze = defElems(b.options).some((d) => d.defname === 'analyze' && defTrue(d.arg));
      // Without ANALYZE nothing runs, but the planner may still evaluate immutable functions.
      return analyze ? inner(b.query) : !scan.callsImpureFunction;
    }
    case 'PrepareStmt':
    case 'DeclareCursorStmt':
      return inner(b.query);
    case 'CopyStmt':
      if (b.is_from || b.is_program || typeof b.filename === 'string') return false;
      return b.query ? inner(b.query) : !scan.callsImpureFunction;
    case 'TransactionStmt': {
      const sub = TRANSACTION_CONTROL[b.kind as TransactionStmtKind]?.sub;
      return sub !== undefined && READ_ONLY_TRANSACTION.has(sub);
    }
    default:
      return READ_ONLY_UTILITY.has(node.tag) && !scan.callsImpureFunction;
  }
}

function targetName(tag: string, b: Body): string | undefined {
  switch (tag) {
    case 'PrepareStmt':
    case 'ExecuteStmt':
    case 'DeallocateStmt':
      return typeof b.name === 'string' ? b.name : undefined;
    case 'DeclareCursorStmt':
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return typeof b.portalname === 'string' ? b.portalname : undefined;
    default:
      return undefined;
  }
}

let defaultClassifier: SqlClassifier | undefined;

/** The process-wide classifier used by classify(); replace it with configureClassifier(). */
export function configureClassifier(options: ClassifierOptions): SqlClassifier {
  defaultClassifier = new SqlClassifier(options);
  return defaultClassifier;
}

/** Classifies `sql` with the process-wide classifier (default options unless configured). */
export function classify(sql: string): Classification {
  defaultClassifier ??= new SqlClassifier();
  return defaultClassifier.classify(sql);
}

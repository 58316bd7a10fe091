// A conservative T-SQL classifier: what each statement of a SQLBatch (or an RPC's statement text)
// does, in the same Classification shape the PostgreSQL classifier gives (src/sql/types.ts), so
// the statement rules, transcripts and approvals read both alike.
//
// T-SQL has no parser here, so this works on tokens (tsql-lexer.ts): it splits the batch into
// statements at the keywords that start one (T-SQL needs no semicolons), names each statement's
// kind from its leading keywords, and collects the tables after FROM/JOIN/INTO/UPDATE/…, the
// functions and procedures called, and the flags the policy reads. It errs on the side of
// danger: a text it cannot read (unterminated strings, dynamic SQL from a variable, a procedure
// named by a variable, ODBC escapes, GO) is `ok: false`, which policy treats as touching
// everything; a function it does not know makes a statement "may write"; and if any keyword that
// writes appears anywhere in a batch whose statements all look read-only, none of them is.
//
// How the PostgreSQL vocabulary maps (see docs/sqlserver.md): DENY is `revoke`; CREATE/ALTER/DROP
// of logins, users and roles is `role`; EXEC of a procedure is `call`, EXEC of a string is `do`
// (with the doBlock flag); USE, EXECUTE AS, SETUSER and REVERT set sessionEscape; sp_configure,
// RECONFIGURE, ALTER DATABASE and ALTER SERVER set alterSystem; xp_cmdshell sets copyProgram,
// BULK INSERT and OPENROWSET(BULK …) copyFromFile, BACKUP copyToFile. Commands that reach outside
// the database (SHUTDOWN, KILL, DBCC, BACKUP, RESTORE, linked servers) are listed among the
// dangerous functions next to the dangerous procedures (xp_*, sp_configure, sp_OA*, …).
import { createHash } from 'node:crypto';
import type { Node } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import type { Classification, DdlInfo, StatementFlags, StatementInfo, StatementKind, TransactionControl } from '../sql/types.js';
import { lexTsql, LexError, type SqlToken } from './tsql-lexer.js';
import { isDangerousRoutine, PRIVILEGE_PROCEDURES, PROCEDURE_KINDS, READ_ONLY_PROCEDURES, STATEMENT_STARTERS } from './tsql-names.js';
import { foldedLastPart, knownReadOnlyRoutine, literalConcat, qualifiedName, StatementScan, type Head, type Mutable } from './tsql-scan.js';
import { mergeUnbounded } from './tsql-where.js';

/** Stands in for the parse tree T-SQL statements do not have (lineage then knows nothing: fail closed). */
const NO_TREE: Node = Object.freeze({ List: { items: [] } }) as Node;

const MAX_SQL_LENGTH = 4 * 1024 * 1024;
const MAX_DYNAMIC_DEPTH = 3;
const CACHE_TEXT_LIMIT = 64 * 1024;

class NotUnderstood extends Error {
  override readonly name = 'NotUnderstood';
}

const cache = new LRUCache<string, Classification>({ max: 4096 });

/** Classifies a T-SQL text. The same text gives the same (frozen) object, so verdicts can be cached per classification. */
export function classifyTsql(sql: string): Classification {
  const cached = sql.length <= CACHE_TEXT_LIMIT ? cache.get(sql) : undefined;
  if (cached) return cached;
  const result = deepFreeze(classifyText(sql, 0));
  if (sql.length <= CACHE_TEXT_LIMIT) cache.set(sql, result);
  return result;
}

function classifyText(sql: string, depth: number): Classification {
  if (sql.length > MAX_SQL_LENGTH) return { ok: false, error: `statement text longer than ${MAX_SQL_LENGTH} characters` };
  let tokens: SqlToken[];
  try {
    tokens = lexTsql(sql);
  } catch (err) {
    if (err instanceof LexError) return { ok: false, error: err.message };
    throw err;
  }
  if (tokens.some((x) => x.kind === 'op' && (x.text === '{' || x.text === '}'))) return { ok: false, error: 'ODBC escape sequences are not understood' };
  try {
    const statements = new Batch(sql, tokens, depth).statements();
    return { ok: true, statements };
  } catch (err) {
    if (err instanceof NotUnderstood) return { ok: false, error: err.message };
    throw err;
  }
}

// ---- statements ------------------------------------------------------------------------------

const TRAN_WORDS = new Set(['TRAN', 'TRANSACTION', 'WORK']);
/** Keywords that write when they appear anywhere in a batch (the safety net of readOnly). */
const WRITE_WORDS = new Set([
  'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE', 'CREATE', 'ALTER', 'DROP', 'GRANT', 'REVOKE', 'DENY', 'BULK', 'BACKUP', 'RESTORE', 'DBCC', 'KILL', 'SHUTDOWN', 'RECONFIGURE', 'WRITETEXT', 'UPDATETEXT', 'SEND', 'RECEIVE',
  'SETUSER', 'CHECKPOINT', 'ENABLE', 'DISABLE', 'OPENROWSET', 'OPENQUERY', 'OPENDATASOURCE',
]);
const OBJECT_TYPE_WORDS = new Set([
  'TABLE', 'VIEW', 'INDEX', 'PROCEDURE', 'PROC', 'FUNCTION', 'TRIGGER', 'SCHEMA', 'DATABASE', 'LOGIN', 'USER', 'ROLE',
  'TYPE', 'SEQUENCE', 'SYNONYM', 'STATISTICS', 'APPLICATION', 'SERVER', 'CREDENTIAL', 'CERTIFICATE', 'ASSEMBLY',
  'PARTITION', 'FULLTEXT', 'XML', 'EVENT', 'SESSION', 'ENDPOINT', 'QUEUE', 'SERVICE', 'CONTRACT', 'MESSAGE',
  'ASYMMETRIC', 'SYMMETRIC', 'MASTER', 'KEY', 'RULE', 'DEFAULT', 'AGGREGATE', 'COLUMN', 'ENCRYPTION', 'EXTERNAL',
  'DATA', 'SOURCE', 'FILE', 'FORMAT', 'RESOURCE', 'POOL', 'WORKLOAD', 'GROUP', 'AUDIT', 'SPECIFICATION', 'SECURITY',
  'POLICY', 'SEARCH', 'PROPERTY', 'LIST', 'STOPLIST', 'CATALOG', 'BROKER', 'PRIORITY', 'ROUTE', 'REMOTE', 'BINDING',
  'UNIQUE', 'CLUSTERED', 'NONCLUSTERED', 'COLUMNSTORE', 'SPATIAL', 'PRIMARY', 'SELECTIVE', 'SECONDARY', 'OR',
  'CONFIGURATION', 'GOVERNOR', 'NOTIFICATION', 'SIGNATURE', 'COUNTER', 'AUTHORIZATION', 'LANGUAGE', 'LIBRARY',
]);
const BODY_OBJECTS = new Set(['PROCEDURE', 'PROC', 'FUNCTION', 'TRIGGER', 'VIEW']);

const KIND_READ_ONLY: ReadonlySet<StatementKind> = new Set(['select', 'set', 'transaction', 'fetch', 'close_cursor', 'deallocate', 'declare_cursor', 'show']);

class Batch {
  private readonly n: number;

  constructor(
    private readonly sql: string,
    private readonly t: readonly SqlToken[],
    private readonly depth: number,
  ) {
    this.n = t.length;
  }

  statements(): StatementInfo[] {
    const out: StatementInfo[] = [];
    let i = 0;
    while (i < this.n) {
      const tok = this.t[i]!;
      if (tok.kind === 'punct' && tok.text === ';') {
        i++;
        continue;
      }
      // a label `name:`
      if (tok.kind === 'word' && !STATEMENT_STARTERS.has(tok.value) && this.t[i + 1]?.text === ':') {
        i += 2;
        continue;
      }
      const end = this.statement(i, out.length === 0, out);
      if (end <= i) throw new NotUnderstood(`cannot read the statement at offset ${tok.start}`);
      i = end;
    }
    // CREATE SCHEMA runs the schema elements after it as part of itself, up to a statement that is
    // not one: which of the following statements those are is not read here.
    if (out.length > 1 && out.some((s) => s.commandTag === 'CREATE SCHEMA')) throw new NotUnderstood('CREATE SCHEMA followed by other statements in the batch');
    // The safety net: a write keyword anywhere makes no statement of this batch read-only.
    if (out.length > 0 && out.every((s) => s.readOnly) && this.writesAnywhere()) {
      for (let k = 0; k < out.length; k++) out[k] = { ...out[k]!, readOnly: false };
    }
    return out;
  }

  private writesAnywhere(): boolean {
    for (let i = 0; i < this.n; i++) {
      const tok = this.t[i]!;
      if (tok.kind !== 'word') continue;
      if (WRITE_WORDS.has(tok.value)) return true;
      if (tok.value === 'INTO' && this.t[i + 1]?.kind !== 'variable') return true;
      if (tok.value === 'NEXT' && this.t[i + 1]?.value === 'VALUE') return true;
    }
    return false;
  }

  /** Reads the statement starting at `i`, appends what it found (one statement, or several from dynamic SQL), returns where it ends. */
  private statement(i: number, first: boolean, out: StatementInfo[]): number {
    const tok = this.t[i]!;
    let head: Head;
    let cte: [number, number] | undefined;
    if (tok.kind === 'word' && tok.value === 'WITH' && this.isCte(i)) {
      const main = this.skipCtes(i + 1);
      head = this.head(main, false);
      if (!['select', 'insert', 'update', 'delete', 'merge'].includes(head.kind)) throw new NotUnderstood(`WITH before ${head.tag}`);
      cte = [i + 1, main];
    } else {
      head = this.head(i, first);
    }
    const end = head.body ? this.n : this.findEnd(head);
    const info = this.describe(i, end, head, cte);
    out.push(...info);
    return end;
  }

  private word(i: number): string | undefined {
    const tok = this.t[i];
    return tok?.kind === 'word' ? tok.value : undefined;
  }

  private head(i: number, first: boolean): Head {
    const tok = this.t[i];
    if (!tok) throw new NotUnderstood('statement ends too early');
    const w = tok.kind === 'word' ? tok.value : '';
    const w1 = this.word(i + 1);
    const h = (kind: StatementKind, tag: string, next = i + 1): Head => ({ kind, tag, verb: w, next });
    switch (w) {
      case 'SELECT':
        return h('select', 'SELECT');
      case 'INSERT':
        return h('insert', 'INSERT');
      case 'UPDATE':
        return w1 === 'STATISTICS' ? h('analyze', 'UPDATE STATISTICS', i + 2) : h('update', 'UPDATE');
      case 'DELETE':
        return h('delete', 'DELETE');
      case 'MERGE':
        return h('merge', 'MERGE');
      case 'TRUNCATE':
        return h('truncate', 'TRUNCATE TABLE');
      case 'CREATE':
      case 'ALTER':
      case 'DROP':
        return this.ddlHead(i, w);
      case 'GRANT':
        return h('grant', 'GRANT');
      case 'REVOKE':
        return h('revoke', 'REVOKE');
      case 'DENY':
        return h('revoke', 'DENY');
      case 'EXEC':
      case 'EXECUTE':
        if (w1 === 'AS') return h('set_role', 'EXECUTE AS', i + 2);
        return h('call', 'EXECUTE');
      case 'BEGIN':
        if (w1 === 'TRAN' || w1 === 'TRANSACTION') return h('transaction', 'BEGIN TRANSACTION', i + 2);
        if (w1 === 'DISTRIBUTED') return h('transaction', 'BEGIN DISTRIBUTED TRANSACTION', i + 3);
        if (w1 === 'TRY' || w1 === 'CATCH') return h('other', `BEGIN ${w1}`, i + 2);
        if (w1 === 'DIALOG' || w1 === 'CONVERSATION') return h('other', `BEGIN ${w1}`, i + 2);
        return h('other', 'BEGIN');
      case 'END':
        if (w1 === 'TRY' || w1 === 'CATCH') return h('other', `END ${w1}`, i + 2);
        if (w1 === 'CONVERSATION') return h('other', 'END CONVERSATION', i + 2);
        return h('other', 'END');
      case 'COMMIT':
        return h('transaction', 'COMMIT TRANSACTION', TRAN_WORDS.has(w1 ?? '') ? i + 2 : i + 1);
      case 'ROLLBACK':
        return h('transaction', 'ROLLBACK TRANSACTION', TRAN_WORDS.has(w1 ?? '') ? i + 2 : i + 1);
      case 'SAVE':
        return h('transaction', 'SAVE TRANSACTION', TRAN_WORDS.has(w1 ?? '') ? i + 2 : i + 1);
      case 'SET':
        return h('set', 'SET');
      case 'USE':
        return h('set', 'USE');
      case 'DECLARE':
        return this.t[i + 2]?.kind === 'word' && (this.word(i + 2) === 'CURSOR' || this.word(i + 3) === 'CURSOR')
          ? h('declare_cursor', 'DECLARE CURSOR')
          : h('set', 'DECLARE');
      case 'OPEN':
        // OPEN SYMMETRIC KEY / OPEN MASTER KEY make encrypted columns readable for the session: not a cursor.
        if ((w1 === 'SYMMETRIC' || w1 === 'MASTER') && this.word(i + 2) === 'KEY') return h('other', `OPEN ${w1} KEY`, i + 3);
        return h('fetch', 'OPEN');
      case 'FETCH':
        return h('fetch', 'FETCH');
      case 'CLOSE':
        return h('close_cursor', 'CLOSE');
      case 'DEALLOCATE':
        return h('deallocate', 'DEALLOCATE');
      case 'IF':
      case 'ELSE':
      case 'WHILE':
      case 'RETURN':
      case 'BREAK':
      case 'CONTINUE':
      case 'GOTO':
      case 'PRINT':
      case 'RAISERROR':
      case 'THROW':
      case 'WAITFOR':
        return h('other', w);
      case 'BULK':
        if (w1 !== 'INSERT') throw new NotUnderstood('BULK without INSERT');
        return h('copy', 'BULK INSERT', i + 2);
      case 'BACKUP':
      case 'RESTORE':
      case 'DBCC':
      case 'KILL':
      case 'SHUTDOWN':
      case 'CHECKPOINT':
      case 'READTEXT':
      case 'WRITETEXT':
      case 'UPDATETEXT':
      case 'RECEIVE':
      case 'SEND':
      case 'GET':
      case 'MOVE':
        return h('other', w);
      case 'RECONFIGURE':
        return h('alter_system', 'RECONFIGURE');
      case 'SETUSER':
        return h('set_role', 'SETUSER');
      case 'REVERT':
        return h('reset', 'REVERT');
      case 'ENABLE':
      case 'DISABLE':
        return h('alter', `${w} TRIGGER`);
      case 'GO':
        throw new NotUnderstood('GO is a client-side batch separator, not T-SQL');
      default:
        // A batch may start by naming a procedure without EXEC.
        if (first && (tok.kind === 'word' || tok.kind === 'qident') && !STATEMENT_STARTERS.has(w)) {
          return { kind: 'call', tag: 'EXECUTE', verb: 'EXEC', next: i };
        }
        throw new NotUnderstood(`unknown statement starting with "${tok.text.slice(0, 40)}"`);
    }
  }

  private ddlHead(i: number, verb: string): Head {
    let j = i + 1;
    const words: string[] = [];
    while (j < this.n && this.t[j]!.kind === 'word' && OBJECT_TYPE_WORDS.has(this.t[j]!.value)) {
      const v = this.t[j]!.value;
      // CREATE OR ALTER
      if (v === 'OR' && this.word(j + 1) === 'ALTER') {
        j += 2;
        continue;
      }
      words.push(v === 'PROC' ? 'PROCEDURE' : v);
      j++;
      // one object type, except multi-word ones (APPLICATION ROLE, MASTER KEY, EVENT SESSION, …)
      if (!['APPLICATION', 'SERVER', 'ASYMMETRIC', 'SYMMETRIC', 'MASTER', 'EVENT', 'EXTERNAL', 'FULLTEXT', 'XML', 'PARTITION', 'UNIQUE', 'CLUSTERED', 'NONCLUSTERED', 'COLUMNSTORE', 'SPATIAL', 'PRIMARY', 'SELECTIVE', 'SECONDARY', 'DATA', 'FILE', 'RESOURCE', 'WORKLOAD', 'SECURITY', 'SEARCH', 'BROKER', 'REMOTE', 'COLUMN', 'MESSAGE', 'DATABASE', 'AUDIT', 'ENCRYPTION', 'CRYPTOGRAPHIC'].includes(v)) break;
    }
    if (words.length === 0) throw new NotUnderstood(`${verb} of an object type warden does not know`);
    const objectType = words.filter((x) => !['UNIQUE', 'CLUSTERED', 'NONCLUSTERED', 'PRIMARY', 'SELECTIVE', 'SECONDARY'].includes(x)).join(' ');
    const main = words.find((x) => BODY_OBJECTS.has(x));
    const last = words[words.length - 1];
    const kind: StatementKind = last === 'LOGIN' || last === 'USER' || last === 'ROLE' ? 'role' : (verb.toLowerCase() as StatementKind);
    // CREATE SCHEMA is not one: its elements (CREATE TABLE/VIEW, GRANT, …) are statements of their
    // own, and statements after them run (statements() refuses a batch that has any).
    const body = verb !== 'DROP' && main !== undefined;
    return { kind, tag: `${verb} ${objectType}`, verb, next: j, ...(body ? { body } : {}) };
  }

  private isCte(i: number): boolean {
    const a = this.t[i + 1];
    if (!a) return false;
    if (a.kind === 'word' && a.value === 'XMLNAMESPACES') return true;
    if (a.kind !== 'word' && a.kind !== 'qident') return false;
    let j = i + 2;
    if (this.t[j]?.text === '(') {
      j = this.skipParens(j);
    }
    return this.word(j) === 'AS' && this.t[j + 1]?.text === '(';
  }

  /** Skips `name [(cols)] AS (…) [, …]` (and XMLNAMESPACES(…)); returns the index of the main statement keyword. */
  private skipCtes(i: number): number {
    let j = i;
    for (;;) {
      if (this.word(j) === 'XMLNAMESPACES') {
        j = this.skipParens(j + 1);
      } else {
        j++; // name
        if (this.t[j]?.text === '(') j = this.skipParens(j);
        if (this.word(j) !== 'AS') throw new NotUnderstood('WITH without AS');
        j = this.skipParens(j + 1);
      }
      if (this.t[j]?.text === ',') {
        j++;
        continue;
      }
      return j;
    }
  }

  /** Index after the parenthesis group opening at `i`. */
  private skipParens(i: number): number {
    if (this.t[i]?.text !== '(') throw new NotUnderstood('expected (');
    let depth = 0;
    for (let j = i; j < this.n; j++) {
      const x = this.t[j]!.text;
      if (this.t[j]!.kind !== 'punct') continue;
      if (x === '(') depth++;
      else if (x === ')') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    throw new NotUnderstood('unbalanced parentheses');
  }

  /** Where the statement whose head is `head` ends: at `;`, at the end, or at the next statement keyword it does not absorb. */
  private findEnd(head: Head): number {
    let depth = 0;
    let caseDepth = 0;
    let sawTo = false;
    let setSeen = false;
    let insertSource = false;
    const nameEnd = this.objectNameEnd(head);
    for (let j = head.next; j < this.n; j++) {
      const tok = this.t[j]!;
      if (tok.kind === 'punct') {
        if (tok.text === '(') depth++;
        else if (tok.text === ')') {
          depth--;
          if (depth < 0) throw new NotUnderstood('unbalanced parentheses');
        } else if (tok.text === ';' && depth === 0) return j;
        continue;
      }
      if (depth > 0 || tok.kind !== 'word') continue;
      const k = tok.value;
      if (k === 'CASE') {
        caseDepth++;
        continue;
      }
      if (caseDepth > 0 && (k === 'END' || k === 'ELSE')) {
        if (k === 'END') caseDepth--;
        continue;
      }
      if ((k === 'TO' || k === 'FROM') && (head.verb === 'GRANT' || head.verb === 'REVOKE' || head.verb === 'DENY')) sawTo = true;
      if (head.verb === 'INSERT' && (k === 'VALUES' || k === 'DEFAULT')) insertSource = true;
      if (!STATEMENT_STARTERS.has(k)) continue;
      const prev = this.t[j - 1];
      const p = prev?.kind === 'word' ? prev.value : prev?.text;
      if (this.continues(head, k, p, j, { sawTo, setSeen, insertSource, nameEnd })) {
        if (k === 'SET') setSeen = true;
        if (head.verb === 'INSERT' && (k === 'SELECT' || k === 'EXEC' || k === 'EXECUTE')) insertSource = true;
        continue;
      }
      return j;
    }
    if (depth !== 0) throw new NotUnderstood('unbalanced parentheses');
    return this.n;
  }

  /** For ALTER: the index just after `ALTER <type> <name>`, where the first action keyword goes. */
  private objectNameEnd(head: Head): number {
    if (head.verb !== 'ALTER') return -1;
    return this.nameEndAt(head.next);
  }

  private nameEndAt(i: number): number {
    let j = i;
    if (this.t[j]?.kind !== 'word' && this.t[j]?.kind !== 'qident') return j;
    j++;
    while (this.t[j]?.text === '.') {
      j++;
      if (this.t[j]?.kind === 'word' || this.t[j]?.kind === 'qident') j++;
    }
    return j;
  }

  private continues(head: Head, k: string, prev: string | undefined, j: number, s: { sawTo: boolean; setSeen: boolean; insertSource: boolean; nameEnd: number }): boolean {
    const v = head.verb;
    if ((v === 'GRANT' || v === 'REVOKE' || v === 'DENY') && !s.sawTo) return true;
    switch (k) {
      case 'SELECT':
        if (prev === 'UNION' || prev === 'ALL' || prev === 'EXCEPT' || prev === 'INTERSECT' || prev === 'FOR') return true;
        if (v === 'INSERT' && !s.insertSource) return true;
        if (v === 'DECLARE' && head.kind === 'declare_cursor') return true;
        return false;
      case 'SET':
        if (v === 'UPDATE' && !s.setSeen) return true;
        if (v === 'MERGE' || (v === 'ALTER' && j === s.nameEnd)) return true;
        return (prev === 'DELETE' || prev === 'UPDATE') && (v === 'CREATE' || v === 'ALTER');
      case 'INSERT':
      case 'UPDATE':
      case 'DELETE':
        if (v === 'MERGE' && prev === 'THEN') return true;
        if (prev === 'ON' && (v === 'CREATE' || v === 'ALTER')) return true;
        return prev === 'FOR' && head.kind === 'declare_cursor';
      case 'EXEC':
      case 'EXECUTE':
        return v === 'INSERT' && !s.insertSource;
      case 'DROP':
      case 'ALTER':
      case 'ENABLE':
      case 'DISABLE':
      case 'WITH':
        if (v === 'ALTER' && j === s.nameEnd) return true;
        if (k === 'WITH') return !this.isCte(j);
        return false;
      case 'IF':
        return (v === 'DROP' || v === 'ALTER') && this.word(j + 1) === 'EXISTS';
      case 'FETCH':
        return prev === 'ROWS' || prev === 'ROW';
      case 'BULK':
        // INSERT BULK (the bulk-load statement drivers send before BULK_LOAD data), not BULK INSERT.
        return v === 'INSERT' && prev === 'INSERT';
      default:
        return false;
    }
  }

  // ---- describing one statement ----------------------------------------------------------------

  private describe(start: number, end: number, head: Head, cte: [number, number] | undefined): StatementInfo[] {
    const toks = this.t.slice(start, end);
    const text = toks.length ? this.sql.slice(toks[0]!.start, toks[toks.length - 1]!.end) : '';
    const scan = new StatementScan(this.t, start, head.next, end, head, cte);
    const flags: Mutable<StatementFlags> = {
      noWhere: false,
      dataModifyingCte: false,
      privilegeChange: false,
      sessionEscape: false,
      alterSystem: false,
      doBlock: false,
      copyProgram: false,
      copyToFile: false,
      copyFromFile: false,
    };
    let kind = head.kind;
    let tag = head.tag;
    let readOnly = KIND_READ_ONLY.has(kind);
    let ddl: DdlInfo | undefined;
    let targetName: string | undefined;
    let copy: StatementInfo['copy'];
    const extra: StatementInfo[] = [];
    const dangerous = new Set<string>();

    switch (head.verb) {
      case 'SELECT':
        if (scan.selectInto) {
          kind = 'create';
          tag = 'SELECT INTO';
          readOnly = false;
        }
        break;
      case 'INSERT':
        if (scan.insertBulk) {
          kind = 'copy';
          tag = 'INSERT BULK';
          copy = { direction: 'from', endpoint: 'client' };
        }
        break;
      case 'UPDATE':
      case 'DELETE':
        if (kind === 'update' || kind === 'delete') flags.noWhere = !scan.hasWhereReadingColumns();
        break;
      case 'MERGE':
        flags.noWhere = mergeUnbounded(this.t, head.next, end);
        break;
      case 'CREATE':
      case 'ALTER':
      case 'DROP': {
        const objectType = head.tag.slice(head.verb.length + 1).toLowerCase();
        ddl = { objectType, objects: scan.ddlObjects };
        if (kind === 'role') flags.privilegeChange = true;
        if (head.verb === 'ALTER' && (objectType === 'database' || objectType.startsWith('server') || objectType.startsWith('resource'))) flags.alterSystem = true;
        if (objectType === 'authorization' || objectType.startsWith('server role') || objectType.includes('application role')) flags.privilegeChange = true;
        if (head.verb === 'ALTER' && objectType === 'role') flags.privilegeChange = true;
        if (head.body && scan.executeAsOwner) flags.privilegeChange = true;
        if (head.verb === 'DROP' && objectType === 'database') dangerous.add('DROP DATABASE');
        break;
      }
      case 'GRANT':
      case 'REVOKE':
      case 'DENY':
        flags.privilegeChange = true;
        break;
      case 'EXEC':
      case 'EXECUTE':
        if (kind === 'set_role') {
          flags.sessionEscape = true;
          break;
        }
        ({ kind, readOnly } = this.describeExec(head.next, end, flags, dangerous, extra, scan));
        if (kind === 'do') tag = 'EXECUTE (dynamic SQL)';
        break;
      case 'USE':
        flags.sessionEscape = true;
        targetName = scan.firstName;
        break;
      case 'SETUSER':
      case 'REVERT':
        flags.sessionEscape = true;
        break;
      case 'RECONFIGURE':
        flags.alterSystem = true;
        break;
      case 'BULK':
        flags.copyFromFile = true;
        copy = { direction: 'from', endpoint: 'file', ...(scan.fromFile !== undefined ? { target: scan.fromFile } : {}) };
        break;
      case 'BACKUP':
        flags.copyToFile = true;
        dangerous.add('BACKUP');
        break;
      case 'RESTORE':
      case 'DBCC':
      case 'KILL':
      case 'SHUTDOWN':
        dangerous.add(head.verb);
        break;
      case 'WAITFOR':
        readOnly = scan.waitforDelay;
        // WAITFOR (RECEIVE … FROM queue): as RECEIVE.
        if (this.word(head.next + 1) === 'RECEIVE') scan.widenAccess('delete');
        break;
      case 'RECEIVE':
        // RECEIVE takes the messages it returns off the queue.
        scan.widenAccess('delete');
        break;
      case 'IF':
      case 'ELSE':
      case 'WHILE':
      case 'RETURN':
      case 'BREAK':
      case 'CONTINUE':
      case 'GOTO':
      case 'PRINT':
      case 'RAISERROR':
      case 'THROW':
      case 'BEGIN':
      case 'END':
        readOnly = head.tag !== 'BEGIN DIALOG' && head.tag !== 'BEGIN CONVERSATION' && head.tag !== 'END CONVERSATION';
        break;
      case 'DECLARE':
        if (kind === 'declare_cursor' && scan.forUpdate) readOnly = false;
        break;
      case 'TRUNCATE':
        break;
    }
    if (kind === 'transaction') readOnly = true;

    // What every statement is checked for, whatever its kind.
    for (const f of scan.functions) if (isDangerousRoutine(foldedLastPart(f))) dangerous.add(f);
    if (scan.linkedServer) dangerous.add('linked server');
    if (scan.openRowsetBulk) flags.copyFromFile = true;
    for (const d of scan.execs) {
      const r = this.describeExec(d.at, d.end, flags, dangerous, extra, scan);
      if (r.kind !== 'call' && r.kind !== 'do') throw new NotUnderstood(`${head.tag} runs a procedure that changes the schema`);
      if (!r.readOnly) readOnly = false;
    }
    if (dangerous.size > 0 || scan.writes || scan.locks) readOnly = false;
    if (!head.body && scan.functions.some((f) => !knownReadOnlyRoutine(f))) readOnly = false;
    if (scan.functions.some((f) => foldedLastPart(f) === 'XP_CMDSHELL')) flags.copyProgram = true;
    if (scan.functions.some((f) => foldedLastPart(f) === 'SP_CONFIGURE')) flags.alterSystem = true;
    if (scan.functions.some((f) => PRIVILEGE_PROCEDURES.has(foldedLastPart(f)))) flags.privilegeChange = true;
    if (scan.functions.some((f) => foldedLastPart(f) === 'SP_SETAPPROLE')) flags.sessionEscape = true;
    if (cte && (kind === 'update' || kind === 'delete' || kind === 'insert' || kind === 'merge')) scan.widenAccess(kind);

    const relations = head.body ? scan.relations.filter((r) => r.access === 'ddl') : scan.relations;
    const schemaProcedure = (head.verb === 'EXEC' || head.verb === 'EXECUTE') && kind !== 'call' && kind !== 'do' && kind !== 'set_role';
    const info: StatementInfo = {
      kind,
      nodeType: `TSQL ${tag}`,
      commandTag: tag,
      readOnly,
      flags: { ...flags, ...(kind === 'transaction' ? { transactionControl: transactionControl(tag) } : {}) },
      dangerousFunctions: [...dangerous],
      functions: scan.functions,
      relations,
      ...(ddl ? { ddl } : {}),
      ...(copy ? { copy } : {}),
      ...(targetName !== undefined ? { targetName } : {}),
      // A procedure that changes the schema (sp_rename) names its objects in string literals: they stay in.
      fingerprint: fingerprint(toks, schemaProcedure),
      normalized: normalize(this.sql, toks),
      text,
      start: toks[0]?.start ?? 0,
      tree: NO_TREE,
    };
    return [info, ...extra];
  }

  /**
   * EXEC at `i` (after the EXEC keyword): a procedure call, or dynamic SQL. Dynamic SQL from
   * literals is classified in turn (its statements are appended to `extra`); from anything else it
   * is not understood.
   */
  private describeExec(i: number, end: number, flags: Mutable<StatementFlags>, dangerous: Set<string>, extra: StatementInfo[], scan: StatementScan): { kind: StatementKind; readOnly: boolean } {
    let j = i;
    const tok = this.t[j];
    if (!tok) throw new NotUnderstood('EXEC without a procedure');
    if (tok.text === '(') {
      const close = this.skipParens(j);
      const text = literalConcat(this.t, j + 1, close - 1);
      if (text === undefined) throw new NotUnderstood('EXEC of dynamic SQL built at run time');
      if (this.word(close) === 'AT') dangerous.add('linked server');
      // EXEC ('…') AS LOGIN | USER = '…': the text runs as somebody else
      if (this.word(close) === 'AS') flags.sessionEscape = true;
      flags.doBlock = true;
      this.dynamic(text, extra);
      return { kind: 'do', readOnly: extra.every((s) => s.readOnly) };
    }
    if (tok.kind === 'variable') {
      if (this.t[j + 1]?.text !== '=') throw new NotUnderstood('EXEC of a procedure named by a variable');
      j += 2;
    }
    const nameEnd = this.nameEndAt(j);
    if (nameEnd === j) throw new NotUnderstood('EXEC of something that is not a procedure name');
    if (this.t[nameEnd]?.kind === 'variable' && this.t[nameEnd - 1]?.kind === 'variable') throw new NotUnderstood('EXEC of a procedure named by a variable');
    const name = qualifiedName(this.t, j, nameEnd);
    const upper = foldedLastPart(name);
    scan.addFunction(name);
    if (upper === 'SP_EXECUTESQL' || upper === 'SP_SQLEXEC' || upper === 'SP_PREPEXEC' || upper === 'SP_PREPARE' || upper === 'SP_CURSOROPEN' || upper === 'SP_CURSORPREPARE' || upper === 'SP_CURSORPREPEXEC') {
      // The statement is a parameter: classify it when it is a literal.
      const first = this.firstArgument(nameEnd, end, upper);
      if (first === undefined) throw new NotUnderstood(`${name} with a statement built at run time`);
      flags.doBlock = true;
      this.dynamic(first, extra);
      return { kind: 'do', readOnly: extra.every((s) => s.readOnly) };
    }
    if (upper === 'SP_EXECUTE' || upper === 'SP_CURSOREXECUTE' || upper === 'SP_CURSOR') {
      throw new NotUnderstood(`${name} runs a statement prepared elsewhere`);
    }
    if (upper === 'SP_MSFOREACHTABLE' || upper === 'SP_MSFOREACHDB') flags.doBlock = true;
    if (isDangerousRoutine(upper)) dangerous.add(name);
    const kind = PROCEDURE_KINDS.get(upper);
    if (kind) return { kind, readOnly: false };
    return { kind: 'call', readOnly: READ_ONLY_PROCEDURES.has(upper) };
  }

  /** The statement argument of sp_executesql & co. when given as a literal (by position or @stmt=). */
  private firstArgument(i: number, end: number, proc: string): string | undefined {
    const position = proc === 'SP_EXECUTESQL' || proc === 'SP_SQLEXEC' || proc === 'SP_CURSOROPEN' ? 0 : proc === 'SP_CURSORPREPEXEC' ? 3 : 2;
    const args: Array<[number, number]> = [];
    let depth = 0;
    let from = i;
    for (let j = i; j <= end; j++) {
      const x = this.t[j];
      if (j === end || (depth === 0 && x?.text === ',')) {
        args.push([from, j]);
        from = j + 1;
        if (j === end) break;
        continue;
      }
      if (x?.text === '(') depth++;
      if (x?.text === ')') depth--;
    }
    for (const [a, b] of args) {
      if (this.t[a]?.kind === 'variable' && this.t[a + 1]?.text === '=' && ['@STMT', '@STATEMENT', '@SQL'].includes(this.t[a]!.value)) {
        return literalConcat(this.t, a + 2, b);
      }
    }
    const arg = args[proc === 'SP_CURSOROPEN' ? 1 : position];
    if (!arg) return undefined;
    const [a, b] = arg;
    if (this.t[a]?.kind === 'variable' && this.t[a + 1]?.text === '=') return literalConcat(this.t, a + 2, b);
    return literalConcat(this.t, a, b);
  }

  private dynamic(text: string, extra: StatementInfo[]): void {
    if (this.depth >= MAX_DYNAMIC_DEPTH) throw new NotUnderstood('dynamic SQL nested too deeply');
    const inner = classifyText(text, this.depth + 1);
    if (!inner.ok) throw new NotUnderstood(`dynamic SQL: ${inner.error}`);
    extra.push(...inner.statements);
  }
}

function transactionControl(tag: string): TransactionControl {
  if (tag.startsWith('BEGIN')) return 'begin';
  if (tag.startsWith('COMMIT')) return 'commit';
  if (tag.startsWith('SAVE')) return 'savepoint';
  return 'rollback';
}

/**
 * Literal-insensitive digest of the statement's tokens (names case-folded, as SQL Server's default
 * collation compares them); `keepStrings` keeps string literals in (case-folded too).
 */
function fingerprint(toks: readonly SqlToken[], keepStrings = false): string {
  const h = createHash('sha256').update('tsql\n');
  for (const x of toks) {
    const literal = x.kind === 'number' || (x.kind === 'string' && !keepStrings);
    const part = literal ? '?' : x.kind === 'string' ? `'${x.value.toLowerCase()}'` : x.kind === 'qident' ? `[${x.value.toLowerCase()}]` : x.kind === 'word' ? x.value : x.text.toLowerCase();
    h.update(part).update(' ');
  }
  return h.digest('hex').slice(0, 16);
}

/** The statement with its literals replaced by $1, $2, … (for approvers and transcripts). */
function normalize(sql: string, toks: readonly SqlToken[]): string {
  if (toks.length === 0) return '';
  let out = '';
  let at = toks[0]!.start;
  let n = 0;
  for (const x of toks) {
    if (x.kind !== 'string' && x.kind !== 'number') continue;
    out += `${sql.slice(at, x.start)}$${++n}`;
    at = x.end;
  }
  return out + sql.slice(at, toks[toks.length - 1]!.end);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

// ---- RPC ---------------------------------------------------------------------------------------

/**
 * The parts of a procedure name as an RPC names it (`sp_executesql`, `dbo.count_active`,
 * `[master]..[xp_cmdshell]`, `"dbo"."p"`), or undefined when it is not a plain multi-part name:
 * spaces around the parts, `;1` numbers, anything the server might read otherwise than warden.
 */
export function procedureNameParts(name: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    const c = name[i];
    let part: string;
    if (c === '[' || c === '"') {
      const close = c === '[' ? ']' : '"';
      part = '';
      let j = i + 1;
      for (;;) {
        const k = name.indexOf(close, j);
        if (k < 0) return undefined;
        part += name.slice(j, k);
        if (name[k + 1] === close) {
          part += close;
          j = k + 2;
          continue;
        }
        i = k + 1;
        break;
      }
    } else {
      const m = /^[\p{L}_#@$][\p{L}\p{N}_#@$]*/u.exec(name.slice(i));
      part = m?.[0] ?? '';
      i += part.length;
    }
    parts.push(part);
    if (i === name.length) return part === '' ? undefined : parts;
    if (name[i] !== '.') return undefined;
    i++;
  }
}

/** A procedure called by name through RPC: an EXEC of it; a name warden cannot read is not understood. */
export function classifyProcedure(name: string): Classification {
  const parts = procedureNameParts(name);
  if (!parts || parts.length > 4) return { ok: false, error: `procedure name ${JSON.stringify(name.slice(0, 200))} is not a name warden can read` };
  return classifyTsql(`EXEC ${parts.map((p) => (p === '' ? '' : `[${p.replace(/]/g, ']]')}]`)).join('.')}`);
}

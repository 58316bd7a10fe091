// One pass over the tokens of one T-SQL statement for the classifier (classify.ts): the tables
// after FROM/JOIN/USING/INTO/UPDATE/DELETE/… with how each is touched, the functions and
// procedures called, EXECs inside other statements, the WHERE clause, and a few facts
// (SELECT INTO, NEXT VALUE FOR, OPENROWSET(BULK …), four-part names).
import type { RelationAccess, RelationRef, StatementKind } from '../sql/types.js';
import type { SqlToken } from './tsql-lexer.js';
import { BUILTIN_FUNCTIONS, LOCK_HINTS, NOT_FUNCTIONS, READ_ONLY_PROCEDURES, STATEMENT_STARTERS, TABLE_HINTS, TYPE_NAMES } from './tsql-names.js';
import { conditionReadsColumns, cteWhere } from './tsql-where.js';

/** What a statement's leading keywords make it, before its body is read. */
export interface Head {
  kind: StatementKind;
  tag: string;
  /** The keyword the splitting rules look at (SELECT, INSERT, CREATE, GRANT, …). */
  verb: string;
  /** Index of the first token after the leading keywords. */
  next: number;
  /** CREATE/ALTER PROCEDURE/FUNCTION/TRIGGER/VIEW and CREATE SCHEMA run to the end of the batch. */
  body?: boolean;
}

const JOINS = new Set(['JOIN', 'APPLY']);

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One pass over a statement's tokens: relations, functions, embedded EXECs, and a few facts. */
export class StatementScan {
  readonly relations: RelationRef[] = [];
  readonly functions: string[] = [];
  readonly execs: Array<{ at: number; end: number }> = [];
  readonly ddlObjects: string[] = [];
  selectInto = false;
  writes = false;
  forUpdate = false;
  /** A table hint takes locks that outlive the statement (UPDLOCK, XLOCK, TABLOCK, HOLDLOCK, …). */
  locks = false;
  executeAsOwner = false;
  linkedServer = false;
  openRowsetBulk = false;
  waitforDelay = false;
  /** INSERT BULK: a bulk load from the client follows (tedious, bcp). */
  insertBulk = false;
  fromFile: string | undefined;
  firstName: string | undefined;
  private readonly cteNames = new Set<string>();
  private whereAt = -1;
  /** The name range of the table reference tableRef() read last, for its hints. */
  private lastRef: [number, number] | undefined;
  /** UPDATE/DELETE: the target when it is one name (it may be a CTE's). */
  private dmlTarget: string | undefined;
  private readonly seen = new Set<string>();

  constructor(
    private readonly t: readonly SqlToken[],
    private readonly start: number,
    private readonly from: number,
    private readonly to: number,
    private readonly head: Head,
    private readonly cte: [number, number] | undefined,
  ) {
    this.collectCtes();
    this.run();
  }

  addFunction(name: string): void {
    if (!this.functions.includes(name)) this.functions.push(name);
  }

  private addRelation(at: number, end: number, access: RelationAccess): void {
    const parts = nameParts(this.t, at, end);
    if (parts.length === 0) return;
    const name = parts[parts.length - 1]!;
    if (name.startsWith('@')) return; // a table variable
    if (parts.length === 1 && this.cteNames.has(name.toUpperCase())) return;
    if (parts.length >= 4) this.linkedServer = true;
    const ref: RelationRef =
      parts.length >= 3
        ? { catalog: parts[parts.length - 3]!, ...(parts[parts.length - 2] ? { schema: parts[parts.length - 2]! } : {}), name, access }
        : parts.length === 2
          ? { ...(parts[0] ? { schema: parts[0] } : {}), name, access }
          : { name, access };
    const key = `${ref.catalog ?? ''}.${ref.schema ?? ''}.${ref.name}.${access}`.toUpperCase();
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.relations.push(ref);
  }

  /** DML on a CTE, or on tables joined in: every table read may be the one written. */
  widenAccess(kind: 'update' | 'delete' | 'insert' | 'merge'): void {
    const access: RelationAccess = kind === 'merge' ? 'update' : kind;
    for (const r of [...this.relations]) if (r.access === 'read') this.addRelationRef({ ...r, access });
  }

  private addRelationRef(ref: RelationRef): void {
    const key = `${ref.catalog ?? ''}.${ref.schema ?? ''}.${ref.name}.${ref.access}`.toUpperCase();
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.relations.push(ref);
  }

  private collectCtes(): void {
    // names defined by WITH … AS ( anywhere in the statement
    for (let j = this.start; j < this.to; j++) {
      if (this.t[j]?.kind === 'word' && this.t[j]!.value === 'AS' && this.t[j + 1]?.text === '(') {
        let k = j - 1;
        if (this.t[k]?.text === ')') {
          let depth = 0;
          for (; k >= 0; k--) {
            if (this.t[k]!.text === ')') depth++;
            else if (this.t[k]!.text === '(') {
              depth--;
              if (depth === 0) break;
            }
          }
          k--;
        }
        const prev = this.t[k - 1];
        const nameTok = this.t[k];
        if (nameTok && (nameTok.kind === 'word' || nameTok.kind === 'qident') && prev && (prev.value === 'WITH' || prev.text === ',')) {
          this.cteNames.add(nameTok.value.toUpperCase());
        }
      }
    }
  }

  private word(i: number): string | undefined {
    const x = this.t[i];
    return x?.kind === 'word' ? x.value : undefined;
  }

  private isName(i: number): boolean {
    const x = this.t[i];
    return x !== undefined && i < this.to && (x.kind === 'qident' || (x.kind === 'word' && !NAME_STOP.has(x.value)) || x.kind === 'variable');
  }

  private nameEnd(i: number): number {
    let j = i;
    if (!this.isName(j) && this.t[j]?.text !== '.') return j;
    if (this.t[j]?.text !== '.') j++;
    while (j < this.to && this.t[j]?.text === '.') {
      j++;
      if (j < this.to && (this.t[j]?.kind === 'word' || this.t[j]?.kind === 'qident')) j++;
    }
    return j;
  }

  /** Skips TOP (n) [PERCENT] [WITH TIES]. */
  private skipTop(i: number): number {
    if (this.word(i) !== 'TOP') return i;
    let j = i + 1;
    if (this.t[j]?.text === '(') {
      let depth = 0;
      for (; j < this.to; j++) {
        if (this.t[j]!.text === '(') depth++;
        if (this.t[j]!.text === ')' && --depth === 0) break;
      }
      j++;
    } else j++;
    if (this.word(j) === 'PERCENT') j++;
    return j;
  }

  /** A table reference at `i` in a FROM list: name [alias] [WITH (hints)], or a function/subquery. Returns the index after it. */
  private tableRef(i: number, access: RelationAccess, extra?: RelationAccess): number {
    const x = this.t[i];
    if (!x) return i;
    if (x.text === '(') {
      // `FROM (customers c JOIN orders o ON …)`: a parenthesised join names its first table here
      // (the JOINs inside are read as the scan goes on); a subquery or VALUES is read by the scan.
      const n = this.t[i + 1];
      if (n && !(n.kind === 'word' && (n.value === 'SELECT' || n.value === 'WITH' || n.value === 'VALUES'))) this.tableRef(i + 1, access, extra);
      return i;
    }
    const end = this.nameEnd(i);
    if (end === i) return i;
    this.lastRef = undefined;
    // `t (NOLOCK)`: table hints without WITH (deprecated, still run) are no function call.
    const legacy = this.t[end]?.text === '(' ? this.hintList(end) : undefined;
    if (this.t[end]?.text === '(' && !legacy) {
      const name = qualifiedName(this.t, i, end);
      this.addFunction(name);
      if (foldedLastPart(name) === 'OPENROWSET' && this.word(end + 1) === 'BULK') this.openRowsetBulk = true;
      return end;
    }
    this.addRelation(i, end, access);
    if (extra) this.addRelation(i, end, extra);
    this.lastRef = [i, end];
    if (legacy) {
      this.noteHints(legacy.locks);
      return legacy.end;
    }
    return end;
  }

  /** The table hints in the parenthesis opening at `open` (`(NOLOCK)`, `(UPDLOCK, INDEX(ix))`), or undefined when it holds anything else. */
  private hintList(open: number): { end: number; locks: boolean } | undefined {
    let depth = 0;
    let locks = false;
    let hints = 0;
    for (let j = open; j < this.to; j++) {
      const x = this.t[j]!;
      if (x.text === '(') depth++;
      else if (x.text === ')') {
        if (--depth === 0) return hints > 0 ? { end: j + 1, locks } : undefined;
      } else if (depth === 1) {
        if (x.kind === 'word' && TABLE_HINTS.has(x.value)) {
          hints++;
          locks ||= LOCK_HINTS.has(x.value);
        } else if (x.text !== ',' && x.text !== '=' && x.kind !== 'number') return undefined;
      }
    }
    return undefined;
  }

  /** Hints that lock rows or tables beyond the statement (UPDLOCK, XLOCK, HOLDLOCK, …): the table is locked, as by FOR UPDATE. */
  private noteHints(locks: boolean): void {
    if (!locks || !this.lastRef) return;
    this.locks = true;
    this.addRelation(this.lastRef[0], this.lastRef[1], 'lock');
  }

  /**
   * UPDATE/DELETE: whether the statement's own WHERE (not one in a subquery or CTE) reads a column;
   * for a DML on a CTE without one, the WHERE of that CTE's query.
   */
  hasWhereReadingColumns(): boolean {
    if (this.whereAt >= 0) {
      if (this.word(this.whereAt + 1) === 'CURRENT' && this.word(this.whereAt + 2) === 'OF') return true;
      return conditionReadsColumns(this.t, this.whereAt + 1, this.to);
    }
    if (!this.cte || this.dmlTarget === undefined) return false;
    const where = cteWhere(this.t, this.cte[0], this.cte[1], this.dmlTarget);
    return where >= 0 && conditionReadsColumns(this.t, where + 1, this.cte[1]);
  }

  private run(): void {
    const t = this.t;
    const v = this.head.verb;
    const dmlAccess: RelationAccess | undefined = v === 'UPDATE' && this.head.kind === 'update' ? 'update' : v === 'DELETE' ? 'delete' : undefined;
    let i = this.from;
    // the statement's own target
    if (v === 'INSERT' || v === 'UPDATE' || v === 'DELETE' || v === 'MERGE') {
      i = this.skipTop(i);
      if (v === 'INSERT' && this.word(i) === 'BULK') {
        this.insertBulk = true;
        i++;
      }
      if (v === 'INSERT' && this.word(i) === 'INTO') i++;
      if (v === 'MERGE' && this.word(i) === 'INTO') i++;
      if (v === 'DELETE' && this.word(i) === 'FROM') i++;
      const end = this.nameEnd(i);
      if (end === i + 1 && (v === 'UPDATE' || v === 'DELETE')) this.dmlTarget = t[i]!.value.toUpperCase();
      if (end > i) {
        if (v === 'MERGE') {
          for (const a of mergeActions(t, i, this.to)) this.addRelation(i, end, a);
        } else {
          this.addRelation(i, end, v === 'INSERT' ? 'insert' : (dmlAccess ?? 'update'));
        }
        i = end;
      }
    } else if (v === 'TRUNCATE') {
      if (this.word(i) === 'TABLE') i++;
      const end = this.nameEnd(i);
      this.addRelation(i, end, 'truncate');
      i = end;
    } else if (v === 'BULK') {
      const end = this.nameEnd(i);
      this.addRelation(i, end, 'insert');
      i = end;
      if (this.word(i) === 'FROM' && t[i + 1]?.kind === 'string') this.fromFile = t[i + 1]!.value;
    } else if (v === 'CREATE' || v === 'ALTER' || v === 'DROP') {
      i = this.ddlNames(i);
    } else if (v === 'USE') {
      if (t[i] && (t[i]!.kind === 'word' || t[i]!.kind === 'qident')) this.firstName = t[i]!.value;
    } else if (v === 'READTEXT' || v === 'WRITETEXT' || v === 'UPDATETEXT') {
      // READTEXT / WRITETEXT / UPDATETEXT [[db.]schema.]table.column …: the table is read or written.
      const end = this.nameEnd(i);
      if (end - i >= 3) this.addRelation(i, end - 2, v === 'READTEXT' ? 'read' : 'update');
      i = end;
    } else if (v === 'ENABLE' || v === 'DISABLE') {
      // {ENABLE|DISABLE} TRIGGER {name, … | ALL} ON {table | DATABASE | ALL SERVER}: DDL on the table.
      for (let j = i; j < this.to; j++) {
        if (this.word(j) !== 'ON') continue;
        const w = this.word(j + 1);
        if (w !== 'DATABASE' && w !== 'ALL') {
          const end = this.nameEnd(j + 1);
          if (end > j + 1) this.addRelation(j + 1, end, 'ddl');
        }
        break;
      }
    } else if (v === 'WAITFOR') {
      this.waitforDelay = this.word(i) === 'DELAY' || this.word(i) === 'TIME';
    } else if (v === 'GRANT' || v === 'REVOKE' || v === 'DENY') {
      for (let j = i; j < this.to; j++) {
        if (this.word(j) === 'ON') {
          let k = j + 1;
          if (t[k + 1]?.text === '::') k += 2;
          const end = this.nameEnd(k);
          this.addRelation(k, end, 'ddl');
          break;
        }
      }
      return;
    }
    if (this.head.body) {
      // CREATE PROCEDURE/FUNCTION/TRIGGER/VIEW …: the body does not run now. Still note what it
      // calls (xp_cmdshell inside a procedure is worth flagging) and WITH EXECUTE AS OWNER.
      for (let j = i; j < this.to; j++) {
        const x = t[j]!;
        if (x.kind === 'word' && x.value === 'EXECUTE' && this.word(j + 1) === 'AS' && (this.word(j + 2) === 'OWNER' || this.word(j + 2) === 'SELF' || t[j + 2]?.kind === 'string')) this.executeAsOwner = true;
        if ((x.kind === 'word' || x.kind === 'qident') && t[j + 1]?.text === '(' && isRoutineCandidate(x) && !this.isRelationContext(j)) this.addFunction(qualifiedName(t, this.nameStart(j), j + 1));
        if (x.kind === 'word' && (x.value === 'EXEC' || x.value === 'EXECUTE') && this.word(j + 1) !== 'AS') {
          const end = this.nameEnd(j + 1);
          if (end > j + 1) this.addFunction(qualifiedName(t, j + 1, end));
        }
      }
      return;
    }
    if (this.cte) this.scanRange(this.cte[0], this.cte[1], undefined, false);
    this.scanRange(i, this.to, dmlAccess, true);
  }

  /** Tables after FROM/JOIN/USING/INTO, functions called, EXECs inside, WHERE, and a few facts, in [from, to). */
  private scanRange(from: number, to: number, dmlAccess: RelationAccess | undefined, main: boolean): void {
    const t = this.t;
    const v = this.head.verb;
    let depth = 0;
    /** Paren depth of the FROM clause being read (its commas start more tables), or -1. */
    let fromDepth = -1;
    for (let j = from; j < to; j++) {
      const x = t[j]!;
      if (x.kind === 'punct') {
        if (x.text === '(') depth++;
        else if (x.text === ')') {
          depth--;
          if (depth < fromDepth) fromDepth = -1;
        } else if (x.text === ',' && depth === fromDepth) {
          j = this.tableList(j + 1, dmlAccess, false) - 1;
        }
        continue;
      }
      if (x.kind === 'word') {
        const w = x.value;
        if (depth === fromDepth && FROM_CLAUSE_END.has(w)) fromDepth = -1;
        if (w === 'FROM' || JOINS.has(w)) {
          const p = this.word(j - 1);
          if (w === 'FROM' && (p === 'NEXT' || p === 'PRIOR' || p === 'FIRST' || p === 'LAST' || p === 'ABSOLUTE' || p === 'RELATIVE' || v === 'FETCH' || v === 'REVOKE' || v === 'DEALLOCATE')) continue;
          if (w === 'FROM') fromDepth = depth;
          j = this.tableList(j + 1, dmlAccess, w === 'FROM') - 1;
          continue;
        }
        if (w === 'USING' && v === 'MERGE') {
          const after = this.tableRef(j + 1, 'read');
          j = Math.max(j, after - 1);
          continue;
        }
        if (w === 'INTO' && v !== 'INSERT' && v !== 'MERGE' && t[j + 1]?.kind !== 'variable') {
          // SELECT … INTO t, OUTPUT … INTO t
          const end = this.nameEnd(j + 1);
          if (end > j + 1) {
            this.addRelation(j + 1, end, 'insert');
            if (v === 'SELECT') this.selectInto = true;
            else this.writes = true;
          }
          continue;
        }
        // the statement's own WHERE: not a subquery's, nor a CTE's
        if (w === 'WHERE' && main && depth === 0 && this.whereAt < 0) this.whereAt = j;
        if (w === 'NEXT' && this.word(j + 1) === 'VALUE' && this.word(j + 2) === 'FOR') this.writes = true;
        if (w === 'FOR' && this.word(j + 1) === 'UPDATE') this.forUpdate = true;
        // OPTION (TABLE HINT (t, XLOCK)): the query hint form of a table hint
        if (w === 'HINT' && this.word(j - 1) === 'TABLE' && t[j + 1]?.text === '(') {
          for (let k = j + 2; k < to && t[k]?.text !== ')'; k++) if (t[k]!.kind === 'word' && LOCK_HINTS.has(t[k]!.value)) this.locks = true;
        }
        if ((w === 'EXEC' || w === 'EXECUTE') && j > this.from && this.word(j + 1) !== 'AS') {
          this.execs.push({ at: j + 1, end: to });
          this.writes = true;
          continue;
        }
      }
      if ((x.kind === 'word' || x.kind === 'qident') && t[j + 1]?.text === '(' && isRoutineCandidate(x) && !this.isRelationContext(j)) {
        const name = qualifiedName(t, this.nameStart(j), j + 1);
        this.addFunction(name);
        if (foldedLastPart(name) === 'OPENROWSET' && this.word(j + 2) === 'BULK') this.openRowsetBulk = true;
      }
    }
  }

  /** FROM a [alias], b … (several when `list`) or one JOIN/APPLY source; returns the index after it. */
  private tableList(i: number, dmlAccess: RelationAccess | undefined, list: boolean): number {
    let k = i;
    for (;;) {
      const after = this.tableRef(k, 'read', dmlAccess);
      if (after === k) return k;
      k = this.skipAlias(after);
      if (!list || this.t[k]?.text !== ',') return k;
      k++;
    }
  }

  /** Start of the multi-part name ending at `j`. */
  private nameStart(j: number): number {
    let k = j;
    while (k >= 2 && this.t[k - 1]?.text === '.' && (this.t[k - 2]?.kind === 'word' || this.t[k - 2]?.kind === 'qident')) k -= 2;
    return k;
  }

  /** `INSERT INTO t (cols)`, `CREATE TABLE t (…)`, `REFERENCES t (c)`, `ON t (c)`: names followed by '(' that are not calls. */
  private isRelationContext(j: number): boolean {
    const start = this.nameStart(j);
    const before = this.word(start - 1);
    return before === 'INTO' || before === 'TABLE' || before === 'REFERENCES' || before === 'ON' || before === 'VIEW' || before === 'INDEX' || before === 'TYPE' || before === 'PROCEDURE' || before === 'PROC' || before === 'FUNCTION' || this.t[start - 1]?.text === '.';
  }

  private skipAlias(i: number): number {
    let j = i;
    if (this.word(j) === 'AS') j++;
    const x = this.t[j];
    if (x && j < this.to && (x.kind === 'qident' || (x.kind === 'word' && !ALIAS_STOP.has(x.value) && !STATEMENT_STARTERS.has(x.value)))) j++;
    // `customers c (NOLOCK)`: hints without WITH after the alias
    const legacy = j > i && this.t[j]?.text === '(' ? this.hintList(j) : undefined;
    if (legacy) {
      this.noteHints(legacy.locks);
      return legacy.end;
    }
    if (this.word(j) === 'WITH' && this.t[j + 1]?.text === '(') {
      this.noteHints(this.hintList(j + 1)?.locks ?? false);
      let depth = 0;
      for (j = j + 1; j < this.to; j++) {
        if (this.t[j]!.text === '(') depth++;
        if (this.t[j]!.text === ')' && --depth === 0) break;
      }
      j++;
    }
    return j;
  }

  /** CREATE/ALTER/DROP: the objects named, with relations for tables, views and indexes. */
  private ddlNames(i: number): number {
    const type = this.head.tag.slice(this.head.verb.length + 1);
    let j = i;
    if (this.word(j) === 'IF' && this.word(j + 1) === 'EXISTS') j += 2;
    if (this.word(j) === 'IF' && this.word(j + 1) === 'NOT' && this.word(j + 2) === 'EXISTS') j += 3;
    for (;;) {
      const end = this.nameEnd(j);
      if (end === j) return j;
      this.ddlObjects.push(this.t.slice(j, end).map((x) => x.text).join(''));
      if (type === 'TABLE' || type === 'VIEW') this.addRelation(j, end, 'ddl');
      j = end;
      if ((type.endsWith('INDEX') || type === 'TRIGGER' || type === 'STATISTICS') && this.word(j) === 'ON') {
        const tEnd = this.nameEnd(j + 1);
        this.addRelation(j + 1, tEnd, 'ddl');
        j = tEnd;
      }
      if (this.head.verb === 'DROP' && this.t[j]?.text === ',') {
        j++;
        continue;
      }
      return j;
    }
  }
}

/** Words that end a name or alias position rather than being one. */
const NAME_STOP = new Set([
  'WHERE', 'ON', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS', 'OUTER', 'GROUP', 'ORDER', 'HAVING', 'UNION', 'EXCEPT',
  'INTERSECT', 'SET', 'FROM', 'SELECT', 'VALUES', 'OUTPUT', 'OPTION', 'WITH', 'USING', 'WHEN', 'THEN', 'AS', 'DEFAULT',
  'FOR', 'INTO', 'SELECT', 'DELETE', 'UPDATE', 'INSERT', 'EXEC', 'EXECUTE', 'TOP', 'IF', 'EXISTS', 'NOT', 'PIVOT', 'UNPIVOT',
  'APPLY', 'TABLESAMPLE', 'FETCH', 'OFFSET', 'BEGIN', 'END',
]);
/** Keywords that end a FROM clause. */
const FROM_CLAUSE_END = new Set(['WHERE', 'GROUP', 'HAVING', 'ORDER', 'UNION', 'EXCEPT', 'INTERSECT', 'OPTION', 'FOR', 'WINDOW', 'SET', 'OUTPUT', 'WHEN', 'USING']);
const ALIAS_STOP = new Set([...NAME_STOP, 'AND', 'OR', 'NATURAL', 'LIMIT', 'RETURNING']);

export function isRoutineCandidate(x: SqlToken): boolean {
  if (x.kind === 'qident') return true;
  return !NOT_FUNCTIONS.has(x.value) && !TYPE_NAMES.has(x.value) && !STATEMENT_STARTERS.has(x.value);
}

/** XML data type methods (`col.value('…', 'int')`): computing only, except modify(). */
const XML_METHODS = new Set(['VALUE', 'QUERY', 'EXIST', 'NODES']);

/** A routine known to compute only: a built-in function, an XML method, or a catalog-reading system procedure. */
export function knownReadOnlyRoutine(name: string): boolean {
  const last = lastPart(name);
  if (BUILTIN_FUNCTIONS.has(last) || READ_ONLY_PROCEDURES.has(last)) return true;
  return name.includes('.') && XML_METHODS.has(last);
}

export function mergeActions(t: readonly SqlToken[], from: number, to: number): RelationAccess[] {
  const out = new Set<RelationAccess>();
  for (let j = from; j < to; j++) {
    if (t[j]?.kind !== 'word' || t[j - 1]?.value !== 'THEN') continue;
    if (t[j]!.value === 'INSERT') out.add('insert');
    if (t[j]!.value === 'UPDATE') out.add('update');
    if (t[j]!.value === 'DELETE') out.add('delete');
  }
  if (out.size === 0) out.add('update');
  return [...out];
}

/**
 * The parts of a multi-part name between `from` and `to` (`db..t` gives ['db', '', 't']), each as
 * SQL Server's default (width-insensitive) collations compare it: full-width letters folded
 * (NFKC) and trailing spaces dropped, so `[customers ]` and `ｃｕｓｔｏｍｅｒｓ` name `customers`.
 */
export function nameParts(t: readonly SqlToken[], from: number, to: number): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let j = from; j < to; j++) {
    const x = t[j]!;
    if (x.text === '.') {
      parts.push(cur);
      cur = '';
    } else cur = foldName(x.kind === 'qident' ? x.value : x.text);
  }
  parts.push(cur);
  return parts;
}

function foldName(part: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(part) ? part.replace(/ +$/, '') : part.normalize('NFKC').replace(/\s+$/u, '');
}

export function qualifiedName(t: readonly SqlToken[], from: number, to: number): string {
  return nameParts(t, from, to).join('.');
}

export function lastPart(name: string): string {
  const i = name.lastIndexOf('.');
  return (i < 0 ? name : name.slice(i + 1)).toUpperCase();
}

/**
 * A routine's own name as a case-, accent- and width-insensitive collation with trailing spaces
 * ignored compares it (`[xp_cmdshell ]`, `ｘｐ＿ｃｍｄｓｈｅｌｌ`, `xp_cmdshéll` may all find
 * xp_cmdshell on such a server): what dangerous and special procedures are matched by.
 */
export function foldedLastPart(name: string): string {
  return lastPart(name).normalize('NFKD').replace(/\p{M}/gu, '').replace(/\s+$/u, '').toUpperCase();
}

/** The value of `'a' + N'b' + …` between from and to, or undefined when anything but string literals is there. */
export function literalConcat(t: readonly SqlToken[], from: number, to: number): string | undefined {
  let out = '';
  let expectString = true;
  for (let j = from; j < to; j++) {
    const x = t[j]!;
    if (expectString) {
      if (x.kind !== 'string') return undefined;
      out += x.value;
    } else if (x.text !== '+') return undefined;
    expectString = !expectString;
  }
  return expectString ? undefined : out;
}


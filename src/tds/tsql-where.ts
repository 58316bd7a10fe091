// Whether the WHERE clause of an UPDATE or DELETE filters rows, for the `noWhere` flag: it does
// when it reads a column (as on PostgreSQL, where any column reference counts). T-SQL has no parse
// tree here, so this reads tokens and errs toward "does not filter" (the rules then hold the
// statement): reserved keywords, function names, the type of CAST/CONVERT, date parts, collation
// names and aliases are not columns; inside a subquery only a qualified name (`u.id`) outside its
// FROM clause counts, since `EXISTS (SELECT 1 x FROM u)` filters nothing.
import type { SqlToken } from './tsql-lexer.js';
import { RESERVED_KEYWORDS } from './tsql-names.js';

/** Reserved words that still name a column. */
const COLUMN_KEYWORDS: ReadonlySet<string> = new Set(['IDENTITYCOL', 'ROWGUIDCOL']);
/** Unreserved words of built-in syntax that are no column: TRIM(LEADING … FROM …), PARSE(… AS int USING 'de-DE'). */
const SYNTAX_WORDS: ReadonlySet<string> = new Set(['LEADING', 'TRAILING', 'BOTH', 'USING']);
/** Functions whose first argument is a keyword (a date part) or a type, not a column. */
const KEYWORD_FIRST_ARGUMENT: ReadonlySet<string> = new Set([
  'CONVERT', 'TRY_CONVERT', 'DATEADD', 'DATEDIFF', 'DATEDIFF_BIG', 'DATEPART', 'DATENAME', 'DATETRUNC', 'DATE_BUCKET',
]);
/** Where the FROM clause of a subquery ends (ON conditions read columns again). */
const FROM_REGION_END: ReadonlySet<string> = new Set(['ON', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'UNION', 'EXCEPT', 'INTERSECT', 'OPTION', 'FOR', 'WINDOW']);

const isPunct = (x: SqlToken | undefined, p: string): boolean => x?.kind === 'punct' && x.text === p;
const isNamePart = (x: SqlToken | undefined): boolean => x?.kind === 'word' || x?.kind === 'qident';

/** Index after the multi-part name starting at `i` (`a`, `a.b`, `[a]..c`). */
function nameEnd(t: readonly SqlToken[], i: number, to: number): number {
  let j = i + 1;
  while (j < to && isPunct(t[j], '.')) {
    j++;
    if (j < to && isNamePart(t[j])) j++;
  }
  return j;
}

/** True when the condition in [from, to) — a WHERE clause up to the end of its statement or parenthesis — reads a column. */
export function conditionReadsColumns(t: readonly SqlToken[], from: number, to: number): boolean {
  let depth = 0;
  /** Depths at which a subquery's parenthesis opened. */
  const subqueries: number[] = [];
  /** Depth of the subquery FROM clause being skipped, or -1. */
  let skipping = -1;
  for (let j = from; j < to; j++) {
    const x = t[j]!;
    if (isPunct(x, '(')) {
      depth++;
      if (t[j + 1]?.kind === 'word' && (t[j + 1]!.value === 'SELECT' || t[j + 1]!.value === 'WITH')) subqueries.push(depth);
      continue;
    }
    if (isPunct(x, ')')) {
      if (subqueries[subqueries.length - 1] === depth) {
        subqueries.pop();
        if (skipping >= depth) skipping = -1;
      }
      depth--;
      if (depth < 0) return false;
      continue;
    }
    if (x.kind === 'word' && depth === 0 && x.value === 'OPTION') return false;
    if (skipping >= 0) {
      if (depth === skipping && x.kind === 'word' && FROM_REGION_END.has(x.value)) skipping = -1;
      continue;
    }
    if (!isNamePart(x)) continue;
    const w = x.kind === 'word' ? x.value : '';
    if (subqueries.length > 0 && (w === 'FROM' || w === 'JOIN' || w === 'APPLY')) {
      skipping = depth;
      continue;
    }
    // AS type (CAST), AS alias; COLLATE name; AT TIME ZONE
    if (w === 'AS' || w === 'COLLATE') {
      if (isNamePart(t[j + 1])) j = nameEnd(t, j + 1, to) - 1;
      continue;
    }
    if (w === 'AT' && t[j + 1]?.value === 'TIME' && t[j + 2]?.value === 'ZONE') {
      j += 2;
      continue;
    }
    const end = nameEnd(t, j, to);
    if (isPunct(t[end], '(')) {
      // a call: its arguments are read in turn, except a leading keyword or type
      if (KEYWORD_FIRST_ARGUMENT.has(t[end - 1]!.kind === 'word' ? t[end - 1]!.value : '') && isNamePart(t[end + 1]) && (isPunct(t[end + 2], ',') || isPunct(t[end + 2], '('))) {
        depth++;
        j = end + 1;
        continue;
      }
      j = end - 1;
      continue;
    }
    const qualified = end - j > 1;
    if (!qualified && x.kind === 'word' && ((RESERVED_KEYWORDS.has(w) && !COLUMN_KEYWORDS.has(w)) || SYNTAX_WORDS.has(w))) continue;
    if (subqueries.length > 0 && !qualified) continue;
    return true;
  }
  return false;
}

/**
 * The WHERE at the top level of CTE `name`'s query, for a DML whose target is that CTE
 * (`WITH c AS (SELECT TOP 100 * FROM t WHERE …) DELETE FROM c`): its index, or -1. A CTE whose
 * query is a UNION/EXCEPT/INTERSECT has no one WHERE: -1.
 */
export function cteWhere(t: readonly SqlToken[], from: number, to: number, name: string): number {
  for (let j = from; j < to; j++) {
    const x = t[j]!;
    if (!isNamePart(x) || x.value.toUpperCase() !== name) continue;
    const prev = t[j - 1];
    if (!(prev?.kind === 'word' && prev.value === 'WITH') && !isPunct(prev, ',')) continue;
    let k = j + 1;
    if (isPunct(t[k], '(')) {
      while (k < to && !isPunct(t[k], ')')) k++;
      k++;
    }
    if (t[k]?.kind !== 'word' || t[k]!.value !== 'AS' || !isPunct(t[k + 1], '(')) continue;
    let depth = 0;
    let where = -1;
    for (let m = k + 2; m < to; m++) {
      const y = t[m]!;
      if (isPunct(y, '(')) depth++;
      else if (isPunct(y, ')')) {
        if (depth === 0) return where;
        depth--;
      } else if (depth === 0 && y.kind === 'word') {
        if (y.value === 'UNION' || y.value === 'EXCEPT' || y.value === 'INTERSECT') return -1;
        if (y.value === 'WHERE' && where < 0) where = m;
      }
    }
    return -1;
  }
  return -1;
}

/**
 * Whether a MERGE in [from, to) updates or deletes rows that no column picks, as an UPDATE or DELETE
 * without WHERE would: a WHEN NOT MATCHED BY SOURCE … THEN UPDATE/DELETE (every target row the
 * source lacks: all of them for an empty source), or a THEN UPDATE/DELETE under an ON condition
 * that reads no column (`ON 1 = 1` matches every target row). It errs toward "unbounded": an AND
 * condition of the WHEN clause is not read.
 */
export function mergeUnbounded(t: readonly SqlToken[], from: number, to: number): boolean {
  let depth = 0;
  let using = -1;
  let on = -1;
  let firstWhen = -1;
  let bySource = false;
  let changes = false;
  for (let j = from; j < to; j++) {
    const x = t[j]!;
    if (isPunct(x, '(')) depth++;
    else if (isPunct(x, ')')) depth--;
    if (depth !== 0 || x.kind !== 'word') continue;
    if (x.value === 'USING' && using < 0) using = j;
    else if (x.value === 'ON' && using >= 0 && on < 0) on = j;
    else if (x.value === 'WHEN') {
      if (firstWhen < 0) firstWhen = j;
      bySource = t[j + 1]?.value === 'NOT' && t[j + 2]?.value === 'MATCHED' && t[j + 3]?.value === 'BY' && t[j + 4]?.value === 'SOURCE';
    } else if (x.value === 'THEN' && (t[j + 1]?.value === 'UPDATE' || t[j + 1]?.value === 'DELETE')) {
      if (bySource) return true;
      changes = true;
    }
  }
  if (!changes) return false;
  return on < 0 || firstWhen < 0 || !conditionReadsColumns(t, on + 1, firstWhen);
}

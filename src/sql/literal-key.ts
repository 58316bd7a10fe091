// A cheap cache key for statement texts that differ only in numeric literals
// (`… WHERE aid = 48213` and `… WHERE aid = 77`), so the hot path classifies such statements
// once instead of parsing each (a parse costs hundreds of microseconds; a key, a few).
//
// Only numeric literals are replaced, and never in a text with ORDER BY or GROUP BY, where a
// number names an output column (`ORDER BY 3`). Otherwise no classification or lineage decision
// depends on a number's value, while string literals can matter (`set_config('role', …)`). The scanner
// follows PostgreSQL's lexer with standard_conforming_strings on (as the parser warden uses
// does): quoted strings with '' escapes, E'' strings with backslash escapes, dollar quotes,
// quoted identifiers, -- and nested /* */ comments. Numbers inside any of these are kept.
// Anything it is not sure about (an unterminated quote or comment, a U& string) yields the
// text itself as the key, so two texts share a key only when they differ in numeric literals.

const enum C {
  quote = 0x27, // '
  dquote = 0x22, // "
  dollar = 0x24, // $
  dash = 0x2d, // -
  slash = 0x2f, // /
  star = 0x2a, // *
  backslash = 0x5c,
  newline = 0x0a,
  dot = 0x2e,
  zero = 0x30,
  nine = 0x39,
}

const isDigit = (c: number): boolean => c >= C.zero && c <= C.nine;
const isIdentChar = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c) || c === 0x5f || c === C.dollar || c >= 0x80;
const isIdentStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;

/** Placeholder for a numeric literal in keys; never produced by the scanner otherwise. */
const NUMBER = '\u0000';

/**
 * The text with numeric literals replaced, or the text itself when nothing was replaced or the
 * scanner could not be sure.
 */
export function literalKey(sql: string): string {
  const n = sql.length;
  let out = '';
  let last = 0; // start of the part of `sql` not yet copied to `out`
  let replaced = false;
  let prevWord = '';
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0) return sql; // NUL cannot appear in a query; do not let it alias the placeholder
    if (c === C.quote) {
      // E'…' / e'…' strings take backslash escapes; the prefix letter was consumed as part of an
      // identifier-like run below, so look back one character.
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      const escaped = (prev === 0x45 || prev === 0x65) && (i < 2 || !isIdentChar(sql.charCodeAt(i - 2)));
      const uPrefix = prev === 0x26; // U&'…'
      if (uPrefix) return sql;
      const end = skipQuoted(sql, i, escaped);
      if (end < 0) return sql;
      i = end;
      continue;
    }
    if (c === C.dquote) {
      const end = skipQuoted(sql, i, false, C.dquote);
      if (end < 0) return sql;
      i = end;
      continue;
    }
    if (c === C.dash && sql.charCodeAt(i + 1) === C.dash) {
      const nl = sql.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === C.slash && sql.charCodeAt(i + 1) === C.star) {
      const end = skipBlockComment(sql, i);
      if (end < 0) return sql;
      i = end;
      continue;
    }
    if (c === C.dollar) {
      const prev = i > 0 ? sql.charCodeAt(i - 1) : 0;
      if (!isIdentChar(prev)) {
        const next = sql.charCodeAt(i + 1);
        if (isDigit(next)) {
          // A parameter ($1): keep it whole.
          i += 2;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
          continue;
        }
        const end = skipDollarQuoted(sql, i);
        if (end === -1) return sql;
        if (end > 0) {
          i = end;
          continue;
        }
      }
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      // An identifier or keyword: digits inside it are not numbers.
      const from = i;
      i++;
      while (i < n && isIdentChar(sql.charCodeAt(i))) i++;
      if (i - from === 2 && sql.slice(from, i).toLowerCase() === 'by' && (prevWord === 'order' || prevWord === 'group')) {
        // Positional column references (ORDER BY 2, GROUP BY 1) make numbers meaningful.
        return sql;
      }
      prevWord = i - from <= 5 ? sql.slice(from, i).toLowerCase() : '';
      continue;
    }
    if (isDigit(c) || (c === C.dot && isDigit(sql.charCodeAt(i + 1)))) {
      const end = numberEnd(sql, i);
      if (end < 0) return sql;
      out += sql.slice(last, i) + NUMBER;
      last = end;
      replaced = true;
      i = end;
      continue;
    }
    i++;
  }
  return replaced ? out + sql.slice(last) : sql;
}

/** End (exclusive) of a numeric literal starting at i, or -1 when it runs into an identifier (e.g. `1abc`). */
function numberEnd(sql: string, i: number): number {
  const n = sql.length;
  let j = i;
  if (sql.charCodeAt(j) === C.zero && /[xXoObB]/.test(sql[j + 1] ?? '')) {
    j += 2;
    while (j < n && /[0-9a-fA-F_]/.test(sql[j] as string)) j++;
  } else {
    while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x5f)) j++;
    if (sql.charCodeAt(j) === C.dot && sql.charCodeAt(j + 1) !== C.dot) {
      j++;
      while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x5f)) j++;
    }
    const e = sql.charCodeAt(j);
    if (e === 0x65 || e === 0x45) {
      let k = j + 1;
      const sign = sql.charCodeAt(k);
      if (sign === 0x2b || sign === C.dash) k++;
      if (isDigit(sql.charCodeAt(k))) {
        j = k;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
      }
    }
  }
  // A number glued to letters (`1abc`, `123e`) is unusual; let the full text be the key.
  if (j < n && isIdentChar(sql.charCodeAt(j))) return -1;
  return j;
}

/** Index after the closing quote, or -1 if unterminated. */
function skipQuoted(sql: string, i: number, backslashEscapes: boolean, quote: number = C.quote): number {
  const n = sql.length;
  let j = i + 1;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (backslashEscapes && c === C.backslash) {
      j += 2;
      continue;
    }
    if (c === quote) {
      if (sql.charCodeAt(j + 1) === quote) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return -1;
}

function skipBlockComment(sql: string, i: number): number {
  const n = sql.length;
  let depth = 0;
  let j = i;
  while (j < n) {
    if (sql.charCodeAt(j) === C.slash && sql.charCodeAt(j + 1) === C.star) {
      depth++;
      j += 2;
    } else if (sql.charCodeAt(j) === C.star && sql.charCodeAt(j + 1) === C.slash) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else {
      j++;
    }
  }
  return -1;
}

/**
 * A dollar-quoted string starting at i: index after its closing delimiter; 0 when `$` does not
 * start one here; -1 when it is unterminated.
 */
function skipDollarQuoted(sql: string, i: number): number {
  const n = sql.length;
  let j = i + 1;
  while (j < n && sql.charCodeAt(j) !== C.dollar) {
    const c = sql.charCodeAt(j);
    if (!(isIdentChar(c) && c !== C.dollar) || (j === i + 1 && isDigit(c))) return 0;
    j++;
  }
  if (j >= n) return 0;
  const delimiter = sql.slice(i, j + 1);
  const close = sql.indexOf(delimiter, j + 1);
  return close < 0 ? -1 : close + delimiter.length;
}

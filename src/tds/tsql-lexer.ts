// A T-SQL tokenizer for warden's conservative classifier (classify.ts). It only has to find token
// boundaries the way SQL Server does, so that nothing can hide inside what warden takes for a
// comment, a string or a name: -- and nested /* */ comments, '…' and N'…' strings with '' escapes,
// [names] with ]] escapes, "…" (a name or a string depending on QUOTED_IDENTIFIER — one token
// either way), @variables, #temp names, numbers, 0x binary and $money literals.
// Anything unterminated is an error, and so is a character outside T-SQL's operators, names,
// literals and white space, or a -- comment ended by anything but LF: the classifier then reports
// the text as not understood.

export type TokenKind = 'word' | 'qident' | 'string' | 'number' | 'variable' | 'op' | 'punct';

export interface SqlToken {
  readonly kind: TokenKind;
  /** The token as written. */
  readonly text: string;
  /** word: upper-cased; qident: the name inside the quotes; string: the value; others: the text. */
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

export class LexError extends Error {
  override readonly name = 'LexError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentStart = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || (c > 127 && /\p{L}/u.test(String.fromCodePoint(c)));
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 64 /* @ */ || c === 35 /* # */ || c === 36 /* $ */ || (c > 127 && /[\p{M}\p{Nd}]/u.test(String.fromCodePoint(c)));
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11 || c === 0xa0 || c === 0xfeff || c === 0x2028 || c === 0x2029 || c === 0;

/** One-character operators T-SQL has (and ODBC's braces, which the classifier refuses). */
const OPS1 = new Set(['+', '-', '*', '/', '%', '&', '|', '^', '~', '=', '<', '>', '!', ':', '{', '}']);
/** Two-character operators T-SQL has. */
const OPS2 = new Set(['<=', '>=', '<>', '!=', '!<', '!>', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '::']);

export function lexTsql(sql: string): SqlToken[] {
  const out: SqlToken[] = [];
  const n = sql.length;
  let i = 0;
  const push = (kind: TokenKind, start: number, end: number, value?: string): void => {
    const text = sql.slice(start, end);
    out.push({ kind, text, value: value ?? text, start, end });
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    // comments
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      const end = nl < 0 ? n : nl + 1;
      // A line break warden might not see as SQL Server does (a bare CR, NEL, U+2028/9) could end
      // the comment there for the server and hide a statement from warden: not understood.
      const odd = /\r(?!\n)|[\u0085\u2028\u2029]/.exec(sql.slice(i, end));
      if (odd) throw new LexError(`a -- comment holds a line break other than LF (U+${odd[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})`, i + odd.index);
      i = end;
      continue;
    }
    if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      const start = i;
      let depth = 0;
      while (i < n) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
          if (depth === 0) break;
        } else i++;
      }
      if (depth !== 0) throw new LexError('unterminated comment', start);
      continue;
    }
    // strings: '…' and N'…'
    if (c === 39 || ((c === 78 || c === 110) && sql.charCodeAt(i + 1) === 39)) {
      const start = i;
      const q = c === 39 ? i : i + 1;
      const { value, end } = quoted(sql, q, "'", 'string');
      push('string', start, end, value);
      i = end;
      continue;
    }
    if (c === 91 /* [ */) {
      const { value, end } = quoted(sql, i, ']', 'bracketed name');
      push('qident', i, end, value);
      i = end;
      continue;
    }
    if (c === 34 /* " */) {
      const { value, end } = quoted(sql, i, '"', 'quoted name');
      push('qident', i, end, value);
      i = end;
      continue;
    }
    if (c === 64 /* @ */) {
      let j = i + 1;
      if (sql.charCodeAt(j) === 64) j++;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push('variable', i, j, sql.slice(i, j).toUpperCase());
      i = j;
      continue;
    }
    if (c === 35 /* # */ && i + 1 < n && (isIdentPart(sql.charCodeAt(i + 1)) || sql.charCodeAt(i + 1) === 35)) {
      let j = i + 1;
      while (j < n && (isIdentPart(sql.charCodeAt(j)) || sql.charCodeAt(j) === 35)) j++;
      push('word', i, j, sql.slice(i, j).toUpperCase());
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 46 /* . */ && isDigit(sql.charCodeAt(i + 1))) || (c === 36 /* $ */ && (isDigit(sql.charCodeAt(i + 1)) || sql.charCodeAt(i + 1) === 46))) {
      let j = i;
      if (c === 48 && (sql.charCodeAt(i + 1) === 120 || sql.charCodeAt(i + 1) === 88)) {
        j = i + 2;
        while (j < n && /[0-9a-fA-F]/.test(sql[j]!)) j++;
      } else {
        if (c === 36) j++;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        if (sql.charCodeAt(j) === 46) {
          j++;
          while (j < n && isDigit(sql.charCodeAt(j))) j++;
        }
        if ((sql.charCodeAt(j) === 101 || sql.charCodeAt(j) === 69) && /[-+0-9]/.test(sql[j + 1] ?? '')) {
          j += 2;
          while (j < n && isDigit(sql.charCodeAt(j))) j++;
        }
      }
      push('number', i, j);
      i = j;
      continue;
    }
    if (isIdentStart(c) || c === 36 /* $ (e.g. $action, $IDENTITY) */) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push('word', i, j, sql.slice(i, j).toUpperCase());
      i = j;
      continue;
    }
    if (c === 40 || c === 41 || c === 44 || c === 59 || c === 46) {
      push('punct', i, i + 1);
      i++;
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (OPS2.has(two)) {
      push('op', i, i + 2);
      i += 2;
      continue;
    }
    // Anything else (zero-width or other odd spaces, homoglyphs of operators, …) is not T-SQL
    // warden can vouch for: the server may read it as a separator, or as nothing at all.
    if (!OPS1.has(sql[i]!)) throw new LexError(`unexpected character U+${c.toString(16).toUpperCase().padStart(4, '0')}`, i);
    push('op', i, i + 1);
    i++;
  }
  return out;
}

function quoted(sql: string, at: number, close: string, what: string): { value: string; end: number } {
  let value = '';
  let i = at + 1;
  for (;;) {
    const j = sql.indexOf(close, i);
    if (j < 0) throw new LexError(`unterminated ${what}`, at);
    value += sql.slice(i, j);
    if (sql[j + 1] === close) {
      value += close;
      i = j + 2;
      continue;
    }
    return { value, end: j + 1 };
  }
}

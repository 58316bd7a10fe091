// Column selectors of masking rules: `schema.table.column` (or `table.column`, any schema) with
// `*` and `?` wildcards in unquoted parts, and column-name globs. Unquoted names fold to lower
// case as PostgreSQL folds them; a double-quoted part ("Mixed Case") is taken exactly.
//
//   public.customers.ssn      exactly that column
//   customers.ssn             customers.ssn in any schema
//   *.customers.card_*        card_number, card_expiry … of any customers table
//   "HR"."Staff".salary       quoted parts keep their case

/** One part of a selector: an exact name, or a pattern compiled from `*`/`?` wildcards. */
export type NameMatcher = { exact: string } | { pattern: RegExp };

export interface ColumnSelector {
  /** As written in the configuration. */
  readonly text: string;
  readonly schema: NameMatcher | undefined;
  readonly table: NameMatcher;
  readonly column: NameMatcher;
}

const MAX_SELECTOR = 200;

/** Splits `a."b.c".d` into parts, each with whether it was quoted. */
function splitParts(text: string): { parts: { name: string; quoted: boolean }[] } | { error: string } {
  const parts: { name: string; quoted: boolean }[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= text.length) return { error: 'has an unterminated double quote' };
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += text[i];
        i++;
      }
      if (name === '') return { error: 'has an empty quoted name' };
      parts.push({ name, quoted: true });
    } else {
      let end = text.indexOf('.', i);
      if (end < 0) end = text.length;
      const raw = text.slice(i, end);
      if (raw === '') return { error: 'has an empty name part' };
      if (raw.includes('"')) return { error: 'has a double quote inside an unquoted name' };
      if (/\s/.test(raw)) return { error: 'has white space in an unquoted name (quote the name)' };
      parts.push({ name: raw, quoted: false });
      i = end;
    }
    if (i >= text.length) break;
    if (text[i] !== '.') return { error: 'needs a "." between name parts' };
    i++;
    if (i >= text.length) return { error: 'ends with "."' };
  }
  return { parts };
}

function globToRegExp(glob: string, flags = ''): RegExp {
  let src = '^';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`${src}$`, `${flags}s`);
}

function matcher(part: { name: string; quoted: boolean }): NameMatcher {
  if (part.quoted) return { exact: part.name };
  const folded = part.name.toLowerCase();
  return /[*?]/.test(folded) ? { pattern: globToRegExp(folded) } : { exact: folded };
}

/** Parses a `columns:` selector; returns the reason it is wrong as a string. */
export function parseColumnSelector(text: string): ColumnSelector | string {
  if (text.length > MAX_SELECTOR) return `must be at most ${MAX_SELECTOR} characters`;
  const split = splitParts(text);
  if ('error' in split) return split.error;
  const { parts } = split;
  if (parts.length < 2 || parts.length > 3) {
    return 'must be schema.table.column or table.column (use column_names for a column name alone)';
  }
  const [a, b, c] = parts;
  if (parts.length === 2) return { text, schema: undefined, table: matcher(a!), column: matcher(b!) };
  const schema = matcher(a!);
  return { text, schema: 'exact' in schema || schema.pattern.source !== '^.*$' ? schema : undefined, table: matcher(b!), column: matcher(c!) };
}

/** Checks a `column_names:` glob; returns the reason it is wrong, if it is. */
export function checkColumnNamePattern(text: string): string | undefined {
  if (text.length > MAX_SELECTOR) return `must be at most ${MAX_SELECTOR} characters`;
  if (/^[*?]*$/.test(text) && text.includes('*')) return 'matches every column name; name the columns';
  return undefined;
}

/** Column-name globs match case-insensitively (the more cautious choice for a protection rule). */
export function compileColumnNamePattern(text: string): RegExp {
  return globToRegExp(text.toLowerCase(), 'i');
}

export function nameMatches(m: NameMatcher, name: string): boolean {
  return 'exact' in m ? m.exact === name : m.pattern.test(name);
}

/**
 * Whether the selector covers `schema.table.column`. `schema` undefined means the relation was
 * named without a schema and could be any same-named relation: the schema part then matches.
 */
export function selectorMatches(sel: ColumnSelector, schema: string | undefined, table: string, column: string): boolean {
  if (!nameMatches(sel.column, column) || !nameMatches(sel.table, table)) return false;
  return sel.schema === undefined || schema === undefined || nameMatches(sel.schema, schema);
}

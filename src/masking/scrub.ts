// Side channels: values can leave through ErrorResponse / NoticeResponse fields and
// NotificationResponse payloads as well as through rows.
//
//   - Integrity errors quote key values and whole rows (23505 "Key (email)=(…) already exists",
//     23503, 23P01, 23502/23514 "Failing row contains (…)"): the values are redacted when a key
//     column (or, for a failing row, any column) of the table named by the error is protected.
//   - When the statement that caused the message touched protected data (or that is not known):
//     every quoted part of the message, detail, hint and context is redacted (a failed cast
//     quotes the value: invalid input syntax for type integer: "941-74-7468"), JSON parse
//     context lines and byte sequences too, the internal query is dropped, and messages that are
//     free text written by code (RAISE, class P0, notices) are replaced whole. A value can also
//     be stated without quotes (`cross-database references are not implemented: alice@…` for
//     `email::regproc`, `date field value out of range: 941-01-01`, `relation with OID 42657
//     does not exist`), so the unquoted text after a line's first ": " (unless it is one quoted
//     part) and every unquoted number are redacted too. Syntax errors (42601) get the same
//     treatment: warden refuses statements it cannot parse, so one that reaches the agent comes
//     from parsing a value (`email::jsonpath`, `::regtype` — which reports a position inside the
//     value —, a `to_number` format). Left alone is a quoted word of an
//     error that points into the statement (its position field) when it is the word written
//     there, or a relation the statement names: `column "nme" does not exist` tells an agent
//     what to fix, and the word is its own (see ownWords).
//   - Content classifiers run over every text field and notification payload.
import { decodeNotificationResponse, encodeNotificationResponse } from '../../protocols/postgres/backend-messages.js';
import { Backend, ErrorField } from '../../protocols/postgres/codes.js';
import { decodeErrorFields, encodeErrorFields } from '../../protocols/postgres/error-response.js';
import { findMatches } from './classifiers.js';
import type { StatementInfo } from '../sql/index.js';
import type { MaskingContext } from './context.js';
import { compileStrategy } from './strategies/index.js';

export const REDACTED = '****';
export const MASKED_MESSAGE = '[message hidden by warden: it may hold protected values]';

const TEXT_FIELDS = [ErrorField.message, ErrorField.detail, ErrorField.hint, ErrorField.where, ErrorField.internalQuery] as const;
const FREE_TEXT_SEVERITIES = new Set(['NOTICE', 'WARNING', 'INFO', 'LOG', 'DEBUG']);

const KEY_DETAIL = /Key \(([^)]*)\)=\((.*?)\)( already exists| is not present in table| is still referenced from table| conflicts with existing key| conflicts with key)/gs;
const FAILING_ROW = /(Failing row contains )\((.*)\)/s;
const QUOTED = /"(?:[^"\\]|\\.)*"/g;
const BYTE_SEQUENCE = /(byte sequence )(0x[0-9a-f]{2}(?: 0x[0-9a-f]{2})*)/gi;

export interface ScrubOptions {
  /** The statement that caused the message touched protected data, or it is not known. */
  touched: boolean;
  /** The statement the message answers, when known: quoted words it wrote itself stay (ownWords). */
  statement?: Pick<StatementInfo, 'text' | 'start' | 'relations'> | undefined;
}

/** Rewrites one ErrorResponse, NoticeResponse or NotificationResponse; undefined when unchanged. */
export function scrubMessage(ctx: MaskingContext, buf: Buffer, start: number, end: number, opts: ScrubOptions): Buffer | undefined {
  const msg = buf.subarray(start, end);
  const type = msg[0];
  if (type === Backend.notificationResponse) {
    const n = decodeNotificationResponse(msg);
    const payload = scrubContent(ctx, n.payload);
    return payload === n.payload ? undefined : encodeNotificationResponse({ ...n, payload });
  }
  if (type !== Backend.errorResponse && type !== Backend.noticeResponse) return undefined;
  const fields = decodeErrorFields(msg, type);
  const out = scrubFields(ctx, fields, opts);
  return out ? encodeErrorFields(type, out) : undefined;
}

function scrubFields(ctx: MaskingContext, fields: Map<number, string>, opts: ScrubOptions): [number, string][] | undefined {
  const code = fields.get(ErrorField.code) ?? '';
  const severity = fields.get(ErrorField.severityNonLocalized) ?? fields.get(ErrorField.severity) ?? '';
  const hasColumnRules = ctx.rules.columnRules.length > 0;
  const touched = opts.touched && hasColumnRules;
  const where = fields.get(ErrorField.where) ?? '';
  const freeText = code.startsWith('P0') || (FREE_TEXT_SEVERITIES.has(severity) && (code === '00000' || code.startsWith('01'))) || /PL\/pgSQL|SQL function/.test(where);
  const own = touched ? ownWords(fields.get(ErrorField.position), opts.statement) : undefined;
  const table = fields.get(ErrorField.table);
  const schema = fields.get(ErrorField.schema);
  let changed = false;
  const out: [number, string][] = [];
  for (const [f, value] of fields) {
    let v = value;
    if ((TEXT_FIELDS as readonly number[]).includes(f)) {
      if (hasColumnRules && (f === ErrorField.detail || f === ErrorField.message)) v = scrubIntegrity(ctx, v, schema, table, opts.touched);
      if (touched) {
        if (f === ErrorField.internalQuery) v = REDACTED;
        else if (freeText && f !== ErrorField.where) v = MASKED_MESSAGE;
        else v = scrubUnquoted(scrubQuoted(v, own), f === ErrorField.where);
      }
      v = scrubContent(ctx, v);
    }
    if (v !== value) changed = true;
    out.push([f, v]);
  }
  return changed ? out : undefined;
}

/** Key (…)=(…) and Failing row contains (…): redacted when the table's columns are protected. */
function scrubIntegrity(ctx: MaskingContext, text: string, schema: string | undefined, table: string | undefined, touched: boolean): string {
  const protectedColumn = (column: string, other?: string): boolean => {
    if (touched) return true;
    if (table === undefined && other === undefined) return true; // no table named: be conservative
    for (const t of [table, other]) {
      if (t === undefined) continue;
      if (ctx.rules.ruleFor(schema, t, column)) return true;
      const snap = ctx.catalog.current();
      if (snap) for (const rel of snap.candidates(schema, t)) if (ctx.coverage(snap).relationColumn(rel, column).rules.size > 0) return true;
    }
    return false;
  };
  let v = text.replace(KEY_DETAIL, (all: string, colsText: string, _vals: string, tail: string) => {
    const other = /table "([^"]+)"/.exec(text.slice(text.indexOf(all) + all.length))?.[1];
    const cols = colsText.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    return cols.some((c) => protectedColumn(c, other)) ? `Key (${colsText})=(${REDACTED})${tail}` : all;
  });
  // "conflicts with existing key (a)=(1)": the second key of an exclusion violation.
  v = v.replace(/(existing key \(([^)]*)\)=\()(.*?)(\)\.?)$/s, (all, head: string, colsText: string, _vals: string, tail: string) =>
    colsText.split(',').some((c) => protectedColumn(c.trim())) ? `${head}${REDACTED}${tail}` : all,
  );
  const failing = FAILING_ROW.exec(v);
  if (failing) {
    const snap = ctx.catalog.current();
    const rels = snap && table !== undefined ? snap.candidates(schema, table) : [];
    const anyProtected = touched || table === undefined || rels.length === 0 || rels.some((rel) => rel.columns.some((c) => protectedColumn(c.name)));
    if (anyProtected) v = v.replace(FAILING_ROW, `$1(${REDACTED})`);
  }
  return v;
}

function scrubQuoted(text: string, own: ReadonlySet<string> | undefined): string {
  let v = text.replace(QUOTED, (q) => (own?.has(q.slice(1, -1)) ? q : `"${REDACTED}"`)).replace(BYTE_SEQUENCE, `$1${REDACTED}`);
  // JSON parse errors show the input as context: "JSON data, line 1: 941-74..."
  v = v.replace(/^(JSON data, line \d+: ).*$/gm, `$1${REDACTED}`);
  return v;
}

const NUMBER = /(?<![\w*])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w*])/gi;
const ONE_QUOTED = /^"(?:[^"\\]|\\.)*"\.?$/;

/**
 * Values a message states without quotes, after scrubQuoted: every number outside quotes (an
 * OID, a field out of range), and whatever follows the first ": " of a line unless that is one
 * quoted part (`invalid input syntax for type integer: "****"` stays as it is). In a message,
 * detail or hint only the first line is kept: libxml's errors echo the input on the next one
 * (`line 1: Start tag expected, '<' not found` / `alice@example.com` / `^`); context lines
 * (`where`) are each kept like a first line.
 */
function scrubUnquoted(text: string, context: boolean): string {
  return text
    .split('\n')
    .map((line, i) => {
      if (i > 0 && !context) return REDACTED;
      let v = '';
      let last = 0;
      for (const q of line.matchAll(QUOTED)) {
        v += line.slice(last, q.index).replace(NUMBER, REDACTED) + q[0];
        last = q.index + q[0].length;
      }
      v += line.slice(last).replace(NUMBER, REDACTED);
      const colon = v.indexOf(': ');
      if (colon >= 0 && !ONE_QUOTED.test(v.slice(colon + 2))) v = `${v.slice(0, colon + 2)}${REDACTED}`;
      return v;
    })
    .join('\n');
}

/**
 * The words an error may quote because the agent wrote them: only for an error that points into
 * the statement's text (position field `P`, set while PostgreSQL parses and analyses the
 * statement; a value parsed while rows are read, `email::regtype`, can report a position inside
 * the value, which then does not match the word at that place of the statement), the word at that position as PostgreSQL quotes it (an
 * identifier folded to lower case, a quoted identifier or a string literal unescaped) and the
 * relations the statement names. A value read from a table is never one of them unless it is
 * exactly the word the agent wrote at the place the error points to.
 */
function ownWords(position: string | undefined, stmt: ScrubOptions['statement']): ReadonlySet<string> | undefined {
  if (position === undefined || !stmt || !/^[1-9]\d{0,9}$/.test(position)) return undefined;
  const words = new Set<string>();
  const at = Number(position) - 1 - stmt.start;
  const word = wordAt(stmt.text, at);
  if (word !== undefined) words.add(word);
  // A syntax error quotes the token as written (`syntax error at or near "SELEC"`), not folded.
  IDENTIFIER.lastIndex = at;
  const written = at >= 0 ? IDENTIFIER.exec(stmt.text)?.[0] : undefined;
  if (written !== undefined) words.add(written);
  for (const r of stmt.relations) words.add(r.name);
  return words;
}

const IDENTIFIER = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;

/** The identifier or literal starting at `i` in `text`, as an error message quotes it. */
function wordAt(text: string, i: number): string | undefined {
  if (i < 0 || i >= text.length) return undefined;
  const c = text[i];
  if (c === '"' || c === "'") {
    let out = '';
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] !== c) out += text[j];
      else if (text[j + 1] === c) out += text[j++];
      else return out;
    }
    return undefined; // unterminated
  }
  IDENTIFIER.lastIndex = i;
  const m = IDENTIFIER.exec(text);
  return m ? m[0].replace(/[A-Z]+/g, (s) => s.toLowerCase()) : undefined;
}

/** Masks what content classifiers find in free text (error fields, notification payloads). */
export function scrubContent(ctx: MaskingContext, text: string): string {
  if (ctx.contentRules.length === 0 || text === '') return text;
  const classifiers = ctx.contentRules.flatMap((r) => r.classifiers);
  const matches = findMatches(text, classifiers);
  if (matches.length === 0) return text;
  let out = '';
  let last = 0;
  for (const m of matches) {
    const rule = ctx.contentRules.find((r) => r.classifiers.some((c) => c.name === m.classifier));
    const found = text.slice(m.start, m.end);
    let masked: string | null | undefined = REDACTED;
    if (rule && rule.strategy.kind !== 'null') masked = compileStrategy(rule.strategy)(found, { kind: 'text', type: { oid: 25, kind: 'text' } });
    out += text.slice(last, m.start) + (typeof masked === 'string' ? masked : (rule?.redactText ?? REDACTED));
    last = m.end;
  }
  return out + text.slice(last);
}

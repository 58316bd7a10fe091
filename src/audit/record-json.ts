// The `d` member of the two records written for every statement (statement, result), serialized
// by hand. JSON.stringify walks each object generically (and looks for toJSON on every one); these
// records have a fixed shape, so writing the members directly is several times faster. Strings go
// through JSON.stringify (which escapes control characters and lone surrogates), numbers through
// `num`, and what has no fixed shape (classification extras, captured rows) through
// JSON.stringify. The members come out in the order the recorder has always written them; format 2
// (frame.ts) leaves out the default members that every statement would otherwise repeat — a
// verdict `allow`, a column's `"masked":null`, a capture `none` — and writes a digest whose row
// count is the result's as `"sha256":"…"`. Readers put them back (frame.ts, expandRecord), so
// `d` reads as JSON.stringify(data) would have written it.

import type { ApprovalInfo, CapturedRows, ClassificationSummary, ResultColumn, ResultData, ResultNotice, StatementData, StatementParam } from './types.js';

/** Printable ASCII without '"' and '\\': JSON writes such a string as it is, between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A string member's value. Most values (SQL text, names, tags) need no escaping, and testing that
 * is several times cheaper than JSON.stringify; anything else, including what a caller outside
 * TypeScript may hand, is written as JSON.stringify writes it.
 */
function str(s: string): string {
  if (typeof s === 'string' && PLAIN.test(s)) return `"${s}"`;
  return (JSON.stringify(s) as string | undefined) ?? 'null';
}

/** A number member's value, as JSON writes it (non-finite numbers are null). */
function num(n: number): string {
  if (typeof n === 'number') return Number.isFinite(n) ? `${n}` : 'null';
  return (JSON.stringify(n) as string | undefined) ?? 'null';
}

/**
 * A duration the recorder rounded to microseconds (k / 1000), as JSON writes it: formatting a
 * fraction is the slowest part of writing a result, and k / 1000 prints as its (at most three)
 * decimals without trailing zeros. Any other number goes through `num`.
 */
function millis(n: number): string {
  const k = Math.round(n * 1000);
  // Below 1e9 doubles are dense enough that no shorter decimal stands for the same number.
  if (!(k >= 0 && n < 1e9 && k / 1000 === n)) return num(n);
  const whole = Math.floor(k / 1000);
  const frac = k - whole * 1000;
  if (frac === 0) return `${whole}`;
  if (frac % 100 === 0) return `${whole}.${frac / 100}`;
  if (frac % 10 === 0) return `${whole}.${frac < 100 ? '0' : ''}${frac / 10}`;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/**
 * Serialized classification summaries, by object. The statement flow hands the same summary
 * object for every statement with the same shape (its classification cache ignores literals), so
 * in steady state this is a lookup. Summaries are not changed after they are made.
 */
const clsJson = new WeakMap<ClassificationSummary, string>();

function classificationJson(cls: ClassificationSummary): string {
  let json = clsJson.get(cls);
  if (json === undefined) {
    json = JSON.stringify(cls);
    clsJson.set(cls, json);
  }
  return json;
}

function paramJson(p: StatementParam): string {
  let out = `{"type":${str(p.type)},"value":${p.value === null ? 'null' : str(p.value)}`;
  if (p.name !== undefined) out += `,"name":${str(p.name)}`;
  if (p.fullBytes !== undefined) out += `,"fullBytes":${num(p.fullBytes)}`;
  return `${out}}`;
}

function approvalJson(a: ApprovalInfo): string {
  let out = `{"requestId":${str(a.requestId)}`;
  if (a.decision !== undefined) out += `,"decision":${str(a.decision)}`;
  if (a.approver !== undefined) out += `,"approver":${str(a.approver)}`;
  if (a.reason !== undefined) out += `,"reason":${str(a.reason)}`;
  return `${out}}`;
}

/** `d` of a statement record: JSON.stringify(data)'s members in its order, without a verdict `allow`. */
export function statementJson(d: StatementData): string {
  return `${statementMembers(d)}}`;
}

/** statementJson without its closing brace (SegmentWriter.appendOpen: its result may join it). */
export function statementMembers(d: StatementData): string {
  let out = `{"st":${num(d.st)},"text":${str(d.text)},"cls":${classificationJson(d.cls)}`;
  if (d.verdict !== 'allow') out += `,"verdict":${str(d.verdict)}`;
  if (d.textBytes !== undefined) out += `,"textBytes":${num(d.textBytes)}`;
  if (d.textSha256 !== undefined) out += `,"textSha256":${str(d.textSha256)}`;
  if (d.params !== undefined) {
    out += ',"params":[';
    for (let i = 0; i < d.params.length; i++) out += (i === 0 ? '' : ',') + paramJson(d.params[i] as StatementParam);
    out += ']';
  }
  if (d.paramsDropped !== undefined) out += `,"paramsDropped":${num(d.paramsDropped)}`;
  if (d.paramsSha256 !== undefined) out += `,"paramsSha256":${str(d.paramsSha256)}`;
  if (d.rule !== undefined) out += `,"rule":${str(d.rule)}`;
  if (d.reason !== undefined) out += `,"reason":${str(d.reason)}`;
  if (d.approval !== undefined) out += `,"approval":${approvalJson(d.approval)}`;
  if (d.via !== undefined) out += `,"via":${str(d.via)}`;
  if (d.name !== undefined) out += `,"name":${str(d.name)}`;
  return out;
}

function columnJson(c: ResultColumn): string {
  let out = `{"name":${str(c.name)},"type":${str(c.type)}`;
  if (c.masked !== null && c.masked !== undefined) out += `,"masked":${str(c.masked)}`;
  if (c.table !== undefined) out += `,"table":${str(c.table)}`;
  return `${out}}`;
}

/**
 * Serialized columns arrays that cannot change (frozen), by array. A relay hands the same frozen
 * array for every result of the same shape (src/pg/flow/result-columns.ts); anything else is
 * written afresh each time.
 */
const frozenColumnsJson = new WeakMap<readonly ResultColumn[], string>();

function columnsJson(columns: readonly ResultColumn[]): string {
  // Only arrays that were frozen, with every column frozen, are ever kept; nothing can thaw them.
  let json = frozenColumnsJson.get(columns);
  if (json !== undefined) return json;
  json = '[';
  for (let i = 0; i < columns.length; i++) json += (i === 0 ? '' : ',') + columnJson(columns[i] as ResultColumn);
  json += ']';
  if (Object.isFrozen(columns) && columns.every((c) => Object.isFrozen(c))) frozenColumnsJson.set(columns, json);
  return json;
}

/** The capture member of a result with `rows` rows: none when nothing was captured, `sha256` for a digest of all its rows. */
function captureMember(c: CapturedRows, rows: number): string {
  switch (c.mode) {
    case 'none':
      return '';
    case 'digest':
      if (typeof c.sha256 === 'string' && c.rows === rows) return `,"sha256":${str(c.sha256)}`;
      return `,"capture":{"mode":"digest","sha256":${str(c.sha256)},"rows":${num(c.rows)}}`;
    default:
      return `,"capture":${JSON.stringify(c)}`;
  }
}

/**
 * `d` of a result record (with `st`), or, with `withSt` false, the members after `st` — the form a
 * result takes inside its statement's record (`"result":{…}`, see frame.ts). JSON.stringify(data)'s
 * members in its order, less the defaults format 2 leaves out (above).
 */
export function resultJson(d: ResultData, withSt = true): string {
  let out = withSt ? `{"st":${num(d.st)},"columns":${columnsJson(d.columns)}` : `{"columns":${columnsJson(d.columns)}`;
  out += `,"rows":${num(d.rows)},"bytes":${num(d.bytes)}${captureMember(d.capture, d.rows)}`;
  if (d.set !== undefined) out += `,"set":${num(d.set)}`;
  if (d.ms !== undefined) out += `,"ms":${millis(d.ms)}`;
  if (d.error !== undefined) out += `,"error":{"code":${str(d.error.code)},"message":${str(d.error.message)}}`;
  if (d.tag !== undefined) out += `,"tag":${str(d.tag)}`;
  if (d.notices !== undefined) {
    out += ',"notices":[';
    for (let i = 0; i < d.notices.length; i++) {
      const n = d.notices[i] as ResultNotice;
      out += `${i === 0 ? '' : ','}{"severity":${str(n.severity)},"code":${str(n.code)},"message":${str(n.message)}}`;
    }
    out += ']';
  }
  if (d.noticesDropped !== undefined) out += `,"noticesDropped":${num(d.noticesDropped)}`;
  return `${out}}`;
}

// The transcript record format: one JSON object per line (JSON Lines), UTF-8, '\n'-terminated.
//
//   {"seq":42,"ts":1767268800000,"prev":"<64 hex>","k":"statement","sid":"…","d":{…},"hash":"<64 hex>"}
//
// Format 2 (written since 2026-11) gives `ts` as milliseconds since the epoch and leaves default
// members out of the per-statement records (see expandRecord); format 1 gave `ts` as an ISO 8601
// string and wrote every member. Readers accept both and hand on records in one shape: `ts` as
// ISO 8601, every member present.
//
// `hash` is SHA-256 over the exact bytes of the line without its `,"hash":"…"` member, i.e. the
// line from `{` up to just before `,"hash"`, followed by `}`. The writer builds that body first,
// hashes it, then appends the member, so no canonical-JSON step exists that two implementations
// could disagree on: verification hashes the bytes as they are on disk. `prev` is the previous
// record's `hash` (the chain), `seq` counts every record of one writer instance's chain from 1,
// across segments. A line never contains a raw '\n' (JSON escapes it), so a line is a frame and
// a missing final '\n' marks a torn write.

import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/** Record kinds, as written in the `k` member. */
export const RECORD_KIND = {
  /** First record of every segment: instance, segment number, link to the previous segment. */
  open: 'open',
  /** A signed statement that the chain up to a record is as it was when the writer saw it. */
  checkpoint: 'checkpoint',
  /** Last record of a closed segment: signed count and last hash. */
  seal: 'seal',
  sessionStart: 'session-start',
  statement: 'statement',
  decision: 'decision',
  result: 'result',
  event: 'event',
  sessionEnd: 'session-end',
  /**
   * Format 3: the bytes a session's relay read over a few milliseconds, as kept for a wire
   * transcript (src/pg/recording/wire-encoder.ts); readers turn them into the session's
   * statement, result, event and session-end records (wire-decoder.ts).
   */
  wire: 'wire',
} as const;

export type RecordKind = (typeof RECORD_KIND)[keyof typeof RECORD_KIND];

const KINDS: ReadonlySet<string> = new Set(Object.values(RECORD_KIND));

/** Format version, written in every segment's `open` record. */
export const FORMAT_VERSION = 3;

/**
 * Format versions readers understand: 1 (ISO `ts`, every member written), 2, and 3 (2 with `wire`
 * records).
 */
export const FORMAT_VERSIONS_READ: readonly number[] = [1, 2, FORMAT_VERSION];

/** `prev` of the very first record of an instance's chain. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_MEMBER = ',"hash":"';
const HASH_HEX_CHARS = 64;
/** Bytes of `,"hash":"<64 hex>"}` at the end of every line (before '\n'). */
export const HASH_SUFFIX_BYTES = HASH_MEMBER.length + HASH_HEX_CHARS + 2;
const RECORD_START = '{"seq":';
const NEWLINE = 0x0a;
const HEX64 = /^[0-9a-f]{64}$/;
/** The last millisecond a Date holds. */
const MAX_DATE_MS = 8.64e15;

export interface TranscriptRecord<D = unknown> {
  seq: number;
  /** ISO 8601 UTC time the writer appended the record (format 2 writes milliseconds; parseLine converts). */
  ts: string;
  prev: string;
  k: RecordKind;
  /** Session id, on session records. */
  sid?: string;
  d: D;
  hash: string;
}

type OneShotHash = (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string;
/** crypto.hash (Node ≥ 20.12) skips the Hash object: about twice as fast for a record-sized input. */
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/**
 * Builds one line (with its trailing '\n') and its hash. `data` must be JSON-serializable; strings
 * with lone surrogates are escaped by JSON.stringify, so the UTF-8 bytes hashed here are the bytes
 * written.
 */
export function encodeRecord(
  seq: number,
  ts: RecordTime,
  prev: string,
  kind: RecordKind,
  sid: string | undefined,
  data: unknown,
): { line: string; hash: string } {
  return encodeRecordJson(seq, ts, prev, kind, sid === undefined ? undefined : JSON.stringify(sid), JSON.stringify(data));
}

/** encodeRecord with the session id and the data already serialized (`sidJson` a JSON string, `dJson` an object). */
export function encodeRecordJson(
  seq: number,
  ts: RecordTime,
  prev: string,
  kind: RecordKind,
  sidJson: string | undefined,
  dJson: string,
): { line: string; hash: string } {
  const body = recordBody(seq, ts, prev, kind, sidJson, dJson);
  const hash = sha256Hex(body);
  return { line: `${body.slice(0, -1)}${hashTail(hash)}`, hash };
}

/**
 * A record's `ts` as written: milliseconds since the epoch (format 2), or an ISO 8601 string
 * (format 1, and a clock that gives no whole non-negative millisecond).
 */
export type RecordTime = number | string;

/** The writer's `ts` for a clock reading: the milliseconds when they are a whole number, else ISO 8601. */
export function recordTime(ms: number): RecordTime {
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : new Date(ms).toISOString();
}

/** A record's line without its `hash` member: the text its hash is taken over. */
export function recordBody(seq: number, ts: RecordTime, prev: string, kind: RecordKind, sidJson: string | undefined, dJson: string): string {
  return `${RECORD_START}${seq},"ts":${typeof ts === 'number' ? ts : `"${ts}"`},"prev":"${prev}","k":"${kind}"${sidJson === undefined ? '' : `,"sid":${sidJson}`},"d":${dJson}}`;
}

/** What replaces the body's closing `}` to make the line: `,"hash":"<hash>"}` and '\n' (ASCII, HASH_SUFFIX_BYTES + 1 bytes). */
export function hashTail(hash: string): string {
  return `${HASH_MEMBER}${hash}"}\n`;
}

/**
 * Bytes of the line encodeRecordJson makes (with its '\n'), from the UTF-8 sizes of the two
 * serialized parts: everything else in a line is ASCII.
 */
export function encodedRecordBytes(seq: number, ts: RecordTime, kind: RecordKind, sidJsonBytes: number | undefined, dJsonBytes: number): number {
  // {"seq":N,"ts":…,"prev":"<64>","k":"…"[,"sid":…],"d":…  then ,"hash":"<64>"}  and '\n'
  return (
    RECORD_START.length + digits(seq) + 6 + (typeof ts === 'number' ? digits(ts) : ts.length + 2) + 9 + HASH_HEX_CHARS + 7 + kind.length + 1 +
    (sidJsonBytes === undefined ? 0 : 7 + sidJsonBytes) + 5 + dJsonBytes + HASH_SUFFIX_BYTES + 1
  );
}

/** Decimal digits of a non-negative integer, without making its string (this runs for every record). */
function digits(n: number): number {
  let d = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) d++;
  return d;
}

/** The member of a statement record's `d` that carries its first result, when it was recorded
 *  before the statement's record was written (see expandRecord). */
export const MERGED_RESULT_MEMBER = 'result';

/**
 * A statement whose first result arrived while its record was still waiting to be written is
 * written as one record: the statement's `d` with a `result` member holding the result's `d`
 * without `st`. This splits such a record into the two records readers know: the statement (`d`
 * without `result`) and the result, with the statement's `seq`, `prev` and `hash` (it is covered
 * by that line's hash) and `ts` moved on by the result's `ms`. The data of statement and result
 * records comes back with the members format 2 leaves out (statementData, resultData); any other
 * record is returned as is.
 */
export function expandRecord(r: TranscriptRecord): TranscriptRecord[] {
  if (r.k === RECORD_KIND.result) return [{ ...r, d: resultData(r.d) }];
  if (r.k !== RECORD_KIND.statement) return [r];
  const d = r.d as Record<string, unknown>;
  const result = d[MERGED_RESULT_MEMBER];
  if (!result || typeof result !== 'object' || Array.isArray(result)) return [{ ...r, d: statementData(d) }];
  const { [MERGED_RESULT_MEMBER]: _result, ...statement } = d;
  const ms = (result as { ms?: unknown }).ms;
  const at = Date.parse(r.ts) + (typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.round(ms) : 0);
  return [
    { ...r, d: statementData(statement) },
    { ...r, ts: Number.isFinite(at) ? new Date(at).toISOString() : r.ts, k: RECORD_KIND.result, d: resultData({ st: d.st, ...(result as object) }) },
  ];
}

/**
 * What format 2 leaves out of the per-statement records, put back (format 1 records have it all,
 * and come back unchanged):
 * - a statement's `verdict` when it is `allow`;
 * - a result column's `masked` when it is `null`;
 * - a result's `capture` when it is `{"mode":"none"}`; a digest whose row count is the result's
 *   is written as `"sha256":"…"` in place of `"capture":{"mode":"digest","sha256":"…","rows":N}`.
 */
function statementData(d: unknown): unknown {
  if (!d || typeof d !== 'object' || Array.isArray(d) || 'verdict' in d) return d;
  return { ...d, verdict: 'allow' };
}

function resultData(d: unknown): unknown {
  if (!d || typeof d !== 'object' || Array.isArray(d)) return d;
  const r = d as Record<string, unknown>;
  const columns = Array.isArray(r.columns) && r.columns.some((c) => isObject(c) && !('masked' in c)) ? r.columns.map((c: unknown) => (isObject(c) && !('masked' in c) ? { ...c, masked: null } : c)) : r.columns;
  if (columns === r.columns && 'capture' in r) return d;
  const { sha256, ...rest } = r;
  const out: Record<string, unknown> = { ...rest };
  if (columns !== undefined) out.columns = columns;
  if (!('capture' in r)) out.capture = typeof sha256 === 'string' ? { mode: 'digest', sha256, rows: r.rows } : { mode: 'none' };
  else if (sha256 !== undefined) out.sha256 = sha256;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export type ParsedLine =
  | { ok: true; record: TranscriptRecord; hashOk: boolean }
  /** `edited`: a record line whose bytes no longer match its hash and that is no longer valid JSON. */
  | { ok: false; problem: 'edited' | 'damaged' | 'not-a-record'; seq?: number; reason: string };

/**
 * Parses one line (without its '\n'). With `checkHash` (the default) the line's hash is
 * recomputed; readers that only display records may skip that.
 */
export function parseLine(line: Buffer, checkHash = true): ParsedLine {
  const n = line.length;
  const text = line.toString('utf8');
  const looksLikeRecord = text.startsWith(RECORD_START);
  const claimedSeq = looksLikeRecord ? leadingSeq(text) : undefined;
  const suffixAt = n - HASH_SUFFIX_BYTES;
  const hasSuffix =
    suffixAt > 0 &&
    line[n - 1] === 0x7d /* } */ &&
    line[n - 2] === 0x22 /* " */ &&
    line.toString('latin1', suffixAt, suffixAt + HASH_MEMBER.length) === HASH_MEMBER &&
    HEX64.test(line.toString('latin1', n - 2 - HASH_HEX_CHARS, n - 2));
  if (!hasSuffix) {
    return looksLikeRecord
      ? withSeq({ ok: false, problem: 'damaged', reason: 'the record is cut short or its hash member is damaged' }, claimedSeq)
      : { ok: false, problem: 'not-a-record', reason: 'not a transcript record' };
  }
  const stated = line.toString('latin1', n - 2 - HASH_HEX_CHARS, n - 2);
  const hashOk = !checkHash || createHash('sha256').update(line.subarray(0, suffixAt)).update('}').digest('hex') === stated;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return hashOk
      ? withSeq({ ok: false, problem: 'damaged', reason: 'not valid JSON' }, claimedSeq)
      : withSeq({ ok: false, problem: 'edited', reason: 'the bytes no longer match the hash and are not valid JSON' }, claimedSeq);
  }
  const record = asRecord(value);
  if (!record) {
    return hashOk
      ? withSeq({ ok: false, problem: 'not-a-record', reason: 'a JSON line without the record members' }, claimedSeq)
      : withSeq({ ok: false, problem: 'edited', reason: 'the bytes no longer match the hash and the record members are damaged' }, claimedSeq);
  }
  return { ok: true, record, hashOk: hashOk && record.hash === stated };
}

function withSeq<T extends object>(value: T, seq: number | undefined): T & { seq?: number } {
  return seq === undefined ? value : { ...value, seq };
}

function leadingSeq(text: string): number | undefined {
  const m = /^\{"seq":(\d{1,15})[,}]/.exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function asRecord(value: unknown): TranscriptRecord | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const r = value as Record<string, unknown>;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 0) return undefined;
  // Format 2 writes `ts` in milliseconds; readers get ISO 8601 from either format.
  if (typeof r.ts === 'number' && Number.isSafeInteger(r.ts) && r.ts >= 0 && r.ts <= MAX_DATE_MS) r.ts = new Date(r.ts).toISOString();
  if (typeof r.ts !== 'string' || typeof r.prev !== 'string' || !HEX64.test(r.prev)) return undefined;
  if (typeof r.k !== 'string' || !KINDS.has(r.k)) return undefined;
  if (r.sid !== undefined && typeof r.sid !== 'string') return undefined;
  if (!r.d || typeof r.d !== 'object') return undefined;
  if (typeof r.hash !== 'string' || !HEX64.test(r.hash)) return undefined;
  return r as unknown as TranscriptRecord;
}

/** Offset just past the last '\n' in `buf` (0 if none). */
export function endOfLastLine(buf: Uint8Array): number {
  const i = buf.lastIndexOf(NEWLINE);
  return i < 0 ? 0 : i + 1;
}

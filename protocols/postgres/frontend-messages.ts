// Frontend messages of the query cycle: Query ('Q'), Parse ('P'), Bind ('B'), Describe ('D'),
// Execute ('E'), Close ('C'), Sync ('S'), Flush ('H'), Terminate ('X'), CopyFail ('f').
// https://www.postgresql.org/docs/current/protocol-message-formats.html
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { Frontend, TargetKind } from './codes.js';

function open(msg: Buffer, code: number, what: string): Reader {
  const r = new Reader(msg);
  if (r.byte() !== code) throw new ProtocolError(`not a ${what} message`, 0);
  const len = r.int32('length');
  if (len + 1 !== msg.length) throw new ProtocolError(`${what} length ${len} does not match the frame`, 1);
  return r;
}

// Query ---------------------------------------------------------------------------------------
export function decodeQuery(msg: Buffer): string {
  const r = open(msg, Frontend.query, 'Query');
  const sql = r.cstring('query string');
  r.done('Query');
  return sql;
}

export function encodeQuery(sql: string): Buffer {
  return new Writer(sql.length + 8).begin(Frontend.query).cstring(sql).end().toBuffer();
}

// Parse ---------------------------------------------------------------------------------------
export interface Parse {
  /** Prepared statement name; '' is the unnamed statement. */
  name: string;
  sql: string;
  /** Parameter type OIDs the client specified (0 = unspecified). */
  paramTypes: number[];
}

export function decodeParse(msg: Buffer): Parse {
  const r = open(msg, Frontend.parse, 'Parse');
  const name = r.cstring('statement name');
  const sql = r.cstring('query string');
  const n = r.int16('parameter type count');
  if (n < 0) throw new ProtocolError(`negative parameter type count ${n}`, r.offset - 2);
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.uint32('parameter type'));
  r.done('Parse');
  return { name, sql, paramTypes };
}

export function encodeParse(p: Parse): Buffer {
  const w = new Writer().begin(Frontend.parse).cstring(p.name).cstring(p.sql).int16(p.paramTypes.length);
  for (const t of p.paramTypes) w.uint32(t);
  return w.end().toBuffer();
}

// Bind ----------------------------------------------------------------------------------------
export interface Bind {
  portal: string;
  statement: string;
  /** Per-parameter format codes: [] = all text, [f] = all f, or one per parameter. */
  paramFormats: number[];
  /** Parameter values (null = SQL NULL); views into the message. */
  params: (Buffer | null)[];
  resultFormats: number[];
}

function formatCodes(r: Reader, what: string): number[] {
  const n = r.int16(`${what} count`);
  if (n < 0) throw new ProtocolError(`negative ${what} count ${n}`, r.offset - 2);
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = r.int16(what);
    if (c !== 0 && c !== 1) throw new ProtocolError(`invalid ${what} ${c}`, r.offset - 2);
    codes.push(c);
  }
  return codes;
}

export function decodeBind(msg: Buffer): Bind {
  const r = open(msg, Frontend.bind, 'Bind');
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const paramFormats = formatCodes(r, 'parameter format code');
  const n = r.int16('parameter count');
  if (n < 0) throw new ProtocolError(`negative parameter count ${n}`, r.offset - 2);
  if (paramFormats.length > 1 && paramFormats.length !== n) {
    throw new ProtocolError(`${paramFormats.length} parameter formats for ${n} parameters`, r.offset - 2);
  }
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) params.push(r.lengthPrefixed(`parameter ${i + 1}`));
  const resultFormats = formatCodes(r, 'result format code');
  r.done('Bind');
  return { portal, statement, paramFormats, params, resultFormats };
}

export function encodeBind(b: Bind): Buffer {
  const w = new Writer().begin(Frontend.bind).cstring(b.portal).cstring(b.statement);
  w.int16(b.paramFormats.length);
  for (const f of b.paramFormats) w.int16(f);
  w.int16(b.params.length);
  for (const p of b.params) w.lengthPrefixed(p);
  w.int16(b.resultFormats.length);
  for (const f of b.resultFormats) w.int16(f);
  return w.end().toBuffer();
}

/** The format code that applies to parameter or column `i` given a Bind format-code list. */
export function formatAt(codes: readonly number[], i: number): number {
  if (codes.length === 0) return 0;
  if (codes.length === 1) return codes[0] as number;
  return codes[i] ?? 0;
}

// Describe / Close ----------------------------------------------------------------------------
export interface Target {
  kind: 'statement' | 'portal';
  name: string;
}

function decodeTarget(msg: Buffer, code: number, what: string): Target {
  const r = open(msg, code, what);
  const k = r.byte('target kind');
  if (k !== TargetKind.statement && k !== TargetKind.portal) {
    throw new ProtocolError(`invalid ${what} target kind 0x${k.toString(16)}`, 5);
  }
  const name = r.cstring('name');
  r.done(what);
  return { kind: k === TargetKind.statement ? 'statement' : 'portal', name };
}

function encodeTarget(code: number, t: Target): Buffer {
  return new Writer()
    .begin(code)
    .byte(t.kind === 'statement' ? TargetKind.statement : TargetKind.portal)
    .cstring(t.name)
    .end()
    .toBuffer();
}

export const decodeDescribe = (msg: Buffer): Target => decodeTarget(msg, Frontend.describe, 'Describe');
export const encodeDescribe = (t: Target): Buffer => encodeTarget(Frontend.describe, t);
export const decodeClose = (msg: Buffer): Target => decodeTarget(msg, Frontend.close, 'Close');
export const encodeClose = (t: Target): Buffer => encodeTarget(Frontend.close, t);

// Execute -------------------------------------------------------------------------------------
export interface Execute {
  portal: string;
  /** Row limit; 0 = no limit. */
  maxRows: number;
}

export function decodeExecute(msg: Buffer): Execute {
  const r = open(msg, Frontend.execute, 'Execute');
  const portal = r.cstring('portal name');
  const maxRows = r.int32('row limit');
  r.done('Execute');
  return { portal, maxRows };
}

export function encodeExecute(e: Execute): Buffer {
  return new Writer().begin(Frontend.execute).cstring(e.portal).int32(e.maxRows).end().toBuffer();
}

// Sync / Flush / Terminate / CopyDone (no body) -----------------------------------------------
export function encodeEmpty(code: number): Buffer {
  return new Writer(5).begin(code).end().toBuffer();
}
export const SYNC = encodeEmpty(Frontend.sync);
export const FLUSH = encodeEmpty(Frontend.flush);
export const TERMINATE = encodeEmpty(Frontend.terminate);

export function decodeEmpty(msg: Buffer, code: number, what: string): void {
  open(msg, code, what).done(what);
}

// CopyFail ------------------------------------------------------------------------------------
export function decodeCopyFail(msg: Buffer): string {
  const r = open(msg, Frontend.copyFail, 'CopyFail');
  const reason = r.cstring('error message');
  r.done('CopyFail');
  return reason;
}

export function encodeCopyFail(reason: string): Buffer {
  return new Writer().begin(Frontend.copyFail).cstring(reason).end().toBuffer();
}

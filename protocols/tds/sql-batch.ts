// SQLBatch (packet type 0x01). [MS-TDS] 2.2.6.7; example in 4.6.
// TDS 7.2+: ALL_HEADERS, then the SQL text as UTF-16LE to the end of the message.
// TDS 7.1: the SQL text alone.

import { type Header, readAllHeaders, writeAllHeaders } from './all-headers.js';
import { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';

export interface SqlBatch {
  /** ALL_HEADERS (TDS 7.2+ only). */
  readonly headers?: readonly Header[];
  readonly sql: string;
}

export function decodeSqlBatch(payload: Buffer, ctx: TdsContext): SqlBatch {
  const r = new Reader(payload, 0, payload.length);
  const headers = isTds72Plus(ctx) ? readAllHeaders(r) : undefined;
  if (r.remaining % 2 !== 0) r.fail(`SQLBatch text has an odd byte length ${r.remaining}`);
  const sql = r.utf16(r.remaining / 2, 'SQLBatch text');
  return headers ? { headers, sql } : { sql };
}

export function encodeSqlBatch(batch: SqlBatch, ctx: TdsContext): Buffer {
  const w = new Writer(64 + batch.sql.length * 2);
  if (isTds72Plus(ctx)) writeAllHeaders(w, batch.headers ?? []);
  else if (batch.headers && batch.headers.length > 0) throw new RangeError('ALL_HEADERS does not exist before TDS 7.2');
  w.utf16(batch.sql);
  return w.finish();
}

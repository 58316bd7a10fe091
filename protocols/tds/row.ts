// ROW (0xD1): one row of the current result set. [MS-TDS] 2.2.7.20.
//   One TYPE_VARBYTE per column of the last COLMETADATA, in order; TEXT/NTEXT/IMAGE values
//   carry a TextPointer and Timestamp first.
// measureRow() frames a row without decoding it; rowValueRanges() locates each value, so a
// masking relay can rewrite one column and copy the others as bytes.

import { ProtocolError } from '../errors.js';
import type { ColumnMetadata } from './colmetadata.js';
import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';
import { NEED_MORE } from './type-info.js';
import { type Value, type ValueOptions, measureValue, readValue, writeValue } from './values.js';

export interface RowToken {
  readonly kind: 'ROW';
  readonly values: readonly Value[];
}

export function readRow(r: Reader, columns: readonly ColumnMetadata[], opts: ValueOptions): RowToken {
  const values: Value[] = new Array<Value>(columns.length);
  for (let i = 0; i < columns.length; i++) values[i] = readValue(r, columns[i]!.typeInfo, opts);
  return { kind: 'ROW', values };
}

export function writeRow(w: Writer, t: RowToken, columns: readonly ColumnMetadata[], opts: ValueOptions): void {
  if (t.values.length !== columns.length) {
    throw new RangeError(`ROW has ${t.values.length} values for ${columns.length} columns`);
  }
  w.u8(TOKEN.ROW);
  for (let i = 0; i < columns.length; i++) writeValue(w, columns[i]!.typeInfo, t.values[i]!, opts);
}

/** End of the ROW body at `pos` (after the token byte), or NEED_MORE. */
export function measureRow(
  buf: Buffer,
  pos: number,
  end: number,
  columns: readonly ColumnMetadata[],
  opts: ValueOptions,
  origin: number,
): number {
  let p = pos;
  for (let i = 0; i < columns.length; i++) {
    p = measureValue(buf, p, end, columns[i]!.typeInfo, opts, origin);
    if (p < 0) return NEED_MORE;
  }
  return p;
}

/**
 * Byte ranges [start, end) of each column's value (length prefix included) within a whole ROW or
 * NBCROW token `bytes` (token byte included); null for a column an NBCROW marks NULL.
 */
export function rowValueRanges(
  bytes: Buffer,
  columns: readonly ColumnMetadata[],
  opts: ValueOptions,
): ([number, number] | null)[] {
  const nbc = bytes[0] === TOKEN.NBCROW;
  if (!nbc && bytes[0] !== TOKEN.ROW) throw new ProtocolError('not a ROW or NBCROW token', 0);
  let p = 1;
  const bitmapAt = p;
  if (nbc) p += Math.ceil(columns.length / 8);
  const out: ([number, number] | null)[] = [];
  for (let i = 0; i < columns.length; i++) {
    if (nbc && (bytes[bitmapAt + (i >> 3)]! >> (i & 7)) & 1) {
      out.push(null);
      continue;
    }
    const q = measureValue(bytes, p, bytes.length, columns[i]!.typeInfo, opts);
    if (q < 0) throw new ProtocolError(`row ends inside column ${i}`, p);
    out.push([p, q]);
    p = q;
  }
  if (p !== bytes.length) throw new ProtocolError(`row has ${bytes.length - p} bytes after its last column`, p);
  return out;
}

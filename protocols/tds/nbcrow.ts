// NBCROW (0xD2): a row with a null bitmap (TDS 7.3+). [MS-TDS] 2.2.7.15.
//   NullBitmap: ceil(columns / 8) bytes, bit i (LSB first) set = column i is NULL; then a
//   TYPE_VARBYTE for each column that is not NULL.

import type { ColumnMetadata } from './colmetadata.js';
import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';
import { NEED_MORE } from './type-info.js';
import { type Value, type ValueOptions, measureValue, readValue, writeValue } from './values.js';

export interface NbcRowToken {
  readonly kind: 'NBCROW';
  readonly values: readonly Value[];
}

export function nullBitmapLength(columnCount: number): number {
  return Math.ceil(columnCount / 8);
}

export function readNbcRow(r: Reader, columns: readonly ColumnMetadata[], opts: ValueOptions): NbcRowToken {
  const bitmap = r.bytes(nullBitmapLength(columns.length), 'NBCROW null bitmap');
  const values: Value[] = new Array<Value>(columns.length);
  for (let i = 0; i < columns.length; i++) {
    values[i] = (bitmap[i >> 3]! >> (i & 7)) & 1 ? null : readValue(r, columns[i]!.typeInfo, opts);
  }
  return { kind: 'NBCROW', values };
}

export function writeNbcRow(w: Writer, t: NbcRowToken, columns: readonly ColumnMetadata[], opts: ValueOptions): void {
  if (t.values.length !== columns.length) {
    throw new RangeError(`NBCROW has ${t.values.length} values for ${columns.length} columns`);
  }
  const bitmap = Buffer.alloc(nullBitmapLength(columns.length));
  t.values.forEach((v, i) => {
    if (v === null) bitmap[i >> 3]! |= 1 << (i & 7);
  });
  w.u8(TOKEN.NBCROW).bytes(bitmap);
  for (let i = 0; i < columns.length; i++) {
    const v = t.values[i]!;
    if (v !== null) writeValue(w, columns[i]!.typeInfo, v, opts);
  }
}

/** End of the NBCROW body at `pos` (after the token byte), or NEED_MORE. */
export function measureNbcRow(
  buf: Buffer,
  pos: number,
  end: number,
  columns: readonly ColumnMetadata[],
  opts: ValueOptions,
  origin: number,
): number {
  const bitmapAt = pos;
  let p = pos + nullBitmapLength(columns.length);
  if (p > end) return NEED_MORE;
  for (let i = 0; i < columns.length; i++) {
    if ((buf[bitmapAt + (i >> 3)]! >> (i & 7)) & 1) continue;
    p = measureValue(buf, p, end, columns[i]!.typeInfo, opts, origin);
    if (p < 0) return NEED_MORE;
  }
  return p;
}

// ORDER (0xA9): the columns a result is sorted by. [MS-TDS] 2.2.7.17.
//   Length USHORT, then ColNum USHORT per ORDER BY column.

import type { Reader, Writer } from './cursor.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export interface OrderToken {
  readonly kind: 'ORDER';
  readonly columns: readonly number[];
}

export function readOrder(r: Reader): OrderToken {
  if (r.remaining % 2 !== 0) r.fail(`ORDER body length ${r.remaining} is odd`);
  const columns: number[] = [];
  while (r.remaining > 0) columns.push(r.u16le('ORDER ColNum'));
  return { kind: 'ORDER', columns };
}

export function writeOrder(w: Writer, t: OrderToken): void {
  const at = beginUShortToken(w, TOKEN.ORDER);
  for (const c of t.columns) w.u16le(c, 'ORDER ColNum');
  endUShortToken(w, at, 'ORDER');
}

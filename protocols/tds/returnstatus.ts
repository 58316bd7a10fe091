// RETURNSTATUS (0x79): the return value of a stored procedure. [MS-TDS] 2.2.7.18.
//   Value LONG.

import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';

export interface ReturnStatusToken {
  readonly kind: 'RETURNSTATUS';
  readonly value: number;
}

export const RETURNSTATUS_BODY_LENGTH = 4;

export function readReturnStatus(r: Reader): ReturnStatusToken {
  return { kind: 'RETURNSTATUS', value: r.i32le('RETURNSTATUS value') };
}

export function writeReturnStatus(w: Writer, t: ReturnStatusToken): void {
  w.u8(TOKEN.RETURNSTATUS).i32le(t.value, 'RETURNSTATUS value');
}

// OFFSET (0x78): position of a keyword in the SQL text (sent only on request, SQL Server 2000
// era). [MS-TDS] 2.2.7.16. Identifier USHORT, OffsetLen USHORT. Decoded so it can be skipped.

import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';

export interface OffsetToken {
  readonly kind: 'OFFSET';
  readonly identifier: number;
  readonly offsetLength: number;
}

export const OFFSET_BODY_LENGTH = 4;

export function readOffset(r: Reader): OffsetToken {
  return { kind: 'OFFSET', identifier: r.u16le('OFFSET Identifier'), offsetLength: r.u16le('OFFSET OffsetLen') };
}

export function writeOffset(w: Writer, t: OffsetToken): void {
  w.u8(TOKEN.OFFSET).u16le(t.identifier, 'OFFSET Identifier').u16le(t.offsetLength, 'OFFSET OffsetLen');
}

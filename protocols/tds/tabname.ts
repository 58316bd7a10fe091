// TABNAME (0xA4): the tables a browse-mode result came from. [MS-TDS] 2.2.7.23.
//   Length USHORT, then per table: TDS 7.1 a US_VARCHAR name; TDS 7.2+ NumParts BYTE and that
//   many US_VARCHAR parts. Decoded so a relay can skip or forward it knowingly.

import type { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export interface TabNameToken {
  readonly kind: 'TABNAME';
  /** Each table as its name parts (one part in TDS 7.1). */
  readonly tables: readonly (readonly string[])[];
}

export function readTabName(r: Reader, ctx: TdsContext): TabNameToken {
  const tables: string[][] = [];
  while (r.remaining > 0) {
    if (isTds72Plus(ctx)) {
      const n = r.u8('TABNAME NumParts');
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(r.usVarchar('TABNAME PartName'));
      tables.push(parts);
    } else {
      tables.push([r.usVarchar('TABNAME TableName')]);
    }
  }
  return { kind: 'TABNAME', tables };
}

export function writeTabName(w: Writer, t: TabNameToken, ctx: TdsContext): void {
  const at = beginUShortToken(w, TOKEN.TABNAME);
  for (const parts of t.tables) {
    if (isTds72Plus(ctx)) {
      w.u8(parts.length, 'TABNAME NumParts');
      for (const p of parts) w.usVarchar(p, 'TABNAME PartName');
    } else {
      if (parts.length !== 1) throw new RangeError('TDS 7.1 TABNAME entries have exactly one name part');
      w.usVarchar(parts[0]!, 'TABNAME TableName');
    }
  }
  endUShortToken(w, at, 'TABNAME');
}

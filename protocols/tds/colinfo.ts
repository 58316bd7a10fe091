// COLINFO (0xA5): browse-mode column information. [MS-TDS] 2.2.7.3.
//   Length USHORT, then per column: ColNum BYTE, TableNum BYTE, Status BYTE, and ColName
//   B_VARCHAR when Status has DIFFERENT_NAME (0x20).

import type { Reader, Writer } from './cursor.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export const COLINFO_STATUS = {
  EXPRESSION: 0x04,
  KEY: 0x08,
  HIDDEN: 0x10,
  DIFFERENT_NAME: 0x20,
} as const;

export interface ColInfo {
  readonly column: number;
  readonly table: number;
  readonly status: number;
  readonly name?: string;
}

export interface ColInfoToken {
  readonly kind: 'COLINFO';
  readonly columns: readonly ColInfo[];
}

export function readColInfo(r: Reader): ColInfoToken {
  const columns: ColInfo[] = [];
  while (r.remaining > 0) {
    const column = r.u8('COLINFO ColNum');
    const table = r.u8('COLINFO TableNum');
    const status = r.u8('COLINFO Status');
    if (status & COLINFO_STATUS.DIFFERENT_NAME) columns.push({ column, table, status, name: r.bVarchar('COLINFO ColName') });
    else columns.push({ column, table, status });
  }
  return { kind: 'COLINFO', columns };
}

export function writeColInfo(w: Writer, t: ColInfoToken): void {
  const at = beginUShortToken(w, TOKEN.COLINFO);
  for (const c of t.columns) {
    const status = c.name !== undefined ? c.status | COLINFO_STATUS.DIFFERENT_NAME : c.status & ~COLINFO_STATUS.DIFFERENT_NAME;
    w.u8(c.column, 'COLINFO ColNum').u8(c.table, 'COLINFO TableNum').u8(status, 'COLINFO Status');
    if (c.name !== undefined) w.bVarchar(c.name, 'COLINFO ColName');
  }
  endUShortToken(w, at, 'COLINFO');
}

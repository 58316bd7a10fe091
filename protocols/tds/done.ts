// DONE (0xFD), DONEPROC (0xFE), DONEINPROC (0xFF): completion of a statement, a stored procedure,
// or a statement inside one. [MS-TDS] 2.2.7.6, 2.2.7.7, 2.2.7.8.
//   Status USHORT, CurCmd USHORT, DoneRowCount LONG (TDS 7.1) / ULONGLONG (TDS 7.2+).

import type { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { TOKEN } from './token-codes.js';

export const DONE_STATUS = {
  FINAL: 0x0000,
  MORE: 0x0001,
  ERROR: 0x0002,
  INXACT: 0x0004,
  COUNT: 0x0010,
  ATTN: 0x0020,
  SRVERROR: 0x0100,
} as const;

export type DoneKind = 'DONE' | 'DONEPROC' | 'DONEINPROC';

export interface DoneToken {
  readonly kind: DoneKind;
  readonly status: number;
  readonly curCmd: number;
  /** Valid when status has COUNT. */
  readonly rowCount: bigint;
}

/** Body length after the token byte. */
export function doneBodyLength(ctx: TdsContext): number {
  return isTds72Plus(ctx) ? 12 : 8;
}

const CODE: Readonly<Record<DoneKind, number>> = {
  DONE: TOKEN.DONE,
  DONEPROC: TOKEN.DONEPROC,
  DONEINPROC: TOKEN.DONEINPROC,
};

export function readDone(r: Reader, kind: DoneKind, ctx: TdsContext): DoneToken {
  const status = r.u16le(`${kind} Status`);
  const curCmd = r.u16le(`${kind} CurCmd`);
  const rowCount = isTds72Plus(ctx) ? r.u64le(`${kind} DoneRowCount`) : BigInt(r.u32le(`${kind} DoneRowCount`));
  return { kind, status, curCmd, rowCount };
}

export function writeDone(w: Writer, t: DoneToken, ctx: TdsContext): void {
  w.u8(CODE[t.kind]).u16le(t.status, `${t.kind} Status`).u16le(t.curCmd, `${t.kind} CurCmd`);
  if (isTds72Plus(ctx)) w.u64le(t.rowCount, `${t.kind} DoneRowCount`);
  else {
    if (t.rowCount > 0xffffffffn) throw new RangeError(`${t.kind} row count ${t.rowCount} does not fit TDS 7.1's 4 bytes`);
    w.u32le(Number(t.rowCount));
  }
}

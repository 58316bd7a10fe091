// INFO (0xAB) and ERROR (0xAA): a server message. [MS-TDS] 2.2.7.13 and 2.2.7.10.
//   Length USHORT, Number LONG, State BYTE, Class BYTE, MsgText US_VARCHAR,
//   ServerName B_VARCHAR, ProcName B_VARCHAR, LineNumber USHORT (TDS 7.1) / LONG (TDS 7.2+).
// Class is the severity: 0-10 informational, 11-16 user errors, 17+ resource/system errors
// (20+ end the connection).

import type { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export interface InfoErrorToken {
  readonly kind: 'INFO' | 'ERROR';
  readonly number: number;
  readonly state: number;
  readonly class: number;
  readonly message: string;
  readonly serverName: string;
  readonly procName: string;
  readonly lineNumber: number;
}

export function readInfoError(r: Reader, kind: 'INFO' | 'ERROR', ctx: TdsContext): InfoErrorToken {
  const t: InfoErrorToken = {
    kind,
    number: r.i32le(`${kind} Number`),
    state: r.u8(`${kind} State`),
    class: r.u8(`${kind} Class`),
    message: r.usVarchar(`${kind} MsgText`),
    serverName: r.bVarchar(`${kind} ServerName`),
    procName: r.bVarchar(`${kind} ProcName`),
    lineNumber: isTds72Plus(ctx) ? r.i32le(`${kind} LineNumber`) : r.u16le(`${kind} LineNumber`),
  };
  r.expectEnd(kind);
  return t;
}

export function writeInfoError(w: Writer, t: InfoErrorToken, ctx: TdsContext): void {
  const at = beginUShortToken(w, t.kind === 'ERROR' ? TOKEN.ERROR : TOKEN.INFO);
  w.i32le(t.number, `${t.kind} Number`).u8(t.state, `${t.kind} State`).u8(t.class, `${t.kind} Class`);
  w.usVarchar(t.message, `${t.kind} MsgText`).bVarchar(t.serverName, `${t.kind} ServerName`);
  w.bVarchar(t.procName, `${t.kind} ProcName`);
  if (isTds72Plus(ctx)) w.i32le(t.lineNumber, `${t.kind} LineNumber`);
  else w.u16le(t.lineNumber, `${t.kind} LineNumber`);
  endUShortToken(w, at, t.kind);
}

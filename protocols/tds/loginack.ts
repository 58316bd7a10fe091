// LOGINACK (0xAD): the server accepted the login. [MS-TDS] 2.2.7.14.
//   Length USHORT, Interface BYTE, TDSVersion DWORD (network byte order), ProgName B_VARCHAR,
//   ProgVersion: MajorVer, MinorVer, BuildNumHi, BuildNumLow (BYTEs).

import type { Reader, Writer } from './cursor.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export const LOGINACK_INTERFACE = {
  SQL_DFLT: 0,
  SQL_TSQL: 1,
} as const;

export interface LoginAckToken {
  readonly kind: 'LOGINACK';
  readonly interface: number;
  readonly tdsVersion: number;
  readonly progName: string;
  readonly progVersion: { readonly major: number; readonly minor: number; readonly buildHi: number; readonly buildLow: number };
}

export function readLoginAck(r: Reader): LoginAckToken {
  const t: LoginAckToken = {
    kind: 'LOGINACK',
    interface: r.u8('LOGINACK Interface'),
    tdsVersion: r.u32be('LOGINACK TDSVersion'),
    progName: r.bVarchar('LOGINACK ProgName'),
    progVersion: {
      major: r.u8('LOGINACK MajorVer'),
      minor: r.u8('LOGINACK MinorVer'),
      buildHi: r.u8('LOGINACK BuildNumHi'),
      buildLow: r.u8('LOGINACK BuildNumLow'),
    },
  };
  r.expectEnd('LOGINACK');
  return t;
}

export function writeLoginAck(w: Writer, t: LoginAckToken): void {
  const at = beginUShortToken(w, TOKEN.LOGINACK);
  w.u8(t.interface, 'LOGINACK Interface').u32be(t.tdsVersion, 'LOGINACK TDSVersion');
  w.bVarchar(t.progName, 'LOGINACK ProgName');
  const v = t.progVersion;
  w.u8(v.major, 'MajorVer').u8(v.minor, 'MinorVer').u8(v.buildHi, 'BuildNumHi').u8(v.buildLow, 'BuildNumLow');
  endUShortToken(w, at, 'LOGINACK');
}

// Token type codes of the tabular result stream. [MS-TDS] 2.2.7 (Data Stream Types: tokens),
// 2.2.4.2 (token classes: zero-length, fixed-length, variable-length with a USHORT or DWORD
// length, variable-count).

import type { Writer } from './cursor.js';

export const TOKEN = {
  OFFSET: 0x78,
  RETURNSTATUS: 0x79,
  COLMETADATA: 0x81,
  ALTMETADATA: 0x88,
  DATACLASSIFICATION: 0xa3,
  TABNAME: 0xa4,
  COLINFO: 0xa5,
  ORDER: 0xa9,
  ERROR: 0xaa,
  INFO: 0xab,
  RETURNVALUE: 0xac,
  LOGINACK: 0xad,
  FEATUREEXTACK: 0xae,
  ROW: 0xd1,
  NBCROW: 0xd2,
  ALTROW: 0xd3,
  ENVCHANGE: 0xe3,
  SESSIONSTATE: 0xe4,
  SSPI: 0xed,
  FEDAUTHINFO: 0xee,
  DONE: 0xfd,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
} as const;
export type TokenCode = (typeof TOKEN)[keyof typeof TOKEN];
export type TokenName = keyof typeof TOKEN;

const NAMES = new Map<number, TokenName>(
  (Object.entries(TOKEN) as [TokenName, number][]).map(([name, code]) => [code, name]),
);

/** The spec name of a token code, or undefined for a code the spec does not define. */
export function tokenName(code: number): TokenName | undefined {
  return NAMES.get(code);
}

/** Tokens whose body starts with a USHORT length. */
export const USHORT_LENGTH_TOKENS: ReadonlySet<number> = new Set([
  TOKEN.TABNAME,
  TOKEN.COLINFO,
  TOKEN.ORDER,
  TOKEN.ERROR,
  TOKEN.INFO,
  TOKEN.LOGINACK,
  TOKEN.ENVCHANGE,
  TOKEN.SSPI,
]);

/** Tokens whose body starts with a DWORD length. */
export const DWORD_LENGTH_TOKENS: ReadonlySet<number> = new Set([TOKEN.SESSIONSTATE, TOKEN.FEDAUTHINFO]);

/** Starts a token with a USHORT length: writes the code and a placeholder, returns its position. */
export function beginUShortToken(w: Writer, code: number): number {
  const at = w.pos;
  w.u8(code).u16le(0);
  return at;
}

/** Fills in the USHORT length of a token begun with beginUShortToken. */
export function endUShortToken(w: Writer, at: number, name: string): void {
  const length = w.pos - at - 3;
  if (length > 0xffff) throw new RangeError(`${name} token body is ${length} bytes; the limit is 65535`);
  w.patchU16le(at + 1, length);
}

// RETURNVALUE (0xAC): an output parameter or a UDF's return value. [MS-TDS] 2.2.7.19.
//   ParamOrdinal USHORT, ParamName B_VARCHAR, Status BYTE (0x01 output parameter, 0x02 UDF
//   return value), UserType (USHORT in TDS 7.1, ULONG from 7.2), Flags USHORT, TYPE_INFO,
//   Value TYPE_VARBYTE. No length prefix: measureReturnValue() finds the end.

import { ProtocolError } from '../errors.js';
import { COLUMN_FLAG } from './colmetadata.js';
import { Reader, type Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { TOKEN } from './token-codes.js';
import { type TypeInfo, NEED_MORE, measureTypeInfo, readTypeInfo, skipBVarchar, writeTypeInfo } from './type-info.js';
import { type Value, type ValueOptions, measureValue, readValue, writeValue } from './values.js';

export const RETURNVALUE_STATUS = {
  OUTPUT_PARAMETER: 0x01,
  UDF_RETURN_VALUE: 0x02,
} as const;

export interface ReturnValueToken {
  readonly kind: 'RETURNVALUE';
  readonly ordinal: number;
  readonly name: string;
  readonly status: number;
  readonly userType: number;
  readonly flags: number;
  readonly typeInfo: TypeInfo;
  readonly value: Value;
}

export function readReturnValue(r: Reader, ctx: TdsContext, opts: ValueOptions): ReturnValueToken {
  const ordinal = r.u16le('RETURNVALUE ParamOrdinal');
  const name = r.bVarchar('RETURNVALUE ParamName');
  const status = r.u8('RETURNVALUE Status');
  const userType = isTds72Plus(ctx) ? r.u32le('RETURNVALUE UserType') : r.u16le('RETURNVALUE UserType');
  const flagsAt = r.pos;
  const flags = r.u16le('RETURNVALUE Flags');
  if (flags & COLUMN_FLAG.ENCRYPTED) r.fail(`return value "${name}" is encrypted (not supported)`, flagsAt);
  const typeInfo = readTypeInfo(r);
  const value = readValue(r, typeInfo, opts);
  return { kind: 'RETURNVALUE', ordinal, name, status, userType, flags, typeInfo, value };
}

export function writeReturnValue(w: Writer, t: ReturnValueToken, ctx: TdsContext, opts: ValueOptions): void {
  if (t.flags & COLUMN_FLAG.ENCRYPTED) throw new RangeError('encrypted return values are not supported');
  w.u8(TOKEN.RETURNVALUE).u16le(t.ordinal, 'ParamOrdinal').bVarchar(t.name, 'ParamName').u8(t.status, 'RETURNVALUE Status');
  if (isTds72Plus(ctx)) w.u32le(t.userType, 'UserType');
  else w.u16le(t.userType, 'UserType');
  w.u16le(t.flags, 'RETURNVALUE Flags');
  writeTypeInfo(w, t.typeInfo);
  writeValue(w, t.typeInfo, t.value, opts);
}

/** End of the RETURNVALUE body at `pos` (after the token byte), or NEED_MORE. */
export function measureReturnValue(
  buf: Buffer,
  pos: number,
  end: number,
  ctx: TdsContext,
  opts: ValueOptions,
  origin: number,
): number {
  let p = pos + 2;
  p = skipBVarchar(buf, p, end);
  if (p < 0) return NEED_MORE;
  p += 1 + (isTds72Plus(ctx) ? 4 : 2);
  if (p + 2 > end) return NEED_MORE;
  if (buf.readUInt16LE(p) & COLUMN_FLAG.ENCRYPTED) throw new ProtocolError('encrypted return values are not supported', p - origin);
  p += 2;
  const typeAt = p;
  p = measureTypeInfo(buf, p, end, origin);
  if (p < 0) return NEED_MORE;
  // The value's layout depends on the TYPE_INFO: decode just that much to measure the value.
  const typeInfo = readTypeInfo(new Reader(buf, typeAt, p, origin));
  return measureValue(buf, p, end, typeInfo, opts, origin);
}

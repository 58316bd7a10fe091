// COLMETADATA (0x81): the columns of the result set that follows. [MS-TDS] 2.2.7.4.
//   Count USHORT (0xFFFF = NoMetaData: reuse the previous metadata, after fNoMetaData RPCs),
//   then per column: UserType (USHORT in TDS 7.1, ULONG from 7.2), Flags USHORT, TYPE_INFO,
//   TableName (TEXT/NTEXT/IMAGE only: TDS 7.2+ NumParts BYTE and US_VARCHAR parts, 7.1 one
//   US_VARCHAR), ColName B_VARCHAR.
// Always Encrypted metadata (CekTable, CryptoMetaData, fEncrypted) is refused: it only appears
// when the client negotiated COLUMNENCRYPTION, which warden does not relay.

import { ProtocolError } from '../errors.js';
import type { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';
import { TOKEN } from './token-codes.js';
import {
  type TypeInfo,
  NEED_MORE,
  hasTableName,
  measureTypeInfo,
  readTypeInfo,
  skipBVarchar,
  skipUsVarchar,
  writeTypeInfo,
} from './type-info.js';

export const COLUMN_FLAG = {
  NULLABLE: 0x0001,
  CASE_SENSITIVE: 0x0002,
  UPDATEABLE_MASK: 0x000c,
  IDENTITY: 0x0010,
  COMPUTED: 0x0020,
  FIXED_LEN_CLR_TYPE: 0x0100,
  SPARSE_COLUMN_SET: 0x0400,
  ENCRYPTED: 0x0800,
  HIDDEN: 0x2000,
  KEY: 0x4000,
  NULLABLE_UNKNOWN: 0x8000,
} as const;

export const NO_METADATA = 0xffff;

export interface ColumnMetadata {
  readonly userType: number;
  readonly flags: number;
  readonly typeInfo: TypeInfo;
  /** TEXT/NTEXT/IMAGE columns only: the table name parts. */
  readonly tableName?: readonly string[];
  readonly name: string;
}

export interface ColMetadataToken {
  readonly kind: 'COLMETADATA';
  /** null for NoMetaData (0xFFFF): the previous result's columns apply. */
  readonly columns: readonly ColumnMetadata[] | null;
}

export function readColMetadata(r: Reader, ctx: TdsContext): ColMetadataToken {
  const count = r.u16le('COLMETADATA Count');
  if (count === NO_METADATA) return { kind: 'COLMETADATA', columns: null };
  const columns: ColumnMetadata[] = [];
  for (let i = 0; i < count; i++) columns.push(readColumn(r, ctx, i));
  return { kind: 'COLMETADATA', columns };
}

function readColumn(r: Reader, ctx: TdsContext, index: number): ColumnMetadata {
  const userType = isTds72Plus(ctx) ? r.u32le('COLMETADATA UserType') : r.u16le('COLMETADATA UserType');
  const flagsAt = r.pos;
  const flags = r.u16le('COLMETADATA Flags');
  if (flags & COLUMN_FLAG.ENCRYPTED) r.fail(`column ${index} is encrypted (Always Encrypted is not supported)`, flagsAt);
  const typeInfo = readTypeInfo(r);
  let tableName: string[] | undefined;
  if (hasTableName(typeInfo.type)) {
    if (isTds72Plus(ctx)) {
      const parts = r.u8('COLMETADATA NumParts');
      tableName = [];
      for (let p = 0; p < parts; p++) tableName.push(r.usVarchar('COLMETADATA PartName'));
    } else {
      tableName = [r.usVarchar('COLMETADATA TableName')];
    }
  }
  const name = r.bVarchar('COLMETADATA ColName');
  return tableName ? { userType, flags, typeInfo, tableName, name } : { userType, flags, typeInfo, name };
}

export function writeColMetadata(w: Writer, t: ColMetadataToken, ctx: TdsContext): void {
  w.u8(TOKEN.COLMETADATA);
  if (t.columns === null) {
    w.u16le(NO_METADATA);
    return;
  }
  if (t.columns.length >= NO_METADATA) throw new RangeError(`COLMETADATA has ${t.columns.length} columns; the limit is 65534`);
  w.u16le(t.columns.length);
  for (const c of t.columns) {
    if (c.flags & COLUMN_FLAG.ENCRYPTED) throw new RangeError(`column "${c.name}": encrypted columns are not supported`);
    if (isTds72Plus(ctx)) w.u32le(c.userType, 'UserType');
    else w.u16le(c.userType, 'UserType');
    w.u16le(c.flags, 'COLMETADATA Flags');
    writeTypeInfo(w, c.typeInfo);
    if (hasTableName(c.typeInfo.type)) {
      const parts = c.tableName ?? [];
      if (isTds72Plus(ctx)) {
        w.u8(parts.length, 'NumParts');
        for (const p of parts) w.usVarchar(p, 'PartName');
      } else {
        if (parts.length > 1) throw new RangeError('TDS 7.1 table names have one part');
        w.usVarchar(parts[0] ?? '', 'TableName');
      }
    }
    w.bVarchar(c.name, 'ColName');
  }
}

/** End of the COLMETADATA body at `pos` (after the token byte), or NEED_MORE. */
export function measureColMetadata(buf: Buffer, pos: number, end: number, ctx: TdsContext, origin: number): number {
  if (pos + 2 > end) return NEED_MORE;
  const count = buf.readUInt16LE(pos);
  let p = pos + 2;
  if (count === NO_METADATA) return p;
  const userTypeSize = isTds72Plus(ctx) ? 4 : 2;
  for (let i = 0; i < count; i++) {
    p += userTypeSize;
    if (p + 2 > end) return NEED_MORE;
    if (buf.readUInt16LE(p) & COLUMN_FLAG.ENCRYPTED) {
      throw new ProtocolError(`column ${i} is encrypted (Always Encrypted is not supported)`, p - origin);
    }
    p += 2;
    const typeAt = p;
    p = measureTypeInfo(buf, p, end, origin);
    if (p < 0) return NEED_MORE;
    if (hasTableName(buf[typeAt]!)) {
      if (isTds72Plus(ctx)) {
        if (p >= end) return NEED_MORE;
        const parts = buf[p++]!;
        for (let k = 0; k < parts; k++) {
          p = skipUsVarchar(buf, p, end);
          if (p < 0) return NEED_MORE;
        }
      } else {
        p = skipUsVarchar(buf, p, end);
        if (p < 0) return NEED_MORE;
      }
    }
    p = skipBVarchar(buf, p, end);
    if (p < 0) return NEED_MORE;
  }
  return p;
}

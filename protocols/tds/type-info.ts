// TYPE_INFO: the data type of a column, parameter or return value. [MS-TDS] 2.2.5.4 (Data Type
// Definitions: 2.2.5.4.1 fixed-length, 2.2.5.4.2 variable-length, 2.2.5.4.3 partially length-
// prefixed (PLP) types) and 2.2.5.6 (TYPE_INFO rule).
//
//   fixed-length types: the type byte alone
//   BYTELEN types:      type, 1-byte length (DECIMALN/NUMERICN add precision and scale)
//   scale types:        TIMEN, DATETIME2N, DATETIMEOFFSETN: type, scale; DATEN: type alone
//   USHORTLEN types:    type, 2-byte max length (0xFFFF = MAX, sent as PLP), collation for chars
//   LONGLEN types:      TEXT/NTEXT (4-byte length, collation), IMAGE, SSVARIANT (4-byte length)
//   XML:                type, schema-present byte, [db, owning schema, collection]
//   UDT:                type, 2-byte max length, db, schema, type name, assembly name
//
// Every TYPE_INFO is validated on the way in (lengths, precision, scale): a malformed one is a
// ProtocolError before any value is read with it.

import { ProtocolError } from '../errors.js';
import { type Collation, COLLATION_LENGTH, readCollation, writeCollation } from './collation.js';
import type { Reader, Writer } from './cursor.js';

/** Data type codes. [MS-TDS] 2.2.5.4.1-2.2.5.4.3 */
export const DATA_TYPE = {
  // fixed-length
  NULL: 0x1f,
  INT1: 0x30,
  BIT: 0x32,
  INT2: 0x34,
  INT4: 0x38,
  DATETIM4: 0x3a,
  FLT4: 0x3b,
  MONEY: 0x3c,
  DATETIME: 0x3d,
  FLT8: 0x3e,
  MONEY4: 0x7a,
  INT8: 0x7f,
  // BYTELEN
  GUID: 0x24,
  INTN: 0x26,
  DECIMAL: 0x37,
  NUMERIC: 0x3f,
  BITN: 0x68,
  DECIMALN: 0x6a,
  NUMERICN: 0x6c,
  FLTN: 0x6d,
  MONEYN: 0x6e,
  DATETIMN: 0x6f,
  DATEN: 0x28,
  TIMEN: 0x29,
  DATETIME2N: 0x2a,
  DATETIMEOFFSETN: 0x2b,
  CHAR: 0x2f,
  VARCHAR: 0x27,
  BINARY: 0x2d,
  VARBINARY: 0x25,
  // USHORTLEN
  BIGVARBIN: 0xa5,
  BIGVARCHR: 0xa7,
  BIGBINARY: 0xad,
  BIGCHAR: 0xaf,
  NVARCHAR: 0xe7,
  NCHAR: 0xef,
  UDT: 0xf0,
  // LONGLEN
  TEXT: 0x23,
  IMAGE: 0x22,
  NTEXT: 0x63,
  SSVARIANT: 0x62,
  XML: 0xf1,
} as const;
export type DataType = (typeof DATA_TYPE)[keyof typeof DATA_TYPE];

/** The USHORTLEN max length that marks a MAX type, whose values are sent as PLP. */
export const MAX_LENGTH_PLP = 0xffff;

/** Byte size of each fixed-length type. */
export const FIXED_SIZE: Readonly<Record<number, number>> = {
  [DATA_TYPE.NULL]: 0,
  [DATA_TYPE.INT1]: 1,
  [DATA_TYPE.BIT]: 1,
  [DATA_TYPE.INT2]: 2,
  [DATA_TYPE.INT4]: 4,
  [DATA_TYPE.DATETIM4]: 4,
  [DATA_TYPE.FLT4]: 4,
  [DATA_TYPE.MONEY]: 8,
  [DATA_TYPE.DATETIME]: 8,
  [DATA_TYPE.FLT8]: 8,
  [DATA_TYPE.MONEY4]: 4,
  [DATA_TYPE.INT8]: 8,
};

export interface XmlSchemaInfo {
  readonly dbName: string;
  readonly owningSchema: string;
  readonly collection: string;
}

export interface UdtInfo {
  readonly dbName: string;
  readonly schemaName: string;
  readonly typeName: string;
  readonly assemblyName: string;
}

export interface TypeInfo {
  readonly type: number;
  /** The TYPE_INFO length field: declared size in bytes (0xFFFF = MAX for USHORTLEN types). */
  readonly length?: number;
  readonly precision?: number;
  readonly scale?: number;
  readonly collation?: Collation;
  /** XML: present when the value is bound to a schema collection. */
  readonly xmlSchema?: XmlSchemaInfo;
  readonly udt?: UdtInfo;
}

/** How a type's values are laid out on the wire. */
export type ValueLayout =
  | 'fixed'
  | 'bytelen'
  | 'ushortlen'
  | 'longlen-text'
  | 'variant'
  | 'plp';

const BYTELEN: ReadonlySet<number> = new Set([
  DATA_TYPE.GUID,
  DATA_TYPE.INTN,
  DATA_TYPE.DECIMAL,
  DATA_TYPE.NUMERIC,
  DATA_TYPE.BITN,
  DATA_TYPE.DECIMALN,
  DATA_TYPE.NUMERICN,
  DATA_TYPE.FLTN,
  DATA_TYPE.MONEYN,
  DATA_TYPE.DATETIMN,
  DATA_TYPE.DATEN,
  DATA_TYPE.TIMEN,
  DATA_TYPE.DATETIME2N,
  DATA_TYPE.DATETIMEOFFSETN,
  DATA_TYPE.CHAR,
  DATA_TYPE.VARCHAR,
  DATA_TYPE.BINARY,
  DATA_TYPE.VARBINARY,
]);

const USHORTLEN: ReadonlySet<number> = new Set([
  DATA_TYPE.BIGVARBIN,
  DATA_TYPE.BIGVARCHR,
  DATA_TYPE.BIGBINARY,
  DATA_TYPE.BIGCHAR,
  DATA_TYPE.NVARCHAR,
  DATA_TYPE.NCHAR,
]);

/** Types whose TYPE_INFO carries a collation. */
export const HAS_COLLATION: ReadonlySet<number> = new Set([
  DATA_TYPE.BIGCHAR,
  DATA_TYPE.BIGVARCHR,
  DATA_TYPE.NCHAR,
  DATA_TYPE.NVARCHAR,
  DATA_TYPE.TEXT,
  DATA_TYPE.NTEXT,
]);

const SCALED: ReadonlySet<number> = new Set([DATA_TYPE.TIMEN, DATA_TYPE.DATETIME2N, DATA_TYPE.DATETIMEOFFSETN]);

export function isKnownType(type: number): boolean {
  return (
    type in FIXED_SIZE ||
    BYTELEN.has(type) ||
    USHORTLEN.has(type) ||
    type === DATA_TYPE.TEXT ||
    type === DATA_TYPE.NTEXT ||
    type === DATA_TYPE.IMAGE ||
    type === DATA_TYPE.SSVARIANT ||
    type === DATA_TYPE.XML ||
    type === DATA_TYPE.UDT
  );
}

export function valueLayout(ti: TypeInfo): ValueLayout {
  const t = ti.type;
  if (t in FIXED_SIZE) return 'fixed';
  if (BYTELEN.has(t)) return 'bytelen';
  if (USHORTLEN.has(t)) return ti.length === MAX_LENGTH_PLP ? 'plp' : 'ushortlen';
  if (t === DATA_TYPE.XML || t === DATA_TYPE.UDT) return 'plp';
  if (t === DATA_TYPE.SSVARIANT) return 'variant';
  return 'longlen-text';
}

/** Text and image columns also carry a table name in COLMETADATA. [MS-TDS] 2.2.7.4 */
export function hasTableName(type: number): boolean {
  return type === DATA_TYPE.TEXT || type === DATA_TYPE.NTEXT || type === DATA_TYPE.IMAGE;
}

/** Value length in bytes of TIMEN/DATETIME2N/DATETIMEOFFSETN time parts for `scale`. */
export function timeLength(scale: number): number {
  return scale <= 2 ? 3 : scale <= 4 ? 4 : 5;
}

/** DECIMALN/NUMERICN value length (sign byte included) SQL Server uses for `precision`. */
export function decimalLengthForPrecision(precision: number): number {
  return precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17;
}

const NAME = new Map<number, string>(Object.entries(DATA_TYPE).map(([k, v]) => [v, k]));

/** The spec name of a type code, e.g. "NVARCHAR" for 0xE7. */
export function typeName(type: number): string {
  return NAME.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export function readTypeInfo(r: Reader): TypeInfo {
  const at = r.pos;
  const type = r.u8('TYPE_INFO type');
  const name = typeName(type);
  if (type in FIXED_SIZE) return { type };
  if (type === DATA_TYPE.DATEN) return { type };
  if (SCALED.has(type)) {
    const scale = r.u8(`${name} scale`);
    if (scale > 7) r.fail(`${name} scale ${scale} is above 7`, at + 1);
    return { type, scale };
  }
  if (BYTELEN.has(type)) {
    const length = r.u8(`${name} length`);
    checkByteLen(r, type, length, at + 1);
    if (isDecimalType(type)) {
      const precision = r.u8(`${name} precision`);
      const scale = r.u8(`${name} scale`);
      if (precision < 1 || precision > 38) r.fail(`${name} precision ${precision} is outside 1..38`, at + 2);
      if (scale > precision) r.fail(`${name} scale ${scale} exceeds precision ${precision}`, at + 3);
      return { type, length, precision, scale };
    }
    return { type, length };
  }
  if (USHORTLEN.has(type)) {
    const length = r.u16le(`${name} max length`);
    if (length === MAX_LENGTH_PLP && (type === DATA_TYPE.BIGCHAR || type === DATA_TYPE.NCHAR || type === DATA_TYPE.BIGBINARY)) {
      r.fail(`${name} cannot be a MAX type`, at + 1);
    }
    if ((type === DATA_TYPE.NCHAR || type === DATA_TYPE.NVARCHAR) && length !== MAX_LENGTH_PLP && length % 2 !== 0) {
      r.fail(`${name} max length ${length} is odd`, at + 1);
    }
    if (HAS_COLLATION.has(type)) return { type, length, collation: readCollation(r, `${name} collation`) };
    return { type, length };
  }
  switch (type) {
    case DATA_TYPE.TEXT:
    case DATA_TYPE.NTEXT:
      return { type, length: r.u32le(`${name} length`), collation: readCollation(r, `${name} collation`) };
    case DATA_TYPE.IMAGE:
    case DATA_TYPE.SSVARIANT:
      return { type, length: r.u32le(`${name} length`) };
    case DATA_TYPE.XML: {
      const present = r.u8('XML schema present');
      if (present === 0) return { type };
      if (present !== 1) r.fail(`XML schema-present byte is ${present}, expected 0 or 1`, at + 1);
      return {
        type,
        xmlSchema: {
          dbName: r.bVarchar('XML schema database'),
          owningSchema: r.bVarchar('XML owning schema'),
          collection: r.usVarchar('XML schema collection'),
        },
      };
    }
    case DATA_TYPE.UDT:
      return {
        type,
        length: r.u16le('UDT max length'),
        udt: {
          dbName: r.bVarchar('UDT database'),
          schemaName: r.bVarchar('UDT schema'),
          typeName: r.bVarchar('UDT type name'),
          assemblyName: r.usVarchar('UDT assembly name'),
        },
      };
    default:
      return r.fail(`unknown data type 0x${type.toString(16).padStart(2, '0')}`, at);
  }
}

function checkByteLen(r: Reader, type: number, length: number, at: number): void {
  const allowed: Readonly<Record<number, readonly number[]>> = {
    [DATA_TYPE.INTN]: [1, 2, 4, 8],
    [DATA_TYPE.BITN]: [1],
    [DATA_TYPE.FLTN]: [4, 8],
    [DATA_TYPE.MONEYN]: [4, 8],
    [DATA_TYPE.DATETIMN]: [4, 8],
    [DATA_TYPE.GUID]: [16],
    [DATA_TYPE.DECIMALN]: [5, 9, 13, 17],
    [DATA_TYPE.NUMERICN]: [5, 9, 13, 17],
    [DATA_TYPE.DECIMAL]: [5, 9, 13, 17],
    [DATA_TYPE.NUMERIC]: [5, 9, 13, 17],
  };
  const ok = allowed[type];
  if (ok && !ok.includes(length)) r.fail(`${typeName(type)} length ${length} is not one of ${ok.join(', ')}`, at);
}

/** Checks a TypeInfo built by hand before it is encoded; throws RangeError naming the problem. */
export function validateTypeInfo(ti: TypeInfo): void {
  if (!isKnownType(ti.type)) throw new RangeError(`unknown data type 0x${ti.type.toString(16)}`);
  const t = ti.type;
  const name = typeName(t);
  const lengthless = t in FIXED_SIZE || t === DATA_TYPE.DATEN || SCALED.has(t) || t === DATA_TYPE.XML;
  if (!lengthless && ti.length === undefined) throw new RangeError(`${name} TYPE_INFO needs a length`);
  if (SCALED.has(t) && (ti.scale === undefined || ti.scale < 0 || ti.scale > 7)) {
    throw new RangeError(`${name} TYPE_INFO needs a scale in 0..7`);
  }
  if (isDecimalType(t)) {
    const { precision: p, scale: s } = ti;
    if (p === undefined || s === undefined || p < 1 || p > 38 || s < 0 || s > p) {
      throw new RangeError(`${name} TYPE_INFO needs precision 1..38 and scale 0..precision`);
    }
  }
  if (HAS_COLLATION.has(t) && !ti.collation) throw new RangeError(`${name} TYPE_INFO needs a collation`);
}

export function isDecimalType(type: number): boolean {
  return (
    type === DATA_TYPE.DECIMALN || type === DATA_TYPE.NUMERICN || type === DATA_TYPE.DECIMAL || type === DATA_TYPE.NUMERIC
  );
}

export function writeTypeInfo(w: Writer, ti: TypeInfo): void {
  validateTypeInfo(ti);
  const t = ti.type;
  const name = typeName(t);
  w.u8(t);
  if (t in FIXED_SIZE || t === DATA_TYPE.DATEN) return;
  if (SCALED.has(t)) {
    w.u8(ti.scale!, `${name} scale`);
    return;
  }
  if (BYTELEN.has(t)) {
    w.u8(ti.length!, `${name} length`);
    if (isDecimalType(t)) {
      w.u8(ti.precision!, `${name} precision`).u8(ti.scale!, `${name} scale`);
    }
    return;
  }
  if (USHORTLEN.has(t)) {
    w.u16le(ti.length!, `${name} max length`);
    if (ti.collation) writeCollation(w, ti.collation);
    return;
  }
  switch (t) {
    case DATA_TYPE.TEXT:
    case DATA_TYPE.NTEXT:
      w.u32le(ti.length!, `${name} length`);
      writeCollation(w, ti.collation!);
      return;
    case DATA_TYPE.IMAGE:
    case DATA_TYPE.SSVARIANT:
      w.u32le(ti.length!, `${name} length`);
      return;
    case DATA_TYPE.XML:
      if (!ti.xmlSchema) {
        w.u8(0);
        return;
      }
      w.u8(1).bVarchar(ti.xmlSchema.dbName).bVarchar(ti.xmlSchema.owningSchema).usVarchar(ti.xmlSchema.collection);
      return;
    case DATA_TYPE.UDT: {
      if (!ti.udt) throw new RangeError('UDT TYPE_INFO needs its type names');
      w.u16le(ti.length!, 'UDT max length');
      w.bVarchar(ti.udt.dbName).bVarchar(ti.udt.schemaName).bVarchar(ti.udt.typeName).usVarchar(ti.udt.assemblyName);
      return;
    }
  }
}

/** NEED_MORE: the bytes so far end inside the structure being measured. */
export const NEED_MORE = -1;

/**
 * End offset of the TYPE_INFO at `pos`, or NEED_MORE. Throws ProtocolError for an unknown type.
 * Only used to find token boundaries; readTypeInfo() does the validation.
 */
export function measureTypeInfo(buf: Buffer, pos: number, end: number, origin: number): number {
  if (pos >= end) return NEED_MORE;
  const type = buf[pos]!;
  let p = pos + 1;
  if (type in FIXED_SIZE || type === DATA_TYPE.DATEN) return p;
  if (SCALED.has(type)) return p + 1 <= end ? p + 1 : NEED_MORE;
  if (BYTELEN.has(type)) {
    p += isDecimalType(type) ? 3 : 1;
    return p <= end ? p : NEED_MORE;
  }
  if (USHORTLEN.has(type)) {
    p += 2 + (HAS_COLLATION.has(type) ? COLLATION_LENGTH : 0);
    return p <= end ? p : NEED_MORE;
  }
  switch (type) {
    case DATA_TYPE.TEXT:
    case DATA_TYPE.NTEXT:
      p += 4 + COLLATION_LENGTH;
      return p <= end ? p : NEED_MORE;
    case DATA_TYPE.IMAGE:
    case DATA_TYPE.SSVARIANT:
      p += 4;
      return p <= end ? p : NEED_MORE;
    case DATA_TYPE.XML: {
      if (p >= end) return NEED_MORE;
      if (buf[p++] === 0) return p;
      p = skipBVarchar(buf, p, end);
      if (p < 0) return NEED_MORE;
      p = skipBVarchar(buf, p, end);
      if (p < 0) return NEED_MORE;
      return skipUsVarchar(buf, p, end);
    }
    case DATA_TYPE.UDT: {
      p += 2;
      for (let i = 0; i < 3; i++) {
        p = skipBVarchar(buf, p, end);
        if (p < 0) return NEED_MORE;
      }
      return skipUsVarchar(buf, p, end);
    }
    default:
      throw new ProtocolError(`unknown data type 0x${type.toString(16).padStart(2, '0')}`, pos - origin);
  }
}

/** End of a B_VARCHAR at `p`, or NEED_MORE. */
export function skipBVarchar(buf: Buffer, p: number, end: number): number {
  if (p >= end) return NEED_MORE;
  const q = p + 1 + buf[p]! * 2;
  return q <= end ? q : NEED_MORE;
}

/** End of a US_VARCHAR at `p`, or NEED_MORE. */
export function skipUsVarchar(buf: Buffer, p: number, end: number): number {
  if (p + 2 > end) return NEED_MORE;
  const q = p + 2 + buf.readUInt16LE(p) * 2;
  return q <= end ? q : NEED_MORE;
}

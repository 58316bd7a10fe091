// What the masking engine knows about PostgreSQL types: which built-in type OIDs it can read and
// write in text and binary format, their widths (char(n), varchar(n)), and arrays of them. Types
// it does not know by OID are looked up in the target's catalog (pg_type): string-category types
// such as citext are text; everything else is opaque (a masked value of it becomes NULL).

/** Type OIDs (pg_type.oid, fixed for built-in types). */
export const TypeOid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
  record: 2249,
} as const;

/** Array type OID → element type OID, for the element types above. */
export const ArrayOf: Readonly<Record<number, number>> = {
  1000: TypeOid.bool,
  1001: TypeOid.bytea,
  1002: TypeOid.char,
  1003: TypeOid.name,
  1005: TypeOid.int2,
  1007: TypeOid.int4,
  1016: TypeOid.int8,
  1009: TypeOid.text,
  1014: TypeOid.bpchar,
  1015: TypeOid.varchar,
  1021: TypeOid.float4,
  1022: TypeOid.float8,
  1182: TypeOid.date,
  1115: TypeOid.timestamp,
  1185: TypeOid.timestamptz,
  1231: TypeOid.numeric,
  2951: TypeOid.uuid,
  199: TypeOid.json,
  3807: TypeOid.jsonb,
};

export type ScalarKind =
  | 'text' | 'int2' | 'int4' | 'int8' | 'numeric' | 'float4' | 'float8' | 'bool'
  | 'date' | 'timestamp' | 'timestamptz' | 'uuid' | 'bytea' | 'json' | 'jsonb' | 'opaque';

const KIND_BY_OID: Readonly<Record<number, ScalarKind>> = {
  [TypeOid.bool]: 'bool',
  [TypeOid.bytea]: 'bytea',
  [TypeOid.char]: 'text',
  [TypeOid.name]: 'text',
  [TypeOid.int8]: 'int8',
  [TypeOid.int2]: 'int2',
  [TypeOid.int4]: 'int4',
  [TypeOid.text]: 'text',
  [TypeOid.json]: 'json',
  [TypeOid.float4]: 'float4',
  [TypeOid.float8]: 'float8',
  [TypeOid.unknown]: 'text',
  [TypeOid.bpchar]: 'text',
  [TypeOid.varchar]: 'text',
  [TypeOid.date]: 'date',
  [TypeOid.timestamp]: 'timestamp',
  [TypeOid.timestamptz]: 'timestamptz',
  [TypeOid.numeric]: 'numeric',
  [TypeOid.uuid]: 'uuid',
  [TypeOid.jsonb]: 'jsonb',
};

/** pg_type facts for a type the engine does not know by OID (from the catalog). */
export interface CatalogType {
  /** typcategory: 'S' string, 'A' array, 'E' enum, 'N' numeric, … */
  category: string;
  /** typelem of an array type, else 0. */
  element: number;
  /** typbasetype of a domain, else 0. */
  base: number;
}

export type TypeLookup = (oid: number) => CatalogType | undefined;

/** How values of one column are read and written. */
export interface ValueType {
  readonly oid: number;
  readonly kind: ScalarKind | 'array';
  /** Arrays: the element type. */
  readonly element?: ValueType;
  /** char(n) and "char": values are exactly this many characters (blank-padded). */
  readonly fixedChars?: number;
  /** varchar(n): at most this many characters. */
  readonly maxChars?: number;
  /** numeric(p, s). */
  readonly precision?: number;
  readonly scale?: number;
}

/** PostgreSQL adds this to char/varchar length modifiers (VARHDRSZ). */
const VARHDRSZ = 4;
const MAX_DOMAIN_DEPTH = 8;

/** The value type of a column with type `oid` and modifier `typmod` (RowDescription fields). */
export function valueType(oid: number, typmod: number, lookup?: TypeLookup, depth = 0): ValueType {
  const kind = KIND_BY_OID[oid];
  if (kind !== undefined) {
    if (oid === TypeOid.char) return { oid, kind, fixedChars: 1 };
    if (oid === TypeOid.bpchar && typmod >= VARHDRSZ) return { oid, kind, fixedChars: typmod - VARHDRSZ };
    if (oid === TypeOid.varchar && typmod >= VARHDRSZ) return { oid, kind, maxChars: typmod - VARHDRSZ };
    if (oid === TypeOid.numeric && typmod >= VARHDRSZ) {
      const t = typmod - VARHDRSZ;
      return { oid, kind, precision: (t >> 16) & 0xffff, scale: ((t & 0x7ff) ^ 1024) - 1024 };
    }
    return { oid, kind };
  }
  const elem = ArrayOf[oid];
  if (elem !== undefined) return { oid, kind: 'array', element: valueType(elem, typmod, lookup, depth + 1) };
  const info = lookup?.(oid);
  if (info && depth < MAX_DOMAIN_DEPTH) {
    if (info.base !== 0) return { ...valueType(info.base, typmod, lookup, depth + 1), oid };
    if (info.category === 'A' && info.element !== 0) return { oid, kind: 'array', element: valueType(info.element, -1, lookup, depth + 1) };
    // citext and other string-category types read and write as text in both formats.
    if (info.category === 'S') return { oid, kind: 'text' };
  }
  return { oid, kind: 'opaque' };
}

/** True when values of this type are text a content classifier can scan. */
export function isTextual(t: ValueType): boolean {
  if (t.kind === 'text' || t.kind === 'json' || t.kind === 'jsonb') return true;
  return t.kind === 'array' && t.element !== undefined && isTextual(t.element);
}

// Built-in PostgreSQL type OIDs warden looks at (pg_type.dat), and their names for transcripts.
export const TypeOid = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const NAMES = new Map<number, string>(Object.entries(TypeOid).map(([k, v]) => [v, k]));

export function typeName(oid: number): string {
  if (oid === 0) return 'unknown';
  return NAMES.get(oid) ?? `oid:${oid}`;
}

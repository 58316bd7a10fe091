// Text renderings of PostgreSQL binary-format values, written from the type send/recv functions
// (src/backend/utils/adt/*.c: int4send, numeric_send, date_send, timestamp_send, uuid_send,
// float8send, boolsend, byteasend), so a binary DataRow field can be compared with the text the
// server sends for the same value (DateStyle ISO, TimeZone UTC, extra_float_digits ≥ 1).

/** Type OIDs (pg_type.oid) the fixtures use. */
export const TypeOid = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
} as const;

const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NBASE_DIGITS = 4;
/** PostgreSQL's epoch for date and timestamp values: 2000-01-01 00:00:00 UTC. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const DAY_MS = 86_400_000;

function numericText(b: Buffer): string {
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readInt16BE(6);
  if (sign === NUMERIC_NAN) return 'NaN';
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(b.readInt16BE(8 + 2 * i));
  let int = '';
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digits[i] ?? 0) : String(digits[i] ?? 0).padStart(NBASE_DIGITS, '0');
  if (int === '') int = '0';
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i++) {
    frac += i < 0 ? '0000' : String(digits[i] ?? 0).padStart(NBASE_DIGITS, '0');
  }
  const text = dscale > 0 ? `${int}.${frac.slice(0, dscale)}` : int;
  return sign === NUMERIC_NEG ? `-${text}` : text;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function dateText(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

function timestampText(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const fracMicros = Number(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const d = new Date(PG_EPOCH_MS + ms);
  const base = `${dateText(d.getTime())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return fracMicros ? `${base}.${String(fracMicros).padStart(6, '0').replace(/0+$/, '')}` : base;
}

/** The text PostgreSQL would send for this binary value of type `oid`. */
export function binaryToText(oid: number, b: Buffer): string {
  switch (oid) {
    case TypeOid.bool:
      return b[0] ? 't' : 'f';
    case TypeOid.bytea:
      return `\\x${b.toString('hex')}`;
    case TypeOid.int2:
      return String(b.readInt16BE(0));
    case TypeOid.int4:
      return String(b.readInt32BE(0));
    case TypeOid.int8:
      return String(b.readBigInt64BE(0));
    case TypeOid.float8:
      return String(b.readDoubleBE(0));
    case TypeOid.numeric:
      return numericText(b);
    case TypeOid.date:
      return dateText(PG_EPOCH_MS + b.readInt32BE(0) * DAY_MS);
    case TypeOid.timestamp:
      return timestampText(b.readBigInt64BE(0));
    case TypeOid.timestamptz:
      return `${timestampText(b.readBigInt64BE(0))}+00`;
    case TypeOid.uuid: {
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case TypeOid.text:
    case TypeOid.varchar:
    case TypeOid.bpchar:
      return b.toString('utf8');
    default:
      throw new Error(`no binary rendering for type ${oid}`);
  }
}

// hash: a keyed deterministic hash (HMAC-SHA-256) shaped for the column's type, so it still
// decodes as that type: hex text for text (exactly n characters for char(n)), a non-negative
// integer for int2/int4/int8 and floats, an integer with the column's scale for numeric(p, s),
// a version-8 UUID for uuid, 32 bytes for bytea, a JSON string for json/jsonb. Other types
// (dates, booleans, …) cannot hold a hash: the caller redacts.
import type { Masked, ScalarType } from './types.js';
import { hmac } from './keyed.js';

export interface HashOptions {
  key: Uint8Array;
  /** Hex characters for text values. */
  length: number;
}

const MOD = { int2: 1n << 15n, int4: 1n << 31n, int8: 1n << 63n, float4: 1n << 24n, float8: 1n << 53n } as const;
const DEFAULT_NUMERIC_DIGITS = 15;

/** The input that is hashed: char(n) padding is not part of the value (PostgreSQL compares without it). */
function canonical(value: string, t: ScalarType): string {
  if (t.type.fixedChars !== undefined) return value.replace(/ +$/, '');
  if (t.kind === 'uuid') return value.toLowerCase();
  return value;
}

export function hashValue(value: string, t: ScalarType, o: HashOptions): Masked {
  const d = hmac(o.key, canonical(value, t));
  const big = (): bigint => d.readBigUInt64BE(0);
  switch (t.kind) {
    case 'text': {
      const width = t.type.fixedChars ?? Math.min(o.length, t.type.maxChars ?? o.length);
      return d.toString('hex').slice(0, width);
    }
    case 'int2':
    case 'int4':
    case 'int8':
    case 'float4':
    case 'float8':
      return String(big() % MOD[t.kind]);
    case 'numeric': {
      const scale = Math.max(0, t.type.scale ?? 0);
      const intDigits = t.type.precision !== undefined ? Math.min(DEFAULT_NUMERIC_DIGITS, t.type.precision - scale) : DEFAULT_NUMERIC_DIGITS;
      if (intDigits <= 0) return scale > 0 ? `0.${'0'.repeat(scale)}` : '0';
      const int = big() % 10n ** BigInt(intDigits);
      return scale > 0 ? `${int}.${'0'.repeat(scale)}` : String(int);
    }
    case 'uuid': {
      const b = Buffer.from(d.subarray(0, 16));
      b[6] = ((b[6] as number) & 0x0f) | 0x80; // version 8 (custom)
      b[8] = ((b[8] as number) & 0x3f) | 0x80; // RFC 4122 variant
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case 'bytea':
      return `\\x${d.toString('hex')}`;
    case 'json':
    case 'jsonb':
      return JSON.stringify(d.toString('hex').slice(0, o.length));
    default:
      return undefined;
  }
}

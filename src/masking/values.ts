// Reads and writes one column value of a scalar type as its "logical text" (the text format
// PostgreSQL itself would send, DateStyle ISO), in either wire format. Binary layouts follow the
// type send/recv functions (src/backend/utils/adt/*.c: int4send, float8send, numeric_send,
// date_send, timestamp_send, uuid_send, byteasend, jsonb_send). A strategy masks the logical
// text; the result is written back in the column's format, so it decodes as the column's type.
import {
  civilFromPgDays,
  DATE_NINF,
  DATE_PINF,
  isoDate,
  parseIsoDateTime,
  parseTime,
  parseZone,
  pgDaysFromCivil,
  splitTimestamp,
  timeText,
  TS_NINF,
  TS_PINF,
  USECS_PER_DAY,
} from './dates.js';
import type { ScalarKind } from './pg-types.js';

export const Format = { text: 0, binary: 1 } as const;

const JSONB_VERSION = 1;
const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;
const NBASE = 10000;
const DEC_DIGITS = 4;

/** Decodes a binary value to its logical text; undefined when the bytes are not a value of the kind. */
export function binaryToText(kind: ScalarKind, b: Buffer): string | undefined {
  switch (kind) {
    case 'text':
    case 'json':
      return b.toString('utf8');
    case 'jsonb':
      return b.length >= 1 && b[0] === JSONB_VERSION ? b.toString('utf8', 1) : undefined;
    case 'int2':
      return b.length === 2 ? String(b.readInt16BE(0)) : undefined;
    case 'int4':
      return b.length === 4 ? String(b.readInt32BE(0)) : undefined;
    case 'int8':
      return b.length === 8 ? String(b.readBigInt64BE(0)) : undefined;
    case 'float4':
      return b.length === 4 ? floatText(b.readFloatBE(0)) : undefined;
    case 'float8':
      return b.length === 8 ? floatText(b.readDoubleBE(0)) : undefined;
    case 'bool':
      return b.length === 1 ? (b[0] ? 't' : 'f') : undefined;
    case 'uuid':
      return b.length === 16 ? uuidText(b) : undefined;
    case 'bytea':
      return `\\x${b.toString('hex')}`;
    case 'numeric':
      return numericText(b);
    case 'date': {
      if (b.length !== 4) return undefined;
      const d = b.readInt32BE(0);
      if (d === DATE_PINF) return 'infinity';
      if (d === DATE_NINF) return '-infinity';
      return isoDate(civilFromPgDays(d));
    }
    case 'timestamp':
    case 'timestamptz': {
      if (b.length !== 8) return undefined;
      const us = b.readBigInt64BE(0);
      if (us === TS_PINF) return 'infinity';
      if (us === TS_NINF) return '-infinity';
      const { civil, timeUs } = splitTimestamp(us);
      const date = isoDate(civil);
      const bc = date.endsWith(' BC');
      const text = `${bc ? date.slice(0, -3) : date} ${timeText(timeUs)}${kind === 'timestamptz' ? '+00' : ''}`;
      return bc ? `${text} BC` : text;
    }
    case 'opaque':
      return undefined;
  }
}

/** Encodes logical text in the binary format of the kind; undefined when the text is not a valid value. */
export function textToBinary(kind: ScalarKind, text: string): Buffer | undefined {
  switch (kind) {
    case 'text':
    case 'json':
      return Buffer.from(text, 'utf8');
    case 'jsonb': {
      const body = Buffer.from(text, 'utf8');
      const out = Buffer.allocUnsafe(body.length + 1);
      out[0] = JSONB_VERSION;
      body.copy(out, 1);
      return out;
    }
    case 'int2':
    case 'int4':
    case 'int8':
      return intBinary(kind, text);
    case 'float4':
    case 'float8': {
      const n = parseFloatText(text);
      if (n === undefined) return undefined;
      const out = Buffer.allocUnsafe(kind === 'float4' ? 4 : 8);
      if (kind === 'float4') out.writeFloatBE(n, 0);
      else out.writeDoubleBE(n, 0);
      return out;
    }
    case 'bool':
      return text === 't' || text === 'f' ? Buffer.from([text === 't' ? 1 : 0]) : undefined;
    case 'uuid': {
      const hex = text.replace(/-/g, '');
      return /^[0-9a-fA-F]{32}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
    }
    case 'bytea':
      return byteaFromText(text);
    case 'numeric':
      return numericBinary(text);
    case 'date': {
      if (text === 'infinity' || text === '-infinity') return int32(text === 'infinity' ? DATE_PINF : DATE_NINF);
      const p = parseIsoDateTime(text);
      return p && p.time === undefined && p.zone === undefined ? int32(pgDaysFromCivil(p.civil)) : undefined;
    }
    case 'timestamp':
    case 'timestamptz': {
      const out = Buffer.allocUnsafe(8);
      if (text === 'infinity' || text === '-infinity') {
        out.writeBigInt64BE(text === 'infinity' ? TS_PINF : TS_NINF, 0);
        return out;
      }
      const p = parseIsoDateTime(text);
      if (!p) return undefined;
      const t = p.time === undefined ? 0n : parseTime(p.time);
      if (t === undefined) return undefined;
      let us = BigInt(pgDaysFromCivil(p.civil)) * USECS_PER_DAY + t;
      if (kind === 'timestamptz') {
        const z = p.zone === undefined ? 0 : parseZone(p.zone);
        if (z === undefined) return undefined;
        us -= BigInt(z) * 1_000_000n;
      } else if (p.zone !== undefined) {
        return undefined;
      }
      out.writeBigInt64BE(us, 0);
      return out;
    }
    case 'opaque':
      return undefined;
  }
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

const INT_LIMITS = {
  int2: [-32768n, 32767n, 2],
  int4: [-2147483648n, 2147483647n, 4],
  int8: [-9223372036854775808n, 9223372036854775807n, 8],
} as const;

function intBinary(kind: 'int2' | 'int4' | 'int8', text: string): Buffer | undefined {
  if (!/^[+-]?\d{1,20}$/.test(text.trim())) return undefined;
  const v = BigInt(text.trim());
  const [min, max, size] = INT_LIMITS[kind];
  if (v < min || v > max) return undefined;
  const out = Buffer.allocUnsafe(size);
  if (size === 2) out.writeInt16BE(Number(v), 0);
  else if (size === 4) out.writeInt32BE(Number(v), 0);
  else out.writeBigInt64BE(v, 0);
  return out;
}

/** Whether `text` is a valid value of an integer kind. */
export function intInRange(kind: 'int2' | 'int4' | 'int8', text: string): boolean {
  return intBinary(kind, text) !== undefined;
}

export function intMax(kind: 'int2' | 'int4' | 'int8'): bigint {
  return INT_LIMITS[kind][1];
}

function floatText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  return String(n);
}

function parseFloatText(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function uuidText(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** bytea text input: hex (`\x…`) or escape format. */
export function byteaFromText(text: string): Buffer | undefined {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    return /^(?:[0-9a-fA-F]{2})*$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  }
  // Escape format (bytea_output = escape): printable ASCII as is, `\\` and `\nnn` octal.
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e) return undefined;
    if (c !== 0x5c) {
      out.push(c);
    } else if (text[i + 1] === '\\') {
      out.push(0x5c);
      i++;
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      out.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      return undefined;
    }
  }
  return Buffer.from(out);
}

// numeric ------------------------------------------------------------------------------------

function numericText(b: Buffer): string | undefined {
  if (b.length < 8) return undefined;
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readInt16BE(6);
  if (ndigits < 0 || dscale < 0 || b.length !== 8 + 2 * ndigits) return undefined;
  if (sign === NUMERIC_NAN) return 'NaN';
  if (sign === NUMERIC_PINF) return 'Infinity';
  if (sign === NUMERIC_NINF) return '-Infinity';
  if (sign !== NUMERIC_POS && sign !== NUMERIC_NEG) return undefined;
  const digit = (i: number): number => (i >= 0 && i < ndigits ? b.readInt16BE(8 + 2 * i) : 0);
  for (let i = 0; i < ndigits; i++) if (digit(i) < 0 || digit(i) >= NBASE) return undefined;
  let int = '';
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(i)) : String(digit(i)).padStart(DEC_DIGITS, '0');
  if (int === '') int = '0';
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i++) frac += String(digit(i)).padStart(DEC_DIGITS, '0');
  const text = dscale > 0 ? `${int}.${frac.slice(0, dscale)}` : int;
  return sign === NUMERIC_NEG ? `-${text}` : text;
}

function numericBinary(text: string): Buffer | undefined {
  const special = { NaN: NUMERIC_NAN, Infinity: NUMERIC_PINF, '-Infinity': NUMERIC_NINF } as Record<string, number>;
  const s = special[text];
  if (s !== undefined) {
    const out = Buffer.alloc(8);
    out.writeUInt16BE(s, 4);
    return out;
  }
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const neg = m[1] === '-';
  const intDigits = (m[2] ?? '').replace(/^0+/, '');
  const fracDigits = m[3] ?? '';
  const dscale = fracDigits.length;
  // Align to base-10000 groups around the decimal point.
  const intPadded = intDigits.padStart(Math.ceil(intDigits.length / DEC_DIGITS) * DEC_DIGITS, '0');
  const fracPadded = fracDigits.padEnd(Math.ceil(fracDigits.length / DEC_DIGITS) * DEC_DIGITS, '0');
  const groups: number[] = [];
  for (let i = 0; i < intPadded.length; i += DEC_DIGITS) groups.push(Number(intPadded.slice(i, i + DEC_DIGITS)));
  let weight = groups.length - 1;
  for (let i = 0; i < fracPadded.length; i += DEC_DIGITS) groups.push(Number(fracPadded.slice(i, i + DEC_DIGITS)));
  // Strip leading and trailing zero groups, as numeric_send does.
  let first = 0;
  while (first < groups.length && groups[first] === 0) {
    first++;
    weight--;
  }
  let last = groups.length;
  while (last > first && groups[last - 1] === 0) last--;
  const digits = groups.slice(first, last);
  if (digits.length === 0) weight = 0;
  const out = Buffer.allocUnsafe(8 + 2 * digits.length);
  out.writeInt16BE(digits.length, 0);
  out.writeInt16BE(weight, 2);
  out.writeUInt16BE(neg && digits.length > 0 ? NUMERIC_NEG : NUMERIC_POS, 4);
  out.writeInt16BE(dscale, 6);
  digits.forEach((d, i) => out.writeInt16BE(d, 8 + 2 * i));
  return out;
}

/** Reads a value in `format` as logical text. */
export function readValue(kind: ScalarKind, format: number, b: Buffer): string | undefined {
  return format === Format.binary ? binaryToText(kind, b) : kind === 'opaque' ? undefined : b.toString('utf8');
}

/** Writes logical text in `format`. */
export function writeValue(kind: ScalarKind, format: number, text: string): Buffer | undefined {
  return format === Format.binary ? textToBinary(kind, text) : Buffer.from(text, 'utf8');
}

// Column, parameter and return values (TYPE_VARBYTE). [MS-TDS] 2.2.5.2 (data type dependent data
// streams: BYTELEN/USHORTLEN/LONGLEN values, PLP), 2.2.5.5 (value formats per type), 2.2.7.19 ROW
// (TextPointer/Timestamp before TEXT/NTEXT/IMAGE data in rows).
//
// Values decode to plain JS values:
//   tinyint/smallint/int -> number, bigint -> bigint, bit -> boolean, real/float -> number,
//   decimal/numeric/money/smallmoney -> exact decimal string, date/datetime/smalldatetime -> Date,
//   time/datetime2/datetimeoffset -> TimeValue/DateTime2Value/DateTimeOffsetValue,
//   char/varchar/text -> string (in the collation's code page), nchar/nvarchar/ntext/xml -> string,
//   binary/varbinary/image/udt/sql_variant -> Buffer, uniqueidentifier -> "XXXXXXXX-XXXX-..." string,
//   NULL of any nullable type -> null.
// and encode back exactly (decimal lengths and PLP chunking are sender choices; see ValueOptions).
//
// measureValue() finds a value's end without decoding it: the cheap path the token stream uses to
// frame rows, returning NEED_MORE when the bytes so far stop inside the value.

import { ProtocolError } from '../errors.js';
import { decodeCodePage, encodeCodePage, isSupportedCodePage } from './code-pages.js';
import { codePageOf } from './collation.js';
import type { Reader, Writer } from './cursor.js';
import { digitCount, formatScaled, parseScaled } from './decimal.js';
import {
  type DateTime2Value,
  type DateTimeOffsetValue,
  type TimeValue,
  DATETIME_TICKS_PER_DAY,
  DAY_MS,
  DAYS_1900_TO_1970,
  MAX_DAYS_0001,
  MAX_OFFSET_MINUTES,
  TICKS_PER_DAY,
  dateFromDays0001,
  dateTime2FromDate,
  days0001FromDate,
  scaledToTicks,
  ticksToScaled,
} from './temporal.js';
import {
  type TypeInfo,
  DATA_TYPE,
  FIXED_SIZE,
  NEED_MORE,
  decimalLengthForPrecision,
  timeLength,
  typeName,
  valueLayout,
} from './type-info.js';

export type { DateTime2Value, DateTimeOffsetValue, TimeValue } from './temporal.js';

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | TimeValue
  | DateTime2Value
  | DateTimeOffsetValue;

/** PLP_NULL and PLP_UNKNOWN_LEN total lengths. [MS-TDS] 2.2.5.2.3 */
export const PLP_NULL = 0xffffffffffffffffn;
export const PLP_UNKNOWN_LENGTH = 0xfffffffffffffffen;
/** USHORTLEN and LONGLEN NULL markers. */
export const CHARBIN_NULL = 0xffff;
export const LONGLEN_NULL = 0xffffffff;
const TEXTPTR_TIMESTAMP_LENGTH = 8;
const DEFAULT_TEXT_POINTER = Buffer.alloc(16);
const DEFAULT_MAX_VALUE_LENGTH = 0x7fffffff;

export interface ValueOptions {
  /**
   * TEXT/NTEXT/IMAGE values in ROW/NBCROW carry a TextPointer and Timestamp before the data;
   * in RPC parameters they do not. Default false.
   */
  readonly textPointers?: boolean;
  /** Cap on any one value's declared length (bytes). Default 2^31-1. */
  readonly maxValueLength?: number;
  /** DECIMAL/NUMERIC value length: by precision (SQL Server, tedious) or the smallest that fits
   * (Babelfish). Default 'precision'. */
  readonly decimalLength?: 'precision' | 'minimal';
  /** Split PLP values into chunks of at most this many bytes. Default: one chunk. */
  readonly plpChunkSize?: number;
  /** Send PLP values with PLP_UNKNOWN_LEN as the total length (as tedious does for parameters). */
  readonly plpUnknownLength?: boolean;
}

// ---------------------------------------------------------------------------------------------
// measure

/**
 * End offset of the value at `pos`, or NEED_MORE. Throws ProtocolError when a length prefix is
 * impossible for the type or exceeds `maxValueLength`. `origin` makes error offsets relative.
 */
export function measureValue(
  buf: Buffer,
  pos: number,
  end: number,
  ti: TypeInfo,
  opts: ValueOptions,
  origin = 0,
): number {
  const max = opts.maxValueLength ?? DEFAULT_MAX_VALUE_LENGTH;
  switch (valueLayout(ti)) {
    case 'fixed': {
      const q = pos + FIXED_SIZE[ti.type]!;
      return q <= end ? q : NEED_MORE;
    }
    case 'bytelen': {
      if (pos >= end) return NEED_MORE;
      const len = buf[pos]!;
      checkByteLenValue(ti, len, pos - origin);
      const q = pos + 1 + len;
      return q <= end ? q : NEED_MORE;
    }
    case 'ushortlen': {
      if (pos + 2 > end) return NEED_MORE;
      const len = buf.readUInt16LE(pos);
      if (len === CHARBIN_NULL) return pos + 2;
      checkCap(len, max, ti, pos - origin);
      const q = pos + 2 + len;
      return q <= end ? q : NEED_MORE;
    }
    case 'variant': {
      if (pos + 4 > end) return NEED_MORE;
      const len = buf.readUInt32LE(pos);
      checkCap(len, max, ti, pos - origin);
      const q = pos + 4 + len;
      return q <= end ? q : NEED_MORE;
    }
    case 'longlen-text': {
      let p = pos;
      if (opts.textPointers) {
        if (p >= end) return NEED_MORE;
        const ptrLen = buf[p]!;
        if (ptrLen === 0) return p + 1;
        p += 1 + ptrLen + TEXTPTR_TIMESTAMP_LENGTH;
        if (p + 4 > end) return NEED_MORE;
      } else if (p + 4 > end) return NEED_MORE;
      const len = buf.readUInt32LE(p);
      if (!opts.textPointers && len === LONGLEN_NULL) return p + 4;
      checkCap(len, max, ti, p - origin);
      const q = p + 4 + len;
      return q <= end ? q : NEED_MORE;
    }
    case 'plp':
      return measurePlp(buf, pos, end, ti, max, origin);
  }
}

function measurePlp(buf: Buffer, pos: number, end: number, ti: TypeInfo, max: number, origin: number): number {
  if (pos + 8 > end) return NEED_MORE;
  const total = buf.readBigUInt64LE(pos);
  if (total === PLP_NULL) return pos + 8;
  if (total !== PLP_UNKNOWN_LENGTH && total > BigInt(max)) {
    throw new ProtocolError(`${typeName(ti.type)} PLP length ${total} exceeds the ${max}-byte cap`, pos - origin);
  }
  let p = pos + 8;
  let sum = 0;
  for (;;) {
    if (p + 4 > end) return NEED_MORE;
    const chunk = buf.readUInt32LE(p);
    if (chunk === 0) {
      if (total !== PLP_UNKNOWN_LENGTH && BigInt(sum) !== total) {
        throw new ProtocolError(`${typeName(ti.type)} PLP chunks hold ${sum} bytes, header said ${total}`, p - origin);
      }
      return p + 4;
    }
    sum += chunk;
    if (sum > max || (total !== PLP_UNKNOWN_LENGTH && BigInt(sum) > total)) {
      throw new ProtocolError(`${typeName(ti.type)} PLP chunk of ${chunk} bytes overruns the value`, p - origin);
    }
    p += 4 + chunk;
    if (p > end) return NEED_MORE;
  }
}

function checkCap(len: number, max: number, ti: TypeInfo, at: number): void {
  if (len > max) throw new ProtocolError(`${typeName(ti.type)} value length ${len} exceeds the ${max}-byte cap`, at);
}

/** Valid BYTELEN value lengths: 0 (NULL) or what the TYPE_INFO implies. */
function checkByteLenValue(ti: TypeInfo, len: number, at: number): void {
  if (len === 0) return;
  const t = ti.type;
  let ok: boolean;
  switch (t) {
    case DATA_TYPE.INTN:
    case DATA_TYPE.FLTN:
    case DATA_TYPE.MONEYN:
    case DATA_TYPE.DATETIMN:
    case DATA_TYPE.BITN:
    case DATA_TYPE.GUID:
      ok = len === ti.length;
      break;
    case DATA_TYPE.DECIMALN:
    case DATA_TYPE.NUMERICN:
    case DATA_TYPE.DECIMAL:
    case DATA_TYPE.NUMERIC:
      ok = len === 5 || len === 9 || len === 13 || len === 17;
      break;
    case DATA_TYPE.DATEN:
      ok = len === 3;
      break;
    case DATA_TYPE.TIMEN:
      ok = len === timeLength(ti.scale ?? 7);
      break;
    case DATA_TYPE.DATETIME2N:
      ok = len === timeLength(ti.scale ?? 7) + 3;
      break;
    case DATA_TYPE.DATETIMEOFFSETN:
      ok = len === timeLength(ti.scale ?? 7) + 5;
      break;
    default:
      ok = true; // legacy CHAR/VARCHAR/BINARY/VARBINARY: any length up to 255
  }
  if (!ok) throw new ProtocolError(`${typeName(t)} value length ${len} does not fit its TYPE_INFO`, at);
}

// ---------------------------------------------------------------------------------------------
// read

export function readValue(r: Reader, ti: TypeInfo, opts: ValueOptions = {}): Value {
  const max = opts.maxValueLength ?? DEFAULT_MAX_VALUE_LENGTH;
  const name = typeName(ti.type);
  switch (valueLayout(ti)) {
    case 'fixed':
      return decodeFixed(r, ti.type, FIXED_SIZE[ti.type]!);
    case 'bytelen': {
      const at = r.pos;
      const len = r.u8(`${name} value length`);
      checkByteLenValue(ti, len, at - r.origin);
      if (len === 0) return null;
      return decodeByteLen(r, ti, len);
    }
    case 'ushortlen': {
      const at = r.pos;
      const len = r.u16le(`${name} value length`);
      if (len === CHARBIN_NULL) return null;
      checkCap(len, max, ti, at - r.origin);
      return decodeBytes(r, ti, r.bytes(len, `${name} value`), at);
    }
    case 'variant': {
      const at = r.pos;
      const len = r.u32le('SSVARIANT value length');
      checkCap(len, max, ti, at - r.origin);
      return len === 0 ? null : r.bytes(len, 'SSVARIANT value');
    }
    case 'longlen-text': {
      if (opts.textPointers) {
        const ptrLen = r.u8(`${name} text pointer length`);
        if (ptrLen === 0) return null;
        r.skip(ptrLen + TEXTPTR_TIMESTAMP_LENGTH, `${name} text pointer and timestamp`);
      }
      const at = r.pos;
      const len = r.u32le(`${name} value length`);
      if (!opts.textPointers && len === LONGLEN_NULL) return null;
      checkCap(len, max, ti, at - r.origin);
      return decodeBytes(r, ti, r.bytes(len, `${name} value`), at);
    }
    case 'plp': {
      const at = r.pos;
      const data = readPlp(r, ti, max);
      return data === null ? null : decodeBytes(r, ti, data, at);
    }
  }
}

function readPlp(r: Reader, ti: TypeInfo, max: number): Buffer | null {
  const name = typeName(ti.type);
  const at = r.pos;
  const total = r.u64le(`${name} PLP length`);
  if (total === PLP_NULL) return null;
  if (total !== PLP_UNKNOWN_LENGTH && total > BigInt(max)) {
    r.fail(`${name} PLP length ${total} exceeds the ${max}-byte cap`, at);
  }
  const chunks: Buffer[] = [];
  let sum = 0;
  for (;;) {
    const cat = r.pos;
    const len = r.u32le(`${name} PLP chunk length`);
    if (len === 0) break;
    sum += len;
    if (sum > max || (total !== PLP_UNKNOWN_LENGTH && BigInt(sum) > total)) {
      r.fail(`${name} PLP chunk of ${len} bytes overruns the value`, cat);
    }
    chunks.push(r.bytes(len, `${name} PLP chunk`));
  }
  if (total !== PLP_UNKNOWN_LENGTH && BigInt(sum) !== total) {
    r.fail(`${name} PLP chunks hold ${sum} bytes, header said ${total}`, at);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, sum);
}

function decodeFixed(r: Reader, type: number, size: number): Value {
  switch (type) {
    case DATA_TYPE.NULL:
      return null;
    case DATA_TYPE.INT1:
      return r.u8('tinyint');
    case DATA_TYPE.BIT:
      return r.u8('bit') !== 0;
    case DATA_TYPE.INT2:
      return r.i16le('smallint');
    case DATA_TYPE.INT4:
      return r.i32le('int');
    case DATA_TYPE.INT8:
      return r.i64le('bigint');
    case DATA_TYPE.FLT4: {
      r.need(4, 'real');
      const v = r.buf.readFloatLE(r.pos);
      r.pos += 4;
      return v;
    }
    case DATA_TYPE.FLT8: {
      r.need(8, 'float');
      const v = r.buf.readDoubleLE(r.pos);
      r.pos += 8;
      return v;
    }
    case DATA_TYPE.MONEY:
      return readMoney(r, 8);
    case DATA_TYPE.MONEY4:
      return readMoney(r, 4);
    case DATA_TYPE.DATETIME:
      return readDateTime(r, 8);
    case DATA_TYPE.DATETIM4:
      return readDateTime(r, 4);
    default:
      return r.fail(`fixed-length type 0x${type.toString(16)} of size ${size} has no decoder`);
  }
}

function decodeByteLen(r: Reader, ti: TypeInfo, len: number): Value {
  const t = ti.type;
  switch (t) {
    case DATA_TYPE.INTN:
      return decodeFixed(r, len === 1 ? DATA_TYPE.INT1 : len === 2 ? DATA_TYPE.INT2 : len === 4 ? DATA_TYPE.INT4 : DATA_TYPE.INT8, len);
    case DATA_TYPE.BITN:
      return r.u8('bit') !== 0;
    case DATA_TYPE.FLTN:
      return decodeFixed(r, len === 4 ? DATA_TYPE.FLT4 : DATA_TYPE.FLT8, len);
    case DATA_TYPE.MONEYN:
      return readMoney(r, len);
    case DATA_TYPE.DATETIMN:
      return readDateTime(r, len);
    case DATA_TYPE.GUID:
      return guidToString(r.bytes(16, 'uniqueidentifier'));
    case DATA_TYPE.DECIMALN:
    case DATA_TYPE.NUMERICN:
    case DATA_TYPE.DECIMAL:
    case DATA_TYPE.NUMERIC: {
      const at = r.pos;
      const sign = r.u8('decimal sign');
      if (sign > 1) r.fail(`decimal sign byte is ${sign}, expected 0 or 1`, at);
      const magnitude = readUIntLE(r, len - 1, 'decimal magnitude');
      return formatScaled({ negative: sign === 0, magnitude }, ti.scale ?? 0);
    }
    case DATA_TYPE.DATEN:
      return dateFromDays0001(readDays(r));
    case DATA_TYPE.TIMEN:
      return { kind: 'time', ticks: readTime(r, ti.scale ?? 7) };
    case DATA_TYPE.DATETIME2N: {
      const ticks = readTime(r, ti.scale ?? 7);
      return { kind: 'datetime2', ticks, days: readDays(r) };
    }
    case DATA_TYPE.DATETIMEOFFSETN: {
      const ticks = readTime(r, ti.scale ?? 7);
      const days = readDays(r);
      const at = r.pos;
      const offsetMinutes = r.i16le('datetimeoffset offset');
      if (Math.abs(offsetMinutes) > MAX_OFFSET_MINUTES) r.fail(`datetimeoffset offset ${offsetMinutes} minutes is out of range`, at);
      return { kind: 'datetimeoffset', ticks, days, offsetMinutes };
    }
    case DATA_TYPE.CHAR:
    case DATA_TYPE.VARCHAR:
      return r.bytes(len, 'varchar').toString('latin1');
    default: // legacy BINARY/VARBINARY
      return r.bytes(len, typeName(t));
  }
}

function decodeBytes(r: Reader, ti: TypeInfo, data: Buffer, at: number): Value {
  switch (ti.type) {
    case DATA_TYPE.NCHAR:
    case DATA_TYPE.NVARCHAR:
    case DATA_TYPE.NTEXT:
    case DATA_TYPE.XML:
      if (data.length % 2 !== 0) r.fail(`${typeName(ti.type)} value has an odd byte length ${data.length}`, at);
      return data.toString('utf16le');
    case DATA_TYPE.BIGCHAR:
    case DATA_TYPE.BIGVARCHR:
    case DATA_TYPE.TEXT: {
      const cp = ti.collation ? codePageOf(ti.collation) : undefined;
      if (cp === undefined || !isSupportedCodePage(cp)) {
        r.fail(`${typeName(ti.type)} collation (LCID 0x${(ti.collation?.lcid ?? 0).toString(16)}, sort id ${ti.collation?.sortId ?? 0}) has no supported code page`, at);
      }
      return decodeCodePage(data, cp);
    }
    default:
      return data;
  }
}

function readUIntLE(r: Reader, n: number, what: string): bigint {
  r.need(n, what);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(r.buf[r.pos + i]!);
  r.pos += n;
  return v;
}

function readMoney(r: Reader, len: number): string {
  if (len === 4) return formatMoney(BigInt(r.i32le('smallmoney')));
  const hi = r.i32le('money high');
  const lo = r.u32le('money low');
  return formatMoney((BigInt(hi) << 32n) | BigInt(lo));
}

function formatMoney(v: bigint): string {
  return formatScaled({ negative: v < 0n, magnitude: v < 0n ? -v : v }, 4);
}

function readDateTime(r: Reader, len: number): Date {
  if (len === 4) {
    const days = r.u16le('smalldatetime days');
    const at = r.pos;
    const minutes = r.u16le('smalldatetime minutes');
    if (minutes >= 1440) r.fail(`smalldatetime minutes ${minutes} are past midnight`, at);
    return new Date((days - DAYS_1900_TO_1970) * DAY_MS + minutes * 60_000);
  }
  const days = r.i32le('datetime days');
  const at = r.pos;
  const ticks = r.u32le('datetime ticks');
  if (ticks >= DATETIME_TICKS_PER_DAY) r.fail(`datetime ticks ${ticks} are past midnight`, at);
  return new Date((days - DAYS_1900_TO_1970) * DAY_MS + Math.round((ticks * 10) / 3));
}

function readTime(r: Reader, scale: number): number {
  const n = timeLength(scale);
  r.need(n, 'time');
  const at = r.pos;
  const ticks = scaledToTicks(r.buf.readUIntLE(r.pos, n), scale);
  r.pos += n;
  if (ticks >= TICKS_PER_DAY) r.fail(`time value is past midnight`, at);
  return ticks;
}

function readDays(r: Reader): number {
  r.need(3, 'date');
  const at = r.pos;
  const days = r.buf.readUIntLE(r.pos, 3);
  r.pos += 3;
  if (days > MAX_DAYS_0001) r.fail(`date ${days} days after 0001-01-01 is past 9999-12-31`, at);
  return days;
}

/** SQL Server byte order: the first three groups little-endian, the last two as they are. */
export function guidToString(b: Buffer): string {
  const h = b.toString('hex').toUpperCase();
  const sw = (s: string): string => s.match(/../g)!.reverse().join('');
  return `${sw(h.slice(0, 8))}-${sw(h.slice(8, 12))}-${sw(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const GUID_TEXT = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i;

export function guidToBytes(s: string): Buffer {
  const m = GUID_TEXT.exec(s);
  if (!m) throw new RangeError(`"${s}" is not a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)`);
  const sw = (x: string): string => x.match(/../g)!.reverse().join('');
  return Buffer.from(`${sw(m[1]!)}${sw(m[2]!)}${sw(m[3]!)}${m[4]}${m[5]}`, 'hex');
}

// ---------------------------------------------------------------------------------------------
// write

export function writeValue(w: Writer, ti: TypeInfo, v: Value, opts: ValueOptions = {}): void {
  const name = typeName(ti.type);
  const layout = valueLayout(ti);
  if (v === null) {
    switch (layout) {
      case 'fixed':
        if (ti.type === DATA_TYPE.NULL) return;
        throw new RangeError(`${name} is not nullable; use its nullable (N) type for NULL`);
      case 'bytelen':
        w.u8(0);
        return;
      case 'ushortlen':
        w.u16le(CHARBIN_NULL);
        return;
      case 'variant':
        w.u32le(0);
        return;
      case 'longlen-text':
        if (opts.textPointers) w.u8(0);
        else w.u32le(LONGLEN_NULL);
        return;
      case 'plp':
        w.u64le(PLP_NULL);
        return;
    }
  }
  switch (layout) {
    case 'fixed':
      writeFixed(w, ti.type, v, name);
      return;
    case 'bytelen':
      writeByteLen(w, ti, v, opts, name);
      return;
    case 'ushortlen': {
      const data = encodeBytes(ti, v, name);
      if (data.length > (ti.length ?? 0)) {
        throw new RangeError(`${name} value of ${data.length} bytes exceeds the declared length ${ti.length}`);
      }
      w.u16le(data.length).bytes(data);
      return;
    }
    case 'variant': {
      const data = asBytes(v, name);
      w.u32le(data.length).bytes(data);
      return;
    }
    case 'longlen-text': {
      const data = encodeBytes(ti, v, name);
      if (opts.textPointers) w.bVarbyte(DEFAULT_TEXT_POINTER).zeros(TEXTPTR_TIMESTAMP_LENGTH);
      w.u32le(data.length).bytes(data);
      return;
    }
    case 'plp':
      writePlp(w, encodeBytes(ti, v, name), opts);
      return;
  }
}

function writePlp(w: Writer, data: Buffer, opts: ValueOptions): void {
  w.u64le(opts.plpUnknownLength ? PLP_UNKNOWN_LENGTH : BigInt(data.length));
  const size = opts.plpChunkSize ?? Math.max(1, data.length);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`plpChunkSize must be a positive integer, got ${size}`);
  for (let p = 0; p < data.length; p += size) {
    const chunk = data.subarray(p, Math.min(data.length, p + size));
    w.u32le(chunk.length).bytes(chunk);
  }
  w.u32le(0);
}

function writeFixed(w: Writer, type: number, v: Value, name: string): void {
  switch (type) {
    case DATA_TYPE.INT1:
      w.u8(asInteger(v, name), name);
      return;
    case DATA_TYPE.BIT:
      w.u8(asBit(v, name));
      return;
    case DATA_TYPE.INT2:
      w.i16le(asInteger(v, name), name);
      return;
    case DATA_TYPE.INT4:
      w.i32le(asInteger(v, name), name);
      return;
    case DATA_TYPE.INT8:
      w.i64le(asBigInt(v, name), name);
      return;
    case DATA_TYPE.FLT4:
      w.f32le(asNumber(v, name));
      return;
    case DATA_TYPE.FLT8:
      w.f64le(asNumber(v, name));
      return;
    case DATA_TYPE.MONEY:
      writeMoney(w, v, 8, name);
      return;
    case DATA_TYPE.MONEY4:
      writeMoney(w, v, 4, name);
      return;
    case DATA_TYPE.DATETIME:
      writeDateTime(w, v, 8, name);
      return;
    case DATA_TYPE.DATETIM4:
      writeDateTime(w, v, 4, name);
      return;
    case DATA_TYPE.NULL:
      throw new RangeError('NULLTYPE can only carry NULL');
  }
}

function writeByteLen(w: Writer, ti: TypeInfo, v: Value, opts: ValueOptions, name: string): void {
  const t = ti.type;
  const len = ti.length ?? 0;
  switch (t) {
    case DATA_TYPE.INTN: {
      const inner = len === 1 ? DATA_TYPE.INT1 : len === 2 ? DATA_TYPE.INT2 : len === 4 ? DATA_TYPE.INT4 : DATA_TYPE.INT8;
      w.u8(len);
      writeFixed(w, inner, v, name);
      return;
    }
    case DATA_TYPE.BITN:
      w.u8(1).u8(asBit(v, name));
      return;
    case DATA_TYPE.FLTN:
      w.u8(len);
      writeFixed(w, len === 4 ? DATA_TYPE.FLT4 : DATA_TYPE.FLT8, v, name);
      return;
    case DATA_TYPE.MONEYN:
      w.u8(len);
      writeMoney(w, v, len, name);
      return;
    case DATA_TYPE.DATETIMN:
      w.u8(len);
      writeDateTime(w, v, len, name);
      return;
    case DATA_TYPE.GUID:
      w.u8(16).bytes(Buffer.isBuffer(v) && v.length === 16 ? v : guidToBytes(asString(v, name)));
      return;
    case DATA_TYPE.DECIMALN:
    case DATA_TYPE.NUMERICN:
    case DATA_TYPE.DECIMAL:
    case DATA_TYPE.NUMERIC: {
      const precision = ti.precision ?? 38;
      const d = parseScaled(asDecimalInput(v, name), ti.scale ?? 0, name);
      if (digitCount(d.magnitude) > precision && d.magnitude !== 0n) {
        throw new RangeError(`${name} value ${String(v)} has more than ${precision} digits`);
      }
      const bytesNeeded = Math.max(1, Math.ceil(d.magnitude.toString(16).length / 2));
      const vlen =
        opts.decimalLength === 'minimal'
          ? [5, 9, 13, 17].find((n) => n - 1 >= bytesNeeded)!
          : decimalLengthForPrecision(precision);
      if (vlen - 1 < bytesNeeded) throw new RangeError(`${name} value ${String(v)} does not fit ${vlen - 1} bytes`);
      w.u8(vlen).u8(d.negative ? 0 : 1);
      let m = d.magnitude;
      for (let i = 0; i < vlen - 1; i++) {
        w.u8(Number(m & 0xffn));
        m >>= 8n;
      }
      return;
    }
    case DATA_TYPE.DATEN: {
      const days = days0001FromDate(asDate(v, name));
      checkDays(days, name);
      w.u8(3);
      writeUInt(w, days, 3);
      return;
    }
    case DATA_TYPE.TIMEN: {
      const scale = ti.scale ?? 7;
      const ticks = toTimeTicks(v, name);
      const scaled = ticksToScaled(ticks, scale);
      if (scaledToTicks(scaled, scale) >= TICKS_PER_DAY) throw new RangeError(`${name} value rounds past midnight`);
      w.u8(timeLength(scale));
      writeUInt(w, scaled, timeLength(scale));
      return;
    }
    case DATA_TYPE.DATETIME2N:
    case DATA_TYPE.DATETIMEOFFSETN: {
      const scale = ti.scale ?? 7;
      const dto = t === DATA_TYPE.DATETIMEOFFSETN;
      const parts = toDateTimeParts(v, dto, name);
      let scaled = ticksToScaled(parts.ticks, scale);
      let days = parts.days;
      if (scaledToTicks(scaled, scale) >= TICKS_PER_DAY) {
        scaled = 0;
        days += 1;
      }
      checkDays(days, name);
      w.u8(timeLength(scale) + (dto ? 5 : 3));
      writeUInt(w, scaled, timeLength(scale));
      writeUInt(w, days, 3);
      if (dto) {
        if (Math.abs(parts.offsetMinutes) > MAX_OFFSET_MINUTES) {
          throw new RangeError(`${name} offset ${parts.offsetMinutes} minutes is out of range`);
        }
        w.i16le(parts.offsetMinutes);
      }
      return;
    }
    case DATA_TYPE.CHAR:
    case DATA_TYPE.VARCHAR: {
      const data = Buffer.isBuffer(v) ? v : latin1(asString(v, name), name);
      if (data.length === 0 || data.length > 255) throw new RangeError(`${name} value must be 1..255 bytes`);
      w.u8(data.length).bytes(data);
      return;
    }
    default: {
      const data = asBytes(v, name);
      if (data.length === 0 || data.length > 255) throw new RangeError(`${name} value must be 1..255 bytes`);
      w.u8(data.length).bytes(data);
    }
  }
}

function encodeBytes(ti: TypeInfo, v: Value, name: string): Buffer {
  switch (ti.type) {
    case DATA_TYPE.NCHAR:
    case DATA_TYPE.NVARCHAR:
    case DATA_TYPE.NTEXT:
    case DATA_TYPE.XML:
      return Buffer.from(asString(v, name), 'utf16le');
    case DATA_TYPE.BIGCHAR:
    case DATA_TYPE.BIGVARCHR:
    case DATA_TYPE.TEXT: {
      if (Buffer.isBuffer(v)) return v;
      const cp = ti.collation ? codePageOf(ti.collation) : undefined;
      if (cp === undefined || !isSupportedCodePage(cp)) throw new RangeError(`${name} collation has no supported code page`);
      return encodeCodePage(asString(v, name), cp);
    }
    default:
      return asBytes(v, name);
  }
}

function writeMoney(w: Writer, v: Value, len: number, name: string): void {
  const d = parseScaled(asDecimalInput(v, name), 4, name);
  const n = d.negative ? -d.magnitude : d.magnitude;
  if (len === 4) {
    if (n < -(2n ** 31n) || n >= 2n ** 31n) throw new RangeError(`smallmoney value ${String(v)} is out of range`);
    w.i32le(Number(n));
    return;
  }
  if (n < -(2n ** 63n) || n >= 2n ** 63n) throw new RangeError(`money value ${String(v)} is out of range`);
  const u = BigInt.asUintN(64, n);
  w.i32le(Number(BigInt.asIntN(32, u >> 32n)));
  w.u32le(Number(u & 0xffffffffn));
}

function writeDateTime(w: Writer, v: Value, len: number, name: string): void {
  const ms = asDate(v, name).getTime();
  let days = Math.floor(ms / DAY_MS) + DAYS_1900_TO_1970;
  const dayMs = ms - (days - DAYS_1900_TO_1970) * DAY_MS;
  if (len === 4) {
    let minutes = Math.round(dayMs / 60_000);
    if (minutes >= 1440) {
      minutes = 0;
      days += 1;
    }
    if (days < 0 || days > 0xffff) throw new RangeError(`smalldatetime ${String(v)} is out of range`);
    w.u16le(days).u16le(minutes);
    return;
  }
  let ticks = Math.round((dayMs * 3) / 10);
  if (ticks >= DATETIME_TICKS_PER_DAY) {
    ticks = 0;
    days += 1;
  }
  w.i32le(days, 'datetime days').u32le(ticks);
}

function writeUInt(w: Writer, v: number, n: number): void {
  let x = v;
  for (let i = 0; i < n; i++) {
    w.u8(x % 256);
    x = Math.floor(x / 256);
  }
}

function checkDays(days: number, name: string): void {
  if (days < 0 || days > MAX_DAYS_0001) throw new RangeError(`${name} value is outside 0001-01-01..9999-12-31`);
}

function toTimeTicks(v: Value, name: string): number {
  if (v instanceof Date) return dateTime2FromDate(v).ticks;
  if (isStruct(v) && v.kind === 'time') {
    if (!Number.isInteger(v.ticks) || v.ticks < 0 || v.ticks >= TICKS_PER_DAY) throw new RangeError(`${name} ticks out of range`);
    return v.ticks;
  }
  throw new TypeError(`${name} needs a TimeValue or a Date, got ${describe(v)}`);
}

function toDateTimeParts(v: Value, dto: boolean, name: string): { days: number; ticks: number; offsetMinutes: number } {
  if (v instanceof Date) {
    const p = dateTime2FromDate(v);
    return { days: p.days, ticks: p.ticks, offsetMinutes: 0 };
  }
  if (isStruct(v) && (v.kind === 'datetime2' || v.kind === 'datetimeoffset')) {
    if (!Number.isInteger(v.ticks) || v.ticks < 0 || v.ticks >= TICKS_PER_DAY) throw new RangeError(`${name} ticks out of range`);
    if (!Number.isInteger(v.days)) throw new RangeError(`${name} days must be an integer`);
    const offsetMinutes = v.kind === 'datetimeoffset' ? v.offsetMinutes : 0;
    if (!dto && v.kind === 'datetimeoffset') throw new TypeError(`${name} needs a DateTime2Value or a Date, got a datetimeoffset`);
    return { days: v.days, ticks: v.ticks, offsetMinutes };
  }
  throw new TypeError(`${name} needs a ${dto ? 'DateTimeOffsetValue' : 'DateTime2Value'} or a Date, got ${describe(v)}`);
}

function isStruct(v: Value): v is TimeValue | DateTime2Value | DateTimeOffsetValue {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !(v instanceof Date) && 'kind' in v;
}

function describe(v: Value): string {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (v instanceof Date) return 'a Date';
  if (isStruct(v)) return `a ${v.kind} value`;
  return typeof v;
}

function asInteger(v: Value, name: string): number {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new RangeError(`${name} out of range: ${v}`);
    return Number(v);
  }
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new TypeError(`${name} needs an integer, got ${describe(v)}`);
}

function asBigInt(v: Value, name: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new TypeError(`${name} needs a bigint or a safe integer, got ${describe(v)}`);
}

function asNumber(v: Value, name: string): number {
  if (typeof v === 'number') return v;
  throw new TypeError(`${name} needs a number, got ${describe(v)}`);
}

function asBit(v: Value, name: string): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 0 || v === 1) return v;
  throw new TypeError(`${name} needs a boolean, got ${describe(v)}`);
}

function asString(v: Value, name: string): string {
  if (typeof v === 'string') return v;
  throw new TypeError(`${name} needs a string, got ${describe(v)}`);
}

function asBytes(v: Value, name: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new TypeError(`${name} needs a Buffer, got ${describe(v)}`);
}

function asDate(v: Value, name: string): Date {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v;
  throw new TypeError(`${name} needs a valid Date, got ${describe(v)}`);
}

function asDecimalInput(v: Value, name: string): string | number | bigint {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return v;
  throw new TypeError(`${name} needs a decimal string, number or bigint, got ${describe(v)}`);
}

function latin1(s: string, name: string): Buffer {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new RangeError(`${name}: character U+${s.charCodeAt(i).toString(16)} is not Latin-1`);
  }
  return Buffer.from(s, 'latin1');
}

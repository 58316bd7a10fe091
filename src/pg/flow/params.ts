// Bind parameters as display strings for transcripts and approval requests. Text-format values
// are the text the client sent; binary values are decoded for the common types, else shown as hex.
import { formatAt } from '../../../protocols/postgres/frontend-messages.js';
import { TypeOid, typeName } from './types.js';

const MAX_DISPLAY = 4096;
/** Types whose binary form is their text: shown whole (the recorder clips them to its limit). */
const TEXT_TYPES: ReadonlySet<number> = new Set([TypeOid.text, TypeOid.varchar, TypeOid.bpchar, TypeOid.name, TypeOid.json]);

export function displayParam(value: Buffer | null, format: number, typeOid: number): string | null {
  if (value === null) return null;
  if (format === 0) {
    if (value.length <= MAX_DISPLAY * 4) return value.toString('utf8');
    // Cut before a character, not inside its UTF-8 sequence.
    let end = MAX_DISPLAY * 4;
    while (end > 0 && ((value[end] ?? 0) & 0xc0) === 0x80) end--;
    return value.toString('utf8', 0, end);
  }
  if (TEXT_TYPES.has(typeOid)) return value.toString('utf8');
  try {
    switch (typeOid) {
      case TypeOid.bool:
        return value.length === 1 ? (value[0] ? 'true' : 'false') : hex(value);
      case TypeOid.int2:
        return value.length === 2 ? String(value.readInt16BE(0)) : hex(value);
      case TypeOid.int4:
        return value.length === 4 ? String(value.readInt32BE(0)) : hex(value);
      case TypeOid.int8:
        return value.length === 8 ? value.readBigInt64BE(0).toString() : hex(value);
      case TypeOid.float4:
        return value.length === 4 ? String(value.readFloatBE(0)) : hex(value);
      case TypeOid.float8:
        return value.length === 8 ? String(value.readDoubleBE(0)) : hex(value);
      case TypeOid.uuid:
        if (value.length !== 16) return hex(value);
        return `${value.toString('hex', 0, 4)}-${value.toString('hex', 4, 6)}-${value.toString('hex', 6, 8)}-${value.toString('hex', 8, 10)}-${value.toString('hex', 10, 16)}`;
      default:
        return hex(value);
    }
  } catch {
    return hex(value);
  }
}

function hex(b: Buffer): string {
  return `\\x${b.toString('hex', 0, Math.min(b.length, MAX_DISPLAY / 2))}`;
}

/** The UTF-8 size of a value's whole display text when displayParam() cuts it (the transcript's fullBytes), else undefined. */
export function displayFullBytes(value: Buffer | null, format: number, typeOid: number): number | undefined {
  if (value === null) return undefined;
  if (format === 0) return value.length > MAX_DISPLAY * 4 ? value.length : undefined;
  if (TEXT_TYPES.has(typeOid) || value.length <= MAX_DISPLAY / 2) return undefined;
  return 2 + 2 * value.length;
}

export interface DisplayParams {
  values: (string | null)[];
  types: string[];
  /** Per value: its whole size when the display text was cut (see displayFullBytes); only when one was. */
  fullBytes?: (number | undefined)[];
}

export function displayParams(params: readonly (Buffer | null)[], formats: readonly number[], types: readonly number[]): DisplayParams {
  const values: (string | null)[] = [];
  const names: string[] = [];
  let fullBytes: (number | undefined)[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const t = types[i] ?? 0;
    const format = formatAt(formats, i);
    values.push(displayParam(params[i] ?? null, format, t));
    const full = displayFullBytes(params[i] ?? null, format, t);
    if (full !== undefined) (fullBytes ??= new Array<number | undefined>(params.length))[i] = full;
    names.push(typeName(t));
  }
  return fullBytes ? { values, types: names, fullBytes } : { values, types: names };
}

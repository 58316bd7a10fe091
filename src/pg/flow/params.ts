// Bind parameters as display strings for transcripts and approval requests. Text-format values
// are the text the client sent; binary values are decoded for the common types, else shown as hex.
import { formatAt } from '../../../protocols/postgres/frontend-messages.js';
import { TypeOid, typeName } from './types.js';

const MAX_DISPLAY = 4096;

export function displayParam(value: Buffer | null, format: number, typeOid: number): string | null {
  if (value === null) return null;
  if (format === 0) return value.toString('utf8', 0, Math.min(value.length, MAX_DISPLAY * 4));
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
      case TypeOid.text:
      case TypeOid.varchar:
      case TypeOid.bpchar:
      case TypeOid.name:
      case TypeOid.json:
        return value.toString('utf8');
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

export interface DisplayParams {
  values: (string | null)[];
  types: string[];
}

export function displayParams(params: readonly (Buffer | null)[], formats: readonly number[], types: readonly number[]): DisplayParams {
  const values: (string | null)[] = [];
  const names: string[] = [];
  for (let i = 0; i < params.length; i++) {
    const t = types[i] ?? 0;
    values.push(displayParam(params[i] ?? null, formatAt(formats, i), t));
    names.push(typeName(t));
  }
  return { values, types: names };
}

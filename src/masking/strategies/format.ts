// format: format-preserving replacement. Digits stay digits, letters stay letters of the same
// case (as ASCII letters), every other character (separators, spaces, signs, the decimal point,
// an exponent) is kept, so the length and shape survive: "4111-1111-1111-1111" stays a
// 19-character dash-grouped number. Keyed and deterministic (HMAC-SHA-256 stream over the value).
// The first/last `keep` characters can be kept as they are. Numbers stay valid numbers of their
// type: no leading zero, and integers stay inside their type's range. uuid hex digits stay hex.
import { intInRange } from '../values.js';
import type { Masked, ScalarType } from './types.js';
import { keyedStream } from './keyed.js';

export interface FormatOptions {
  key: Uint8Array;
  keepFirst: number;
  keepLast: number;
}

const DIGITS = '0123456789';
const HEX = '0123456789abcdef';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const NUMERIC_KINDS = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);

export function formatPreserving(value: string, t: ScalarType, o: FormatOptions): Masked {
  const numeric = NUMERIC_KINDS.has(t.kind);
  if (!numeric && t.kind !== 'text' && t.kind !== 'uuid') return undefined;
  if (numeric && /^-?(?:NaN|Infinity)$/.test(value)) return value;
  const chars = [...value];
  const stream = keyedStream(o.key, value, chars.length);
  const n = chars.length;
  // A float's exponent stays: new digits there could overflow the type.
  const exponent = t.kind === 'float4' || t.kind === 'float8' ? chars.findIndex((c) => c === 'e' || c === 'E') : -1;
  const out = chars.map((ch, i) => {
    if (i < o.keepFirst || i >= n - o.keepLast || (exponent >= 0 && i > exponent)) return ch;
    const r = stream[i % stream.length] as number;
    if (t.kind === 'uuid') return /[0-9a-fA-F]/.test(ch) ? (HEX[r % 16] as string) : ch;
    if (/\p{Nd}/u.test(ch)) return DIGITS[r % 10] as string;
    if (numeric) return ch; // sign, point, exponent marker
    if (/\p{Lu}/u.test(ch)) return UPPER[r % 26] as string;
    if (/\p{L}/u.test(ch)) return LOWER[r % 26] as string;
    return ch;
  });
  if (numeric) fixNumber(out, o.keepFirst, n - o.keepLast);
  const text = out.join('');
  if ((t.kind === 'int2' || t.kind === 'int4' || t.kind === 'int8') && !intInRange(t.kind, text)) {
    // The leading digit decides the range: 1 keeps any number of at most the maximum's length in range.
    const first = out.findIndex((c) => /\d/.test(c));
    if (first >= 0) out[first] = '1';
    const fixed = out.join('');
    return intInRange(t.kind, fixed) ? fixed : undefined;
  }
  return text;
}

/** No leading zero in the integer part of a number longer than one digit (PostgreSQL never prints one). */
function fixNumber(out: string[], from: number, to: number): void {
  let i = out[0] === '-' || out[0] === '+' ? 1 : 0;
  let digits = 0;
  while (i + digits < out.length && /\d/.test(out[i + digits] as string)) digits++;
  if (digits > 1 && out[i] === '0' && i >= from && i < to) out[i] = String(1 + (out.length % 9));
}

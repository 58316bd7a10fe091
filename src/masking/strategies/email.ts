// email: hide the local part (optionally keeping its first letter) and keep the domain, or hide
// both. A value that is not an email address is masked whole. Text types only. `emailAscii` does
// the same on ASCII bytes for the hot path.
import type { Masked, ScalarType } from './types.js';

export interface EmailOptions {
  keepDomain: boolean;
  keepFirstLetter: boolean;
  maskChar: string;
}

/** Fixed mask length: the length of the local part is not revealed. */
const MASK_LENGTH = 4;

export function email(value: string, t: ScalarType, o: EmailOptions): Masked {
  if (t.kind !== 'text') return undefined;
  const mask = o.maskChar.repeat(MASK_LENGTH);
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return mask;
  const local = value.slice(0, at);
  const first = o.keepFirstLetter ? ([...local][0] ?? '') : '';
  return `${first}${mask}@${o.keepDomain ? value.slice(at + 1) : mask}`;
}

const AT = 0x40;

/** Largest output of emailAscii for an input of `len` bytes. */
export function emailAsciiMax(len: number): number {
  return len + 2 * MASK_LENGTH + 2;
}

/**
 * email() over the bytes `src[start, start + len)` with a one-byte ASCII mask character, written
 * to `out` from `to` (which must hold emailAsciiMax(len) bytes there), when they are ASCII: then
 * characters are bytes, so this writes exactly the UTF-8 of email()'s result, and every byte it
 * writes is a byte of the value or the mask byte. Returns the bytes written, or -1 (nothing
 * written) when a byte is not ASCII.
 */
export function emailAscii(src: Uint8Array, start: number, len: number, o: EmailOptions, maskByte: number, out: Uint8Array, to = 0): number {
  const end = start + len;
  // The last '@', checking the bytes after it on the way; then the bytes before it.
  let at = end - 1;
  for (; at >= start; at--) {
    const b = src[at] as number;
    if (b === AT) break;
    if (b >= 0x80) return -1;
  }
  for (let i = start; i < at; i++) if ((src[i] as number) >= 0x80) return -1;
  let w = to;
  if (at <= start || at === end - 1) {
    for (let k = 0; k < MASK_LENGTH; k++) out[w++] = maskByte;
    return w - to;
  }
  if (o.keepFirstLetter) out[w++] = src[start] as number;
  for (let k = 0; k < MASK_LENGTH; k++) out[w++] = maskByte;
  out[w++] = AT;
  if (o.keepDomain) for (let i = at + 1; i < end; i++) out[w++] = src[i] as number;
  else for (let k = 0; k < MASK_LENGTH; k++) out[w++] = maskByte;
  return w - to;
}

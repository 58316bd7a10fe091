// partial: keep the first and last characters, mask the ones between (one mask character per
// character, so the length is kept). A value too short to hide anything is masked whole.
// Text types only. `partialBytes` does the same on UTF-8 bytes for the DataRow hot path.
import type { Masked, ScalarType } from './types.js';

export interface PartialOptions {
  keepFirst: number;
  keepLast: number;
  maskChar: string;
}

export function partial(value: string, t: ScalarType, o: PartialOptions): Masked {
  if (t.kind !== 'text') return undefined;
  const chars = [...value];
  const n = chars.length;
  if (n <= o.keepFirst + o.keepLast) return o.maskChar.repeat(n);
  return chars.slice(0, o.keepFirst).join('') + o.maskChar.repeat(n - o.keepFirst - o.keepLast) + chars.slice(n - o.keepLast).join('');
}

const isContinuation = (b: number): boolean => (b & 0xc0) === 0x80;

/**
 * partial() over UTF-8 bytes `src[start, start + len)`, written to `out` from 0 (which must hold
 * `partialBytesMax(len, mask)` bytes). Returns the number of bytes written.
 */
export function partialBytes(src: Uint8Array, start: number, len: number, o: PartialOptions, mask: Uint8Array, out: Uint8Array): number {
  const end = start + len;
  let n = 0;
  for (let i = start; i < end; i++) if (((src[i] as number) & 0xc0) !== 0x80) n++;
  const keep = o.keepFirst + o.keepLast;
  const masked = n <= keep ? n : n - keep;
  let w = 0;
  let head = start;
  let tail = end;
  if (n > keep) {
    if (n === len) {
      // ASCII: characters are bytes.
      head = start + o.keepFirst;
      tail = end - o.keepLast;
    } else {
      for (let c = 0; c < o.keepFirst; c++) {
        head++;
        while (head < end && isContinuation(src[head] as number)) head++;
      }
      for (let c = 0; c < o.keepLast; c++) {
        tail--;
        while (tail > start && isContinuation(src[tail] as number)) tail--;
      }
    }
    for (let i = start; i < head; i++) out[w++] = src[i] as number;
  }
  if (mask.length === 1) {
    const m = mask[0] as number;
    for (let k = 0; k < masked; k++) out[w++] = m;
  } else {
    for (let k = 0; k < masked; k++) for (let j = 0; j < mask.length; j++) out[w++] = mask[j] as number;
  }
  if (n > keep) for (let i = tail; i < end; i++) out[w++] = src[i] as number;
  return w;
}

/** Largest output of partialBytes for an input of `len` bytes. */
export function partialBytesMax(len: number, mask: Uint8Array): number {
  return len * Math.max(1, mask.length);
}

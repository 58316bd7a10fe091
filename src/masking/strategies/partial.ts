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
  for (let i = start; i < end; i++) if (!isContinuation(src[i] as number)) n++;
  let w = 0;
  const writeMask = (count: number): void => {
    if (mask.length === 1) {
      out.fill(mask[0] as number, w, w + count);
      w += count;
      return;
    }
    for (let k = 0; k < count; k++) {
      out.set(mask, w);
      w += mask.length;
    }
  };
  if (n <= o.keepFirst + o.keepLast) {
    writeMask(n);
    return w;
  }
  // Byte offset after the first keepFirst characters.
  let head = start;
  for (let c = 0; c < o.keepFirst; c++) {
    head++;
    while (head < end && isContinuation(src[head] as number)) head++;
  }
  // Byte offset where the last keepLast characters start.
  let tail = end;
  for (let c = 0; c < o.keepLast; c++) {
    tail--;
    while (tail > start && isContinuation(src[tail] as number)) tail--;
  }
  for (let i = start; i < head; i++) out[w++] = src[i] as number;
  writeMask(n - o.keepFirst - o.keepLast);
  for (let i = tail; i < end; i++) out[w++] = src[i] as number;
  return w;
}

/** Largest output of partialBytes for an input of `len` bytes. */
export function partialBytesMax(len: number, mask: Uint8Array): number {
  return len * Math.max(1, mask.length);
}

// email: hide the local part (optionally keeping its first letter) and keep the domain, or hide
// both. A value that is not an email address is masked whole. Text types only.
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

// Exact decimal text for decimal/numeric and money values. [MS-TDS] 2.2.5.5.1.3 (decimal/numeric:
// sign byte 1 = positive, 0 = negative, then the magnitude as a little-endian integer scaled by
// 10^scale) and 2.2.5.5.1.2 (money: a signed 64-bit count of 1/10000 units, sent high 32 bits
// first; smallmoney: a signed 32-bit count).
//
// Values decode to strings ("-1234.50") so that no digit is lost to binary floating point, and
// "-0.00" keeps a negative-zero sign byte so the bytes encode back exactly.

export interface ScaledDecimal {
  readonly negative: boolean;
  /** The digits as an integer, i.e. value * 10^scale, always >= 0. */
  readonly magnitude: bigint;
}

export function formatScaled(d: ScaledDecimal, scale: number): string {
  let digits = d.magnitude.toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  }
  return d.negative ? `-${digits}` : digits;
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * Parses a decimal string, a number (rounded to `scale` digits) or a bigint into the scaled
 * integer. Extra fraction digits in a string are an error, not rounded, so masking or relaying
 * never changes a value silently.
 */
export function parseScaled(input: string | number | bigint, scale: number, what: string): ScaledDecimal {
  if (typeof input === 'bigint') {
    return { negative: input < 0n, magnitude: (input < 0n ? -input : input) * 10n ** BigInt(scale) };
  }
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || Math.abs(input) >= 1e21) throw new RangeError(`${what}: ${input} is not a finite decimal`);
    text = input.toFixed(scale);
    if (Object.is(input, -0)) text = `-${text}`;
  } else {
    text = input.trim();
  }
  const m = DECIMAL_TEXT.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new RangeError(`${what}: "${input}" is not a decimal number`);
  const intPart = m[2] ?? '';
  const frac = m[3] ?? '';
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) {
    throw new RangeError(`${what}: "${input}" has more than ${scale} fraction digits`);
  }
  const digits = `${intPart}${frac.slice(0, scale).padEnd(scale, '0')}`;
  return { negative: m[1] === '-', magnitude: BigInt(digits === '' ? '0' : digits) };
}

/** Number of decimal digits in `v` (>= 1). */
export function digitCount(v: bigint): number {
  return v === 0n ? 1 : v.toString().length;
}

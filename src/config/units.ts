// Durations and byte sizes as people write them in the config ("30s", "64KiB"), and back again
// for messages. Pure functions; the field readers in validate.ts add positions and key paths.

export const MS = 1;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: MS, s: SECOND, m: MINUTE, h: HOUR, d: DAY };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Binary (IEC) units only: "64KB" is ambiguous (1000 or 1024?), so it is refused with a hint. */
const BYTE_UNITS: Readonly<Record<string, number>> = { b: 1, kib: KiB, mib: MiB, gib: GiB, tib: TiB };
const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i;
const DECIMAL_BYTE_UNITS: Readonly<Record<string, string>> = { kb: 'KiB', k: 'KiB', mb: 'MiB', m: 'MiB', gb: 'GiB', g: 'GiB', tb: 'TiB', t: 'TiB' };

/**
 * "500ms", "30s", "5m", "2h", "1d" → milliseconds; a bare number means seconds (0.5 → 500).
 * Returns undefined when the text is not a duration or is not a whole number of milliseconds.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return wholeMs(value * SECOND);
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return wholeMs(Number(text) * SECOND);
  const m = DURATION.exec(text);
  if (!m) return undefined;
  const unit = DURATION_UNITS[m[2] ?? ''];
  return unit === undefined ? undefined : wholeMs(Number(m[1]) * unit);
}

function wholeMs(ms: number): number | undefined {
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  const rounded = Math.round(ms);
  // Allow float noise (0.1 * 1000), refuse real fractions of a millisecond.
  return Math.abs(rounded - ms) < 1e-6 && Number.isSafeInteger(rounded) ? rounded : undefined;
}

/** The shortest exact form: 1500 → "1500ms", 90000 → "90s", 3600000 → "1h". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export type ByteSizeResult = { bytes: number } | { error: string };

/** "64KiB", "1GiB", "512B" or a whole number of bytes. */
export function parseByteSize(value: string | number): ByteSizeResult {
  const bad = { error: 'must be a size such as "64KiB", "16MiB", "1GiB" or a number of bytes' };
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? { bytes: value } : bad;
  }
  const m = BYTE_SIZE.exec(value.trim());
  if (!m) return bad;
  const unitText = (m[2] ?? 'b').toLowerCase();
  const unit = BYTE_UNITS[unitText];
  if (unit === undefined) {
    const iec = DECIMAL_BYTE_UNITS[unitText];
    return iec === undefined
      ? bad
      : { error: `${bad.error}; "${m[2] ?? ''}" is ambiguous, warden uses binary units (did you mean ${m[1] ?? ''}${iec}?)` };
  }
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? { bytes } : { error: `${bad.error} (a whole number of bytes)` };
}

/** The shortest exact form: 65536 → "64KiB", 1073741824 → "1GiB", 1000 → "1000B". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['TiB', TiB], ['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

// Calendar arithmetic for PostgreSQL's date and timestamp values: days and microseconds since
// 2000-01-01 (the binary formats, date_send / timestamp_send) to civil dates and back, and the
// ISO text forms (DateStyle ISO, the default and what drivers expect).

export interface Civil {
  year: number;
  month: number;
  day: number;
}

/** date binary: int32 days since 2000-01-01; these two values are ±infinity. */
export const DATE_PINF = 0x7fffffff;
export const DATE_NINF = -0x80000000;
/** timestamp binary: int64 microseconds since 2000-01-01 00:00:00; ±infinity. */
export const TS_PINF = 0x7fffffffffffffffn;
export const TS_NINF = -0x8000000000000000n;
export const USECS_PER_DAY = 86_400_000_000n;

/** Days from 1970-01-01 to 2000-01-01. */
const PG_EPOCH_DAYS = 10957;

/** Howard Hinnant's days_from_civil (proleptic Gregorian), relative to 1970-01-01. */
export function daysFromCivil({ year, month, day }: Civil): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(days: number): Civil {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: era * 400 + yoe + (month <= 2 ? 1 : 0), month, day };
}

export function pgDaysFromCivil(c: Civil): number {
  return daysFromCivil(c) - PG_EPOCH_DAYS;
}

export function civilFromPgDays(days: number): Civil {
  return civilFromDays(days + PG_EPOCH_DAYS);
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** ISO date text; years ≤ 0 are written as PostgreSQL does ("0044-03-15 BC" is year -43). */
export function isoDate(c: Civil): string {
  const bc = c.year <= 0;
  return `${pad(bc ? 1 - c.year : c.year, 4)}-${pad(c.month)}-${pad(c.day)}${bc ? ' BC' : ''}`;
}

/** A parsed ISO date or timestamp text; `rest` is the time and zone part as written. */
export interface ParsedDateTime {
  civil: Civil;
  /** "HH:MM:SS[.ffffff]" when present. */
  time?: string;
  /** The zone suffix as written ("+00", "-05:30", "+05:30:15"). */
  zone?: string;
}

const ISO = /^(\d{4,})-(\d{2})-(\d{2})(?:[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?))?([+-]\d{2}(?::\d{2}(?::\d{2})?)?)?( BC)?$/;

/** Parses DateStyle ISO output (date, timestamp, timestamptz); undefined for anything else. */
export function parseIsoDateTime(text: string): ParsedDateTime | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  let year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (m[6]) year = 1 - year;
  const out: ParsedDateTime = { civil: { year, month, day } };
  if (m[4] !== undefined) out.time = m[4];
  if (m[5] !== undefined) out.zone = m[5];
  return out;
}

/** Microseconds since 2000-01-01 → civil date and time of day. */
export function splitTimestamp(us: bigint): { civil: Civil; timeUs: bigint } {
  let days = us / USECS_PER_DAY;
  let rem = us % USECS_PER_DAY;
  if (rem < 0n) {
    rem += USECS_PER_DAY;
    days -= 1n;
  }
  return { civil: civilFromPgDays(Number(days)), timeUs: rem };
}

export function timeText(timeUs: bigint): string {
  const secs = timeUs / 1_000_000n;
  const frac = timeUs % 1_000_000n;
  const h = Number(secs / 3600n);
  const m = Number((secs / 60n) % 60n);
  const s = Number(secs % 60n);
  const base = `${pad(h)}:${pad(m)}:${pad(s)}`;
  return frac === 0n ? base : `${base}.${String(frac).padStart(6, '0').replace(/0+$/, '')}`;
}

/** "HH:MM:SS[.ffffff]" → microseconds. */
export function parseTime(t: string): bigint | undefined {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(t);
  if (!m) return undefined;
  const frac = BigInt((m[4] ?? '').padEnd(6, '0') || '0');
  return ((BigInt(Number(m[1])) * 60n + BigInt(Number(m[2]))) * 60n + BigInt(Number(m[3]))) * 1_000_000n + frac;
}

/** "+05:30" → seconds east of UTC. */
export function parseZone(z: string): number | undefined {
  const m = /^([+-])(\d{2})(?::(\d{2})(?::(\d{2}))?)?$/.exec(z);
  if (!m) return undefined;
  const secs = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -secs : secs;
}

// Date and time values. [MS-TDS] 2.2.5.5.1.7 (date), 2.2.5.5.1.8 (datetime, smalldatetime, time,
// datetime2, datetimeoffset).
//
//   date            3-byte day count since 0001-01-01
//   time(n)         3..5-byte count of 10^-n second units since midnight
//   datetime2(n)    time(n) then date
//   datetimeoffset  time(n) then date, both in UTC, then the offset in minutes (SHORT)
//   datetime        LONG days since 1900-01-01, then ULONG 1/300-second ticks since midnight
//   smalldatetime   USHORT days since 1900-01-01, then USHORT minutes since midnight
//
// time/datetime2/datetimeoffset hold 100-nanosecond precision, more than a JS Date; they decode
// to the small structs below (ticks = 100 ns units), so nothing is lost. date, datetime and
// smalldatetime fit a Date exactly (datetime's 1/300 s ticks round-trip through milliseconds).

export interface TimeValue {
  readonly kind: 'time';
  /** 100-nanosecond units since midnight, 0 .. 863_999_999_999. */
  readonly ticks: number;
}

export interface DateTime2Value {
  readonly kind: 'datetime2';
  /** Days since 0001-01-01. */
  readonly days: number;
  /** 100-nanosecond units since midnight. */
  readonly ticks: number;
}

export interface DateTimeOffsetValue {
  readonly kind: 'datetimeoffset';
  /** Days since 0001-01-01, in UTC. */
  readonly days: number;
  /** 100-nanosecond units since midnight, in UTC. */
  readonly ticks: number;
  /** The value's offset from UTC, in minutes (-840 .. 840). */
  readonly offsetMinutes: number;
}

export const DAY_MS = 86_400_000;
export const TICKS_PER_DAY = 864_000_000_000;
export const TICKS_PER_MS = 10_000;
/** Days from 0001-01-01 to 1970-01-01. */
export const DAYS_0001_TO_1970 = 719_162;
/** Days from 1900-01-01 to 1970-01-01. */
export const DAYS_1900_TO_1970 = 25_567;
/** Last valid day number of date/datetime2 (9999-12-31). */
export const MAX_DAYS_0001 = 3_652_058;
export const DATETIME_TICKS_PER_DAY = 25_920_000; // 300 per second
export const MAX_OFFSET_MINUTES = 840;

export function dateFromDays0001(days: number): Date {
  return new Date((days - DAYS_0001_TO_1970) * DAY_MS);
}

/** Day number since 0001-01-01 of a Date's UTC calendar day (the time of day is dropped). */
export function days0001FromDate(d: Date): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new RangeError('invalid Date');
  return Math.floor(ms / DAY_MS) + DAYS_0001_TO_1970;
}

/** 10^n for n in 0..7. */
export const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000] as const;

/** ticks (100 ns) to the integer the wire carries at `scale`, rounding half up. */
export function ticksToScaled(ticks: number, scale: number): number {
  return Math.round(ticks / POW10[7 - scale]!);
}

export function scaledToTicks(v: number, scale: number): number {
  return v * POW10[7 - scale]!;
}

export function timeValue(ticks: number): TimeValue {
  return { kind: 'time', ticks };
}

export function dateTime2FromDate(d: Date): DateTime2Value {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new RangeError('invalid Date');
  const dayMs = ((ms % DAY_MS) + DAY_MS) % DAY_MS;
  return { kind: 'datetime2', days: Math.floor(ms / DAY_MS) + DAYS_0001_TO_1970, ticks: dayMs * TICKS_PER_MS };
}

/** The instant as a Date (sub-millisecond digits are dropped). */
export function dateFromDateTime2(v: { days: number; ticks: number }): Date {
  return new Date((v.days - DAYS_0001_TO_1970) * DAY_MS + Math.floor(v.ticks / TICKS_PER_MS));
}

export function dateTimeOffsetFromDate(d: Date, offsetMinutes = 0): DateTimeOffsetValue {
  const utc = dateTime2FromDate(d);
  return { kind: 'datetimeoffset', days: utc.days, ticks: utc.ticks, offsetMinutes };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** "hh:mm:ss.fffffff" with `scale` fraction digits (7 by default). */
export function formatTime(ticks: number, scale = 7): string {
  const totalSeconds = Math.floor(ticks / 10_000_000);
  const frac = ticks % 10_000_000;
  const hms = `${pad(Math.floor(totalSeconds / 3600), 2)}:${pad(Math.floor(totalSeconds / 60) % 60, 2)}:${pad(totalSeconds % 60, 2)}`;
  return scale === 0 ? hms : `${hms}.${pad(frac, 7).slice(0, scale)}`;
}

/** "yyyy-mm-dd" of a day number since 0001-01-01. */
export function formatDate(days: number): string {
  const d = dateFromDays0001(days);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** ISO-8601 text of a datetime2 ("2024-01-31T12:00:00.1234567"). */
export function formatDateTime2(v: { days: number; ticks: number }, scale = 7): string {
  return `${formatDate(v.days)}T${formatTime(v.ticks, scale)}`;
}

/** ISO-8601 text of a datetimeoffset in its own offset ("2024-01-31T14:00:00.0000000+02:00"). */
export function formatDateTimeOffset(v: DateTimeOffsetValue, scale = 7): string {
  let ticks = v.ticks + v.offsetMinutes * 60 * 10_000_000;
  let days = v.days;
  while (ticks < 0) {
    ticks += TICKS_PER_DAY;
    days -= 1;
  }
  while (ticks >= TICKS_PER_DAY) {
    ticks -= TICKS_PER_DAY;
    days += 1;
  }
  const sign = v.offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(v.offsetMinutes);
  return `${formatDate(days)}T${formatTime(ticks, scale)}${sign}${pad(Math.floor(off / 60), 2)}:${pad(off % 60, 2)}`;
}

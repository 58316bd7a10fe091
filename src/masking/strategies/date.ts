// date: generalise a date or timestamp to the start of its year or month (the time of day
// becomes midnight, the zone offset is kept as written). Works on date, timestamp, timestamptz
// and on text holding an ISO date or timestamp. ±infinity stays as it is.
import { isoDate, parseIsoDateTime } from '../dates.js';
import type { Masked, ScalarType } from './types.js';

export interface DateOptions {
  precision: 'year' | 'month';
}

const KINDS = new Set(['date', 'timestamp', 'timestamptz', 'text']);

export function generalizeDate(value: string, t: ScalarType, o: DateOptions): Masked {
  if (!KINDS.has(t.kind)) return undefined;
  if (value === 'infinity' || value === '-infinity') return t.kind === 'text' ? undefined : value;
  const p = parseIsoDateTime(value);
  if (!p) return undefined;
  if (t.kind === 'date' && (p.time !== undefined || p.zone !== undefined)) return undefined;
  const civil = { year: p.civil.year, month: o.precision === 'month' ? p.civil.month : 1, day: 1 };
  const date = isoDate(civil);
  const bc = date.endsWith(' BC');
  const day = bc ? date.slice(0, -3) : date;
  const withTime = p.time !== undefined || t.kind === 'timestamp' || t.kind === 'timestamptz' ? `${day} 00:00:00${p.zone ?? ''}` : day;
  return bc ? `${withTime} BC` : withTime;
}

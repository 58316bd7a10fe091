// Strategy configuration → a masking function over logical text, and which value kinds each
// strategy can produce a valid value for (anything else is redacted by the caller).
import { randomBytes } from 'node:crypto';
import type { MaskStrategyConfig } from '../../config/sections/masking.js';
import type { ScalarKind } from '../pg-types.js';
import { generalizeDate } from './date.js';
import { email } from './email.js';
import { formatPreserving } from './format.js';
import { hashValue } from './hash.js';
import { nullify } from './null.js';
import { partial } from './partial.js';
import { redact } from './redact.js';
import type { StrategyFn } from './types.js';

export type { Masked, ScalarType, StrategyFn } from './types.js';
export { redact } from './redact.js';

const APPLIES: Readonly<Record<MaskStrategyConfig['kind'], ReadonlySet<ScalarKind> | 'all'>> = {
  redact: 'all',
  null: 'all',
  partial: new Set(['text']),
  email: new Set(['text']),
  hash: new Set(['text', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'uuid', 'bytea', 'json', 'jsonb']),
  format: new Set(['text', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'uuid']),
  date: new Set(['date', 'timestamp', 'timestamptz', 'text']),
};

/** Whether the strategy can produce a value of this kind (else the value is redacted). */
export function strategyApplies(kind: MaskStrategyConfig['kind'], scalar: ScalarKind): boolean {
  const set = APPLIES[kind];
  return set === 'all' || set.has(scalar);
}

/**
 * Key for `format` rules written without one: random per process, so masked values are stable
 * within one warden process only (documented in docs/masking.md).
 */
const PROCESS_KEY = randomBytes(32);

export function compileStrategy(s: MaskStrategyConfig): StrategyFn {
  switch (s.kind) {
    case 'redact':
      return (_v, t) => redact(s.text, t.kind);
    case 'null':
      return nullify;
    case 'partial':
      return (v, t) => partial(v, t, s);
    case 'email':
      return (v, t) => email(v, t, s);
    case 'hash': {
      const key = Buffer.from(s.key, 'utf8');
      return (v, t) => hashValue(v, t, { key, length: s.length });
    }
    case 'format': {
      const key = s.key !== undefined ? Buffer.from(s.key, 'utf8') : PROCESS_KEY;
      return (v, t) => formatPreserving(v, t, { key, keepFirst: s.keepFirst, keepLast: s.keepLast });
    }
    case 'date':
      return (v, t) => generalizeDate(v, t, s);
  }
}

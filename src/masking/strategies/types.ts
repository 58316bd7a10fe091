// What every strategy is: a pure function from a value's logical text (the text format
// PostgreSQL sends) and its type to the masked text. A strategy returns
//   - a string: the masked value, valid for the type (the caller fits char(n) widths);
//   - null: send SQL NULL;
//   - undefined: the strategy does not apply to this type or value — the caller redacts.
import type { ScalarKind, ValueType } from '../pg-types.js';

export type Masked = string | null | undefined;

export interface ScalarType {
  readonly kind: ScalarKind;
  readonly type: ValueType;
}

export type StrategyFn = (value: string, t: ScalarType) => Masked;

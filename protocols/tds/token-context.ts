// What token decoders and encoders need to know besides the bytes: the TDS version (7.1 and
// 7.2+ differ in DONE row counts, UserType widths, INFO/ERROR line numbers, table names) and,
// for rows, caps on declared lengths and the encoder's choices for decimals and PLP chunks.

import type { TdsContext } from './tds-version.js';
import type { ValueOptions } from './values.js';

export interface TokenContext extends TdsContext {
  /** Cap on any one value's declared length in bytes. Default 2^31-1. */
  readonly maxValueLength?: number;
}

export interface TokenEncodeContext extends TdsContext {
  readonly decimalLength?: ValueOptions['decimalLength'];
  readonly plpChunkSize?: number;
  readonly plpUnknownLength?: boolean;
}

/** Value options for data inside the token stream (ROW, NBCROW, RETURNVALUE). */
export function rowValueOptions(ctx: TokenContext & Partial<TokenEncodeContext>): ValueOptions {
  return {
    textPointers: true,
    ...(ctx.maxValueLength !== undefined ? { maxValueLength: ctx.maxValueLength } : {}),
    ...(ctx.decimalLength !== undefined ? { decimalLength: ctx.decimalLength } : {}),
    ...(ctx.plpChunkSize !== undefined ? { plpChunkSize: ctx.plpChunkSize } : {}),
    ...(ctx.plpUnknownLength !== undefined ? { plpUnknownLength: ctx.plpUnknownLength } : {}),
  };
}

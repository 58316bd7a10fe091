// The token union and the per-token dispatch: frame (measure), decode and encode one token of
// a tabular result stream. [MS-TDS] 2.2.4.2 (token classes), 2.2.7 (tokens).
// The incremental parser in token-stream.ts is built on these.

import { ProtocolError } from '../errors.js';
import { type ColInfoToken, readColInfo, writeColInfo } from './colinfo.js';
import {
  type ColMetadataToken,
  type ColumnMetadata,
  measureColMetadata,
  readColMetadata,
  writeColMetadata,
} from './colmetadata.js';
import { Reader, type Writer } from './cursor.js';
import { type DoneKind, type DoneToken, doneBodyLength, readDone, writeDone } from './done.js';
import { type EnvChangeToken, readEnvChange, writeEnvChange } from './envchange.js';
import { type FeatureExtAckToken, measureFeatureExtAck, readFeatureExtAck, writeFeatureExtAck } from './featureextack.js';
import { type FedAuthInfoToken, readFedAuthInfo, writeFedAuthInfo } from './fedauthinfo.js';
import { type InfoErrorToken, readInfoError, writeInfoError } from './info-error.js';
import { type LoginAckToken, readLoginAck, writeLoginAck } from './loginack.js';
import { type NbcRowToken, measureNbcRow, readNbcRow, writeNbcRow } from './nbcrow.js';
import { type OffsetToken, OFFSET_BODY_LENGTH, readOffset, writeOffset } from './offset.js';
import { type OrderToken, readOrder, writeOrder } from './order.js';
import { type ReturnStatusToken, RETURNSTATUS_BODY_LENGTH, readReturnStatus, writeReturnStatus } from './returnstatus.js';
import { type ReturnValueToken, measureReturnValue, readReturnValue, writeReturnValue } from './returnvalue.js';
import { type RowToken, measureRow, readRow, writeRow } from './row.js';
import { type SessionStateToken, readSessionState, writeSessionState } from './sessionstate.js';
import { type SspiToken, readSspi, writeSspi } from './sspi.js';
import { type TabNameToken, readTabName, writeTabName } from './tabname.js';
import { type TokenContext, type TokenEncodeContext, rowValueOptions } from './token-context.js';
import { DWORD_LENGTH_TOKENS, TOKEN, USHORT_LENGTH_TOKENS, tokenName } from './token-codes.js';
import { NEED_MORE } from './type-info.js';

export type Token =
  | ColMetadataToken
  | RowToken
  | NbcRowToken
  | DoneToken
  | EnvChangeToken
  | LoginAckToken
  | InfoErrorToken
  | ReturnStatusToken
  | ReturnValueToken
  | OrderToken
  | FeatureExtAckToken
  | FedAuthInfoToken
  | SspiToken
  | TabNameToken
  | ColInfoToken
  | SessionStateToken
  | OffsetToken;

/** Where a token's body lies: [bodyStart, end) after the token byte and any length prefix. */
export interface TokenFrame {
  readonly bodyStart: number;
  readonly end: number;
}

export interface FrameLimits {
  /** Cap on a whole token's size in bytes. */
  readonly maxTokenLength: number;
}

/**
 * Finds the token at `pos`: its body range, or NEED_MORE when `end` comes first. Declared
 * lengths are checked against `limits` before any waiting for bytes. `columns` is the current
 * result's metadata (needed to frame ROW/NBCROW).
 */
export function frameToken(
  buf: Buffer,
  pos: number,
  end: number,
  ctx: TokenContext,
  columns: readonly ColumnMetadata[] | undefined,
  limits: FrameLimits,
  origin: number,
): TokenFrame | typeof NEED_MORE {
  if (pos >= end) return NEED_MORE;
  const code = buf[pos]!;
  const fixed = (n: number): TokenFrame | typeof NEED_MORE =>
    pos + 1 + n <= end ? { bodyStart: pos + 1, end: pos + 1 + n } : NEED_MORE;
  if (USHORT_LENGTH_TOKENS.has(code)) {
    if (pos + 3 > end) return NEED_MORE;
    const length = buf.readUInt16LE(pos + 1);
    const tokenEnd = pos + 3 + length;
    return tokenEnd <= end ? { bodyStart: pos + 3, end: tokenEnd } : NEED_MORE;
  }
  if (DWORD_LENGTH_TOKENS.has(code)) {
    if (pos + 5 > end) return NEED_MORE;
    const length = buf.readUInt32LE(pos + 1);
    if (length + 5 > limits.maxTokenLength) {
      throw new ProtocolError(`${tokenName(code)} token declares ${length} bytes, over the ${limits.maxTokenLength}-byte cap`, pos - origin);
    }
    const tokenEnd = pos + 5 + length;
    return tokenEnd <= end ? { bodyStart: pos + 5, end: tokenEnd } : NEED_MORE;
  }
  const opts = rowValueOptions(ctx);
  const measured = (bodyEnd: number): TokenFrame | typeof NEED_MORE =>
    bodyEnd < 0 ? NEED_MORE : { bodyStart: pos + 1, end: bodyEnd };
  switch (code) {
    case TOKEN.DONE:
    case TOKEN.DONEPROC:
    case TOKEN.DONEINPROC:
      return fixed(doneBodyLength(ctx));
    case TOKEN.RETURNSTATUS:
      return fixed(RETURNSTATUS_BODY_LENGTH);
    case TOKEN.OFFSET:
      return fixed(OFFSET_BODY_LENGTH);
    case TOKEN.COLMETADATA:
      return measured(measureColMetadata(buf, pos + 1, end, ctx, origin));
    case TOKEN.ROW:
      return measured(measureRow(buf, pos + 1, end, requireColumns(columns, 'ROW', pos - origin), opts, origin));
    case TOKEN.NBCROW:
      return measured(measureNbcRow(buf, pos + 1, end, requireColumns(columns, 'NBCROW', pos - origin), opts, origin));
    case TOKEN.RETURNVALUE:
      return measured(measureReturnValue(buf, pos + 1, end, ctx, opts, origin));
    case TOKEN.FEATUREEXTACK:
      return measured(measureFeatureExtAck(buf, pos + 1, end, pos + limits.maxTokenLength, origin));
    default: {
      const name = tokenName(code);
      throw new ProtocolError(
        name ? `${name} tokens are not supported` : `unknown token type 0x${code.toString(16).padStart(2, '0')}`,
        pos - origin,
      );
    }
  }
}

function requireColumns(columns: readonly ColumnMetadata[] | undefined, what: string, at: number): readonly ColumnMetadata[] {
  if (!columns) throw new ProtocolError(`${what} without a preceding COLMETADATA`, at);
  return columns;
}

const DONE_KIND: Readonly<Record<number, DoneKind>> = {
  [TOKEN.DONE]: 'DONE',
  [TOKEN.DONEPROC]: 'DONEPROC',
  [TOKEN.DONEINPROC]: 'DONEINPROC',
};

/** Decodes the token whose code is at `pos` and whose body is `frame`. */
export function readToken(
  buf: Buffer,
  pos: number,
  frame: TokenFrame,
  ctx: TokenContext,
  columns: readonly ColumnMetadata[] | undefined,
  origin: number,
): Token {
  const code = buf[pos]!;
  const r = new Reader(buf, frame.bodyStart, frame.end, origin);
  const opts = rowValueOptions(ctx);
  let t: Token;
  switch (code) {
    case TOKEN.DONE:
    case TOKEN.DONEPROC:
    case TOKEN.DONEINPROC:
      t = readDone(r, DONE_KIND[code]!, ctx);
      break;
    case TOKEN.RETURNSTATUS:
      t = readReturnStatus(r);
      break;
    case TOKEN.OFFSET:
      t = readOffset(r);
      break;
    case TOKEN.COLMETADATA:
      t = readColMetadata(r, ctx);
      break;
    case TOKEN.ROW:
      t = readRow(r, requireColumns(columns, 'ROW', pos - origin), opts);
      break;
    case TOKEN.NBCROW:
      t = readNbcRow(r, requireColumns(columns, 'NBCROW', pos - origin), opts);
      break;
    case TOKEN.RETURNVALUE:
      t = readReturnValue(r, ctx, opts);
      break;
    case TOKEN.FEATUREEXTACK:
      t = readFeatureExtAck(r);
      break;
    case TOKEN.ENVCHANGE:
      t = readEnvChange(r);
      break;
    case TOKEN.LOGINACK:
      t = readLoginAck(r);
      break;
    case TOKEN.INFO:
      t = readInfoError(r, 'INFO', ctx);
      break;
    case TOKEN.ERROR:
      t = readInfoError(r, 'ERROR', ctx);
      break;
    case TOKEN.ORDER:
      t = readOrder(r);
      break;
    case TOKEN.SSPI:
      t = readSspi(r);
      break;
    case TOKEN.TABNAME:
      t = readTabName(r, ctx);
      break;
    case TOKEN.COLINFO:
      t = readColInfo(r);
      break;
    case TOKEN.SESSIONSTATE:
      t = readSessionState(r);
      break;
    case TOKEN.FEDAUTHINFO:
      t = readFedAuthInfo(r);
      break;
    default:
      throw new ProtocolError(`unknown token type 0x${code.toString(16)}`, pos - origin);
  }
  if (r.pos !== frame.end) {
    throw new ProtocolError(`${tokenName(code)} token has ${frame.end - r.pos} bytes its fields do not account for`, r.pos - origin);
  }
  return t;
}

/** Writes one token. ROW/NBCROW need the current result's columns. */
export function writeToken(
  w: Writer,
  t: Token,
  ctx: TokenEncodeContext,
  columns: readonly ColumnMetadata[] | undefined,
): void {
  const opts = { ...rowValueOptions(ctx) };
  switch (t.kind) {
    case 'COLMETADATA':
      writeColMetadata(w, t, ctx);
      return;
    case 'ROW':
      if (!columns) throw new RangeError('ROW needs a COLMETADATA first');
      writeRow(w, t, columns, opts);
      return;
    case 'NBCROW':
      if (!columns) throw new RangeError('NBCROW needs a COLMETADATA first');
      writeNbcRow(w, t, columns, opts);
      return;
    case 'DONE':
    case 'DONEPROC':
    case 'DONEINPROC':
      writeDone(w, t, ctx);
      return;
    case 'ENVCHANGE':
      writeEnvChange(w, t);
      return;
    case 'LOGINACK':
      writeLoginAck(w, t);
      return;
    case 'INFO':
    case 'ERROR':
      writeInfoError(w, t, ctx);
      return;
    case 'RETURNSTATUS':
      writeReturnStatus(w, t);
      return;
    case 'RETURNVALUE':
      writeReturnValue(w, t, ctx, opts);
      return;
    case 'ORDER':
      writeOrder(w, t);
      return;
    case 'FEATUREEXTACK':
      writeFeatureExtAck(w, t);
      return;
    case 'FEDAUTHINFO':
      writeFedAuthInfo(w, t);
      return;
    case 'SSPI':
      writeSspi(w, t);
      return;
    case 'TABNAME':
      writeTabName(w, t, ctx);
      return;
    case 'COLINFO':
      writeColInfo(w, t);
      return;
    case 'SESSIONSTATE':
      writeSessionState(w, t);
      return;
    case 'OFFSET':
      writeOffset(w, t);
      return;
  }
}

// Incremental, resumable parser for a tabular result stream (the payload of server messages of
// packet type 0x04). [MS-TDS] 2.2.4 (token stream), 2.2.7 (tokens).
//
// Feed it payload bytes as packets arrive; a token may span packets. `next()` frames the next
// token (cheaply: ROW/NBCROW are measured, not decoded, when `decodeRows` is false) and returns
// it with its byte range in the message, or `undefined` when the bytes so far end inside a token.
// That "need more" answer is a plain return value, never an exception. COLMETADATA is always
// decoded because the rows after it cannot be framed without it; LOGINACK switches the parser to
// the TDS version the server chose.
//
// Bounds: a token may not exceed `maxTokenLength` bytes (declared DWORD lengths are refused up
// front, PLP values and the bytes buffered for one unfinished token are checked as they come),
// so a hostile server cannot make the relay buffer without limit.
//
// `encodeTokens()` is the reverse, for servers (the SQL Server stand-in) and for relays that
// rewrite rows: it tracks COLMETADATA the same way while encoding.

import { ProtocolError } from '../errors.js';
import type { ColumnMetadata } from './colmetadata.js';
import { Writer } from './cursor.js';
import { isSupportedVersion } from './tds-version.js';
import type { TokenContext, TokenEncodeContext } from './token-context.js';
import { TOKEN } from './token-codes.js';
import { type Token, frameToken, readToken, writeToken } from './tokens.js';
import { NEED_MORE } from './type-info.js';

export const DEFAULT_MAX_TOKEN_LENGTH = 64 * 1024 * 1024;
const MIN_BUFFER = 64 * 1024;

export interface TokenStreamOptions extends TokenContext {
  /** Decode ROW/NBCROW values (default true). A relay that forwards rows as bytes sets false. */
  readonly decodeRows?: boolean;
  /** Cap on one token's size in bytes (default 64 MiB). */
  readonly maxTokenLength?: number;
  /** Metadata in force from an earlier message (for NBCROW/ROW after NoMetaData). */
  readonly columns?: readonly ColumnMetadata[];
}

export interface ParsedToken {
  readonly code: number;
  /** Offset of the token byte within the message payload. */
  readonly start: number;
  /** Offset just past the token within the message payload. */
  readonly end: number;
  /** The token's bytes (token byte included): a view into the parser's buffer that is never
   * written over, so it can be forwarded as it is. */
  readonly bytes: Buffer;
  /** The decoded token; undefined for ROW/NBCROW when decodeRows is false. */
  readonly token: Token | undefined;
  /** For ROW/NBCROW: the columns the row follows. */
  readonly columns?: readonly ColumnMetadata[];
}

export class TokenStreamParser {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Message offset of buf[0]. */
  private base = 0;
  private ctx: TokenContext;
  private cols: readonly ColumnMetadata[] | undefined;
  private readonly decodeRows: boolean;
  private readonly maxTokenLength: number;

  constructor(options: TokenStreamOptions) {
    if (!isSupportedVersion(options.tdsVersion)) {
      throw new RangeError(`TDS version 0x${options.tdsVersion.toString(16)} is not supported`);
    }
    this.maxTokenLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
    this.ctx = {
      tdsVersion: options.tdsVersion,
      maxValueLength: Math.min(options.maxValueLength ?? this.maxTokenLength, this.maxTokenLength),
    };
    this.decodeRows = options.decodeRows ?? true;
    this.cols = options.columns;
  }

  get tdsVersion(): number {
    return this.ctx.tdsVersion;
  }

  /** The metadata of the current result set (from the last COLMETADATA). */
  get columns(): readonly ColumnMetadata[] | undefined {
    return this.cols;
  }

  /** Message offset of the next byte to be parsed. */
  get offset(): number {
    return this.base + this.start;
  }

  /** Bytes fed but not yet returned as tokens. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Appends payload bytes. Bytes already handed out are never written over: when the buffer is
   * full the unparsed tail moves to a fresh buffer, so earlier token views stay valid.
   */
  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const pending = this.end - this.start;
      const size = Math.max(MIN_BUFFER, 2 * (pending + chunk.length));
      const next = Buffer.allocUnsafe(size);
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.base += this.start;
      this.start = 0;
      this.end = pending;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The next whole token, or undefined until more bytes are fed. */
  next(): ParsedToken | undefined {
    if (this.start >= this.end) return undefined;
    const origin = -this.base;
    const pos = this.start;
    const frame = frameToken(this.buf, pos, this.end, this.ctx, this.cols, { maxTokenLength: this.maxTokenLength }, origin);
    if (frame === NEED_MORE) {
      if (this.end - pos > this.maxTokenLength) {
        throw new ProtocolError(`token exceeds the ${this.maxTokenLength}-byte cap`, this.base + pos);
      }
      return undefined;
    }
    if (frame.end - pos > this.maxTokenLength) {
      throw new ProtocolError(`token of ${frame.end - pos} bytes exceeds the ${this.maxTokenLength}-byte cap`, this.base + pos);
    }
    const code = this.buf[pos]!;
    const isRow = code === TOKEN.ROW || code === TOKEN.NBCROW;
    const rowColumns = isRow ? this.cols : undefined;
    const token = isRow && !this.decodeRows ? undefined : readToken(this.buf, pos, frame, this.ctx, this.cols, origin);
    if (token?.kind === 'COLMETADATA' && token.columns !== null) this.cols = token.columns;
    if (token?.kind === 'COLMETADATA' && token.columns === null && !this.cols) {
      throw new ProtocolError('COLMETADATA NoMetaData without earlier metadata', this.base + pos);
    }
    if (token?.kind === 'LOGINACK' && isSupportedVersion(token.tdsVersion)) {
      this.ctx = { ...this.ctx, tdsVersion: token.tdsVersion };
    }
    this.start = frame.end;
    const parsed: ParsedToken = {
      code,
      start: this.base + pos,
      end: this.base + frame.end,
      bytes: this.buf.subarray(pos, frame.end),
      token,
      ...(rowColumns ? { columns: rowColumns } : {}),
    };
    return parsed;
  }

  /**
   * Call when the message's last packet (EOM) has been fed and next() returned undefined:
   * bytes left over mean the message ended inside a token. Offsets restart at 0 for the next
   * message; the column metadata stays (NoMetaData may refer to it).
   */
  endOfMessage(): void {
    if (this.start !== this.end) {
      throw new ProtocolError(`message ended inside a token (${this.end - this.start} bytes left)`, this.base + this.start);
    }
    this.base = -this.start;
  }
}

/** Decodes a whole message payload into tokens (rows decoded). */
export function decodeTokens(payload: Buffer, options: TokenStreamOptions): Token[] {
  const p = new TokenStreamParser({ ...options, decodeRows: true });
  p.feed(payload);
  const out: Token[] = [];
  for (let t = p.next(); t; t = p.next()) out.push(t.token!);
  p.endOfMessage();
  return out;
}

export interface EncodeTokensContext extends TokenEncodeContext {
  /** Metadata in force before the first token (for rows that follow an earlier COLMETADATA). */
  readonly columns?: readonly ColumnMetadata[];
}

/** Encodes tokens into one message payload, tracking COLMETADATA for the rows that follow it. */
export function encodeTokens(tokens: readonly Token[], ctx: EncodeTokensContext): Buffer {
  const w = new Writer(1024);
  let columns = ctx.columns;
  for (const t of tokens) {
    writeToken(w, t, ctx, columns);
    if (t.kind === 'COLMETADATA' && t.columns !== null) columns = t.columns;
  }
  return w.finish();
}

/** Encodes a single token (ROW/NBCROW need `columns`). */
export function encodeToken(t: Token, ctx: TokenEncodeContext, columns?: readonly ColumnMetadata[]): Buffer {
  const w = new Writer(256);
  writeToken(w, t, ctx, columns);
  return w.finish();
}

/** Decodes one whole token (token byte included), e.g. a row a relay must rewrite. */
export function decodeToken(bytes: Buffer, ctx: TokenContext, columns?: readonly ColumnMetadata[]): Token {
  const frame = frameToken(bytes, 0, bytes.length, ctx, columns, { maxTokenLength: bytes.length + 1 }, 0);
  if (frame === NEED_MORE) throw new ProtocolError('token is truncated', bytes.length);
  if (frame.end !== bytes.length) throw new ProtocolError(`${bytes.length - frame.end} bytes after the token`, frame.end);
  return readToken(bytes, 0, frame, ctx, columns, 0);
}

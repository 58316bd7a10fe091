// Transaction Manager request (packet type 0x0E). [MS-TDS] 2.2.6.9.
//
//   TransMgrReq = ALL_HEADERS RequestType USHORT RequestPayload
//   TM_GET_DTC_ADDRESS (0)  US_VARBYTE (empty)
//   TM_PROPAGATE_XACT  (1)  US_VARBYTE transaction cookie
//   TM_BEGIN_XACT      (5)  ISOLATION_LEVEL BYTE, name B_VARBYTE (UTF-16LE)
//   TM_PROMOTE_XACT    (6)  nothing
//   TM_COMMIT_XACT     (7)  name B_VARBYTE, fBeginXact flags BYTE, [ISOLATION_LEVEL, name]
//   TM_ROLLBACK_XACT   (8)  as COMMIT
//   TM_SAVE_XACT       (9)  name B_VARBYTE
// The transaction name's length is in bytes (B_VARBYTE), as tedious and SQL Server send it.

import { readAllHeaders, writeAllHeaders, type Header } from './all-headers.js';
import { Reader, Writer } from './cursor.js';
import { type TdsContext, isTds72Plus } from './tds-version.js';

export const TM_REQUEST = {
  GET_DTC_ADDRESS: 0,
  PROPAGATE_XACT: 1,
  BEGIN_XACT: 5,
  PROMOTE_XACT: 6,
  COMMIT_XACT: 7,
  ROLLBACK_XACT: 8,
  SAVE_XACT: 9,
} as const;

export const ISOLATION_LEVEL = {
  NO_CHANGE: 0x00,
  READ_UNCOMMITTED: 0x01,
  READ_COMMITTED: 0x02,
  REPEATABLE_READ: 0x03,
  SERIALIZABLE: 0x04,
  SNAPSHOT: 0x05,
} as const;

export const TM_COMMIT_FLAG = {
  /** fBeginXact: begin a new transaction once this one ends. */
  BEGIN_XACT: 0x01,
} as const;

export interface TransMgrRequest {
  readonly headers?: readonly Header[];
  readonly requestType: number;
  /** BEGIN_XACT. */
  readonly isolationLevel?: number;
  /** BEGIN/COMMIT/ROLLBACK/SAVE: the transaction (or savepoint) name, '' when none. */
  readonly name?: string;
  /** COMMIT/ROLLBACK: the fBeginXact flags byte. */
  readonly flags?: number;
  /** COMMIT/ROLLBACK with fBeginXact: the transaction to begin. */
  readonly newTransaction?: { readonly isolationLevel: number; readonly name: string };
  /** GET_DTC_ADDRESS/PROPAGATE_XACT: the US_VARBYTE payload. */
  readonly payload?: Buffer;
}

function readName(r: Reader, what: string): string {
  const at = r.pos;
  const bytes = r.bVarbyte(what);
  if (bytes.length % 2 !== 0) r.fail(`${what} has an odd byte length ${bytes.length}`, at);
  return bytes.toString('utf16le');
}

function writeName(w: Writer, name: string, what: string): void {
  w.bVarbyte(Buffer.from(name, 'utf16le'), what);
}

export function decodeTransMgrRequest(payload: Buffer, ctx: TdsContext): TransMgrRequest {
  const r = new Reader(payload, 0, payload.length);
  const headers = isTds72Plus(ctx) ? readAllHeaders(r) : undefined;
  const at = r.pos;
  const requestType = r.u16le('TransMgr RequestType');
  const base = { ...(headers ? { headers } : {}), requestType };
  let out: TransMgrRequest;
  switch (requestType) {
    case TM_REQUEST.GET_DTC_ADDRESS:
    case TM_REQUEST.PROPAGATE_XACT:
      out = { ...base, payload: r.usVarbyte('TransMgr payload') };
      break;
    case TM_REQUEST.BEGIN_XACT:
      out = { ...base, isolationLevel: r.u8('isolation level'), name: readName(r, 'transaction name') };
      break;
    case TM_REQUEST.PROMOTE_XACT:
      out = base;
      break;
    case TM_REQUEST.COMMIT_XACT:
    case TM_REQUEST.ROLLBACK_XACT: {
      const name = readName(r, 'transaction name');
      const flags = r.u8('fBeginXact flags');
      if (flags & TM_COMMIT_FLAG.BEGIN_XACT) {
        const isolationLevel = r.u8('new transaction isolation level');
        out = { ...base, name, flags, newTransaction: { isolationLevel, name: readName(r, 'new transaction name') } };
      } else {
        out = { ...base, name, flags };
      }
      break;
    }
    case TM_REQUEST.SAVE_XACT:
      out = { ...base, name: readName(r, 'savepoint name') };
      break;
    default:
      return r.fail(`unknown TransMgr request type ${requestType}`, at);
  }
  r.expectEnd('TransMgr request');
  return out;
}

export function encodeTransMgrRequest(req: TransMgrRequest, ctx: TdsContext): Buffer {
  const w = new Writer(64);
  if (isTds72Plus(ctx)) writeAllHeaders(w, req.headers ?? []);
  else if (req.headers && req.headers.length > 0) throw new RangeError('ALL_HEADERS does not exist before TDS 7.2');
  w.u16le(req.requestType, 'TransMgr RequestType');
  switch (req.requestType) {
    case TM_REQUEST.GET_DTC_ADDRESS:
    case TM_REQUEST.PROPAGATE_XACT:
      w.usVarbyte(req.payload ?? Buffer.alloc(0), 'TransMgr payload');
      break;
    case TM_REQUEST.BEGIN_XACT:
      w.u8(req.isolationLevel ?? ISOLATION_LEVEL.NO_CHANGE, 'isolation level');
      writeName(w, req.name ?? '', 'transaction name');
      break;
    case TM_REQUEST.PROMOTE_XACT:
      break;
    case TM_REQUEST.COMMIT_XACT:
    case TM_REQUEST.ROLLBACK_XACT: {
      writeName(w, req.name ?? '', 'transaction name');
      const flags = (req.flags ?? 0) | (req.newTransaction ? TM_COMMIT_FLAG.BEGIN_XACT : 0);
      w.u8(flags, 'fBeginXact flags');
      if (flags & TM_COMMIT_FLAG.BEGIN_XACT) {
        if (!req.newTransaction) throw new RangeError('fBeginXact is set but newTransaction is missing');
        w.u8(req.newTransaction.isolationLevel, 'new transaction isolation level');
        writeName(w, req.newTransaction.name, 'new transaction name');
      }
      break;
    }
    case TM_REQUEST.SAVE_XACT:
      writeName(w, req.name ?? '', 'savepoint name');
      break;
    default:
      throw new RangeError(`unknown TransMgr request type ${req.requestType}`);
  }
  return w.finish();
}

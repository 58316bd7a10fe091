// ENVCHANGE (0xE3): the server reports an environment change. [MS-TDS] 2.2.7.9.
//   Length USHORT, Type BYTE, NewValue, OldValue; the value format depends on Type:
//   B_VARCHAR/B_VARCHAR  1 database, 2 language, 3 character set, 4 packet size, 5 Unicode sort
//                        locale id, 6 Unicode comparison flags, 13 mirroring partner, 19 user instance
//   B_VARBYTE/B_VARBYTE  7 SQL collation, 8 begin, 9 commit, 10 rollback transaction, 11 enlist
//                        DTC, 12 defect, 16 transaction manager address, 17 transaction ended,
//                        18 reset connection acknowledgement
//   L_VARBYTE/B_VARBYTE  15 promote transaction
//   routing/USHORT 0     20 routing: USHORT length, Protocol BYTE, port USHORT, server US_VARCHAR
// A type this codec does not know keeps its bytes, so the token still round-trips.

import type { Reader, Writer } from './cursor.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export const ENVCHANGE_TYPE = {
  DATABASE: 1,
  LANGUAGE: 2,
  CHARSET: 3,
  PACKET_SIZE: 4,
  UNICODE_SORTING_LOCALE_ID: 5,
  UNICODE_SORTING_COMPARISON_FLAGS: 6,
  SQL_COLLATION: 7,
  BEGIN_TRANSACTION: 8,
  COMMIT_TRANSACTION: 9,
  ROLLBACK_TRANSACTION: 10,
  ENLIST_DTC_TRANSACTION: 11,
  DEFECT_TRANSACTION: 12,
  DATABASE_MIRRORING_PARTNER: 13,
  PROMOTE_TRANSACTION: 15,
  TRANSACTION_MANAGER_ADDRESS: 16,
  TRANSACTION_ENDED: 17,
  RESET_CONNECTION_ACK: 18,
  USER_INSTANCE_NAME: 19,
  ROUTING: 20,
} as const;

/** Routing protocol byte: 0 = TCP. */
export const ROUTING_PROTOCOL_TCP = 0;

const TEXT_TYPES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 13, 19]);
const BYTE_TYPES: ReadonlySet<number> = new Set([7, 8, 9, 10, 11, 12, 16, 17, 18]);

export interface RoutingData {
  readonly protocol: number;
  readonly port: number;
  readonly server: string;
}

export type EnvChangeToken =
  | { readonly kind: 'ENVCHANGE'; readonly format: 'text'; readonly type: number; readonly newValue: string; readonly oldValue: string }
  | { readonly kind: 'ENVCHANGE'; readonly format: 'bytes'; readonly type: number; readonly newValue: Buffer; readonly oldValue: Buffer }
  | { readonly kind: 'ENVCHANGE'; readonly format: 'long'; readonly type: 15; readonly newValue: Buffer; readonly oldValue: Buffer }
  | { readonly kind: 'ENVCHANGE'; readonly format: 'routing'; readonly type: 20; readonly routing: RoutingData; readonly oldValue: Buffer }
  | { readonly kind: 'ENVCHANGE'; readonly format: 'raw'; readonly type: number; readonly data: Buffer };

/** The format a type's values take ('raw' for types this codec does not know). */
export function envChangeFormat(type: number): EnvChangeToken['format'] {
  if (TEXT_TYPES.has(type)) return 'text';
  if (BYTE_TYPES.has(type)) return 'bytes';
  if (type === ENVCHANGE_TYPE.PROMOTE_TRANSACTION) return 'long';
  if (type === ENVCHANGE_TYPE.ROUTING) return 'routing';
  return 'raw';
}

/** Reads the body (after the USHORT length); `r` ends where the token ends. */
export function readEnvChange(r: Reader): EnvChangeToken {
  const type = r.u8('ENVCHANGE type');
  let t: EnvChangeToken;
  switch (envChangeFormat(type)) {
    case 'text':
      t = { kind: 'ENVCHANGE', format: 'text', type, newValue: r.bVarchar('ENVCHANGE new value'), oldValue: r.bVarchar('ENVCHANGE old value') };
      break;
    case 'bytes':
      t = { kind: 'ENVCHANGE', format: 'bytes', type, newValue: r.bVarbyte('ENVCHANGE new value'), oldValue: r.bVarbyte('ENVCHANGE old value') };
      break;
    case 'long':
      t = { kind: 'ENVCHANGE', format: 'long', type: 15, newValue: r.lVarbyte('ENVCHANGE new value'), oldValue: r.bVarbyte('ENVCHANGE old value') };
      break;
    case 'routing': {
      const at = r.pos;
      const length = r.u16le('ENVCHANGE routing length');
      const start = r.pos;
      const routing = { protocol: r.u8('routing protocol'), port: r.u16le('routing port'), server: r.usVarchar('routing server') };
      if (r.pos - start !== length) r.fail(`ENVCHANGE routing data is ${r.pos - start} bytes, its length says ${length}`, at);
      t = { kind: 'ENVCHANGE', format: 'routing', type: 20, routing, oldValue: r.usVarbyte('ENVCHANGE routing old value') };
      break;
    }
    default:
      t = { kind: 'ENVCHANGE', format: 'raw', type, data: r.bytes(r.remaining, 'ENVCHANGE data') };
  }
  r.expectEnd('ENVCHANGE');
  return t;
}

export function writeEnvChange(w: Writer, t: EnvChangeToken): void {
  if (t.format !== 'raw' && envChangeFormat(t.type) !== t.format) {
    throw new RangeError(`ENVCHANGE type ${t.type} takes ${envChangeFormat(t.type)} values, not ${t.format}`);
  }
  const at = beginUShortToken(w, TOKEN.ENVCHANGE);
  w.u8(t.type, 'ENVCHANGE type');
  switch (t.format) {
    case 'text':
      w.bVarchar(t.newValue, 'ENVCHANGE new value').bVarchar(t.oldValue, 'ENVCHANGE old value');
      break;
    case 'bytes':
      w.bVarbyte(t.newValue, 'ENVCHANGE new value').bVarbyte(t.oldValue, 'ENVCHANGE old value');
      break;
    case 'long':
      w.lVarbyte(t.newValue).bVarbyte(t.oldValue, 'ENVCHANGE old value');
      break;
    case 'routing': {
      const lengthAt = w.pos;
      w.u16le(0).u8(t.routing.protocol, 'routing protocol').u16le(t.routing.port, 'routing port');
      w.usVarchar(t.routing.server, 'routing server');
      w.patchU16le(lengthAt, w.pos - lengthAt - 2);
      w.usVarbyte(t.oldValue, 'ENVCHANGE routing old value');
      break;
    }
    case 'raw':
      w.bytes(t.data);
  }
  endUShortToken(w, at, 'ENVCHANGE');
}

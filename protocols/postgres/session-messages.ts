// Small backend messages of the session lifecycle: ParameterStatus ('S'), BackendKeyData ('K'),
// ReadyForQuery ('Z'), NegotiateProtocolVersion ('v').
// https://www.postgresql.org/docs/current/protocol-message-formats.html
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { Backend, TransactionStatus, type TransactionStatusByte } from './codes.js';

function open(msg: Buffer, code: number, what: string): Reader {
  const r = new Reader(msg);
  if (r.byte() !== code) throw new ProtocolError(`not a ${what} message`, 0);
  const len = r.int32('length');
  if (len + 1 !== msg.length) throw new ProtocolError(`${what} length ${len} does not match the frame`, 1);
  return r;
}

export function decodeParameterStatus(msg: Buffer): { name: string; value: string } {
  const r = open(msg, Backend.parameterStatus, 'ParameterStatus');
  const name = r.cstring('parameter name');
  const value = r.cstring('parameter value');
  r.done('ParameterStatus');
  return { name, value };
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return new Writer().begin(Backend.parameterStatus).cstring(name).cstring(value).end().toBuffer();
}

export interface BackendKeyData {
  processId: number;
  secretKey: number;
}

export function decodeBackendKeyData(msg: Buffer): BackendKeyData {
  const r = open(msg, Backend.backendKeyData, 'BackendKeyData');
  const processId = r.int32('process id');
  const secretKey = r.int32('secret key');
  r.done('BackendKeyData');
  return { processId, secretKey };
}

export function encodeBackendKeyData(key: BackendKeyData): Buffer {
  return new Writer(13).begin(Backend.backendKeyData).int32(key.processId).int32(key.secretKey).end().toBuffer();
}

const statuses = new Set<number>(Object.values(TransactionStatus));

export function decodeReadyForQuery(msg: Buffer): TransactionStatusByte {
  const r = open(msg, Backend.readyForQuery, 'ReadyForQuery');
  const status = r.byte('transaction status');
  r.done('ReadyForQuery');
  if (!statuses.has(status)) throw new ProtocolError(`unknown transaction status 0x${status.toString(16)}`, 5);
  return status as TransactionStatusByte;
}

export function encodeReadyForQuery(status: TransactionStatusByte): Buffer {
  return new Writer(6).begin(Backend.readyForQuery).byte(status).end().toBuffer();
}

export interface NegotiateProtocolVersion {
  /** Newest minor protocol version the server supports for the client's major version. */
  newestMinor: number;
  /** Protocol options (_pq_.*) the server did not recognize. */
  unrecognized: string[];
}

export function decodeNegotiateProtocolVersion(msg: Buffer): NegotiateProtocolVersion {
  const r = open(msg, Backend.negotiateProtocolVersion, 'NegotiateProtocolVersion');
  const newestMinor = r.int32('newest minor version');
  const count = r.int32('option count');
  if (count < 0 || count > r.remaining) throw new ProtocolError(`invalid option count ${count}`, 9);
  const unrecognized: string[] = [];
  for (let i = 0; i < count; i++) unrecognized.push(r.cstring('option name'));
  r.done('NegotiateProtocolVersion');
  return { newestMinor, unrecognized };
}

export function encodeNegotiateProtocolVersion(v: NegotiateProtocolVersion): Buffer {
  const w = new Writer().begin(Backend.negotiateProtocolVersion).int32(v.newestMinor).int32(v.unrecognized.length);
  for (const o of v.unrecognized) w.cstring(o);
  return w.end().toBuffer();
}

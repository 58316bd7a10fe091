// StartupMessage, SSLRequest, GSSENCRequest, CancelRequest: the untyped packets a client may send
// first. https://www.postgresql.org/docs/current/protocol-message-formats.html (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest) and protocol-flow.html#PROTOCOL-FLOW-START-UP
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { MAX_STARTUP_PACKET, StartupCode } from './codes.js';

export interface StartupMessage {
  kind: 'startup';
  /** Requested protocol version: major << 16 | minor. */
  version: number;
  /** Parameters in the order the client sent them (user, database, options, application_name, _pq_.* …). */
  params: Map<string, string>;
}
export interface SslRequest {
  kind: 'ssl';
}
export interface GssEncRequest {
  kind: 'gssenc';
}
export interface CancelRequest {
  kind: 'cancel';
  processId: number;
  secretKey: number;
}
export type StartupPacket = StartupMessage | SslRequest | GssEncRequest | CancelRequest;

/**
 * Length of the first complete startup packet in `buf`, 0 when more bytes are needed.
 * Throws ProtocolError on an impossible length.
 */
export function startupPacketLength(buf: Buffer): number {
  if (buf.length < 4) return 0;
  const len = buf.readInt32BE(0);
  if (len < 8 || len > MAX_STARTUP_PACKET) {
    throw new ProtocolError(`invalid startup packet length ${len}`, 0);
  }
  return buf.length >= len ? len : 0;
}

/** Decodes one complete untyped startup packet (as framed by startupPacketLength). */
export function decodeStartupPacket(packet: Buffer): StartupPacket {
  const r = new Reader(packet);
  const len = r.int32('length');
  if (len !== packet.length) throw new ProtocolError(`startup packet length ${len} != ${packet.length}`, 0);
  const code = r.int32('protocol code');
  switch (code) {
    case StartupCode.sslRequest:
      r.done('SSLRequest');
      return { kind: 'ssl' };
    case StartupCode.gssEncRequest:
      r.done('GSSENCRequest');
      return { kind: 'gssenc' };
    case StartupCode.cancelRequest: {
      const processId = r.int32('process id');
      const secretKey = r.int32('secret key');
      r.done('CancelRequest');
      return { kind: 'cancel', processId, secretKey };
    }
    default: {
      if (code >>> 16 !== 3) {
        throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`, 4);
      }
      const params = new Map<string, string>();
      for (;;) {
        const name = r.cstring('parameter name');
        if (name === '') break;
        const value = r.cstring(`value of parameter "${name}"`);
        if (params.has(name)) throw new ProtocolError(`duplicate startup parameter "${name}"`, r.offset);
        params.set(name, value);
      }
      r.done('StartupMessage');
      return { kind: 'startup', version: code, params };
    }
  }
}

export function encodeStartupMessage(params: Iterable<[string, string]>, version: number = StartupCode.protocol30): Buffer {
  const w = new Writer().begin().int32(version);
  for (const [k, v] of params) w.cstring(k).cstring(v);
  return w.byte(0).end().toBuffer();
}

export function encodeSslRequest(): Buffer {
  return new Writer(8).begin().int32(StartupCode.sslRequest).end().toBuffer();
}

export function encodeGssEncRequest(): Buffer {
  return new Writer(8).begin().int32(StartupCode.gssEncRequest).end().toBuffer();
}

export function encodeCancelRequest(processId: number, secretKey: number): Buffer {
  return new Writer(16).begin().int32(StartupCode.cancelRequest).int32(processId).int32(secretKey).end().toBuffer();
}

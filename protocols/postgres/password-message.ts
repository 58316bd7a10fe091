// PasswordMessage, SASLInitialResponse and SASLResponse: all type 'p'; which one is meant
// depends on what the server asked for. https://www.postgresql.org/docs/current/protocol-message-formats.html
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { Frontend } from './codes.js';

function open(msg: Buffer, what: string): Reader {
  const r = new Reader(msg);
  if (r.byte() !== Frontend.password) throw new ProtocolError(`expected ${what} ('p')`, 0);
  r.int32('length');
  return r;
}

/** PasswordMessage: a NUL-terminated password (cleartext, or "md5" + hex digest). */
export function decodePasswordMessage(msg: Buffer): string {
  const r = open(msg, 'PasswordMessage');
  const password = r.cstring('password');
  r.done('PasswordMessage');
  return password;
}

export function encodePasswordMessage(password: string): Buffer {
  return new Writer(password.length + 8).begin(Frontend.password).cstring(password).end().toBuffer();
}

export interface SaslInitialResponse {
  mechanism: string;
  /** null when the client sent length -1 (no initial response). */
  data: Buffer | null;
}

export function decodeSaslInitialResponse(msg: Buffer): SaslInitialResponse {
  const r = open(msg, 'SASLInitialResponse');
  const mechanism = r.cstring('SASL mechanism');
  const data = r.lengthPrefixed('SASL initial response');
  r.done('SASLInitialResponse');
  return { mechanism, data: data && Buffer.from(data) };
}

export function encodeSaslInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  return new Writer().begin(Frontend.password).cstring(mechanism).lengthPrefixed(data).end().toBuffer();
}

export function decodeSaslResponse(msg: Buffer): Buffer {
  return Buffer.from(open(msg, 'SASLResponse').rest());
}

export function encodeSaslResponse(data: Buffer): Buffer {
  return new Writer().begin(Frontend.password).bytes(data).end().toBuffer();
}

// Authentication* messages ('R'): the server's requests during login.
// https://www.postgresql.org/docs/current/protocol-message-formats.html (AuthenticationOk … AuthenticationSASLFinal)
import { ProtocolError } from '../errors.js';
import { Reader } from './buffer-reader.js';
import { Writer } from './buffer-writer.js';
import { AuthCode, Backend } from './codes.js';

export type Authentication =
  | { type: 'ok' }
  | { type: 'cleartext-password' }
  | { type: 'md5-password'; salt: Buffer }
  | { type: 'sasl'; mechanisms: string[] }
  | { type: 'sasl-continue'; data: Buffer }
  | { type: 'sasl-final'; data: Buffer }
  | { type: 'unsupported'; code: number };

export function decodeAuthentication(msg: Buffer): Authentication {
  const r = new Reader(msg);
  if (r.byte() !== Backend.authentication) throw new ProtocolError('not an Authentication message', 0);
  r.int32('length');
  const code = r.int32('authentication code');
  switch (code) {
    case AuthCode.ok:
      r.done('AuthenticationOk');
      return { type: 'ok' };
    case AuthCode.cleartextPassword:
      r.done('AuthenticationCleartextPassword');
      return { type: 'cleartext-password' };
    case AuthCode.md5Password: {
      const salt = Buffer.from(r.bytes(4, 'salt'));
      r.done('AuthenticationMD5Password');
      return { type: 'md5-password', salt };
    }
    case AuthCode.sasl: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring('SASL mechanism');
        if (m === '') break;
        mechanisms.push(m);
      }
      r.done('AuthenticationSASL');
      return { type: 'sasl', mechanisms };
    }
    case AuthCode.saslContinue:
      return { type: 'sasl-continue', data: Buffer.from(r.rest()) };
    case AuthCode.saslFinal:
      return { type: 'sasl-final', data: Buffer.from(r.rest()) };
    default:
      return { type: 'unsupported', code };
  }
}

export function encodeAuthentication(auth: Exclude<Authentication, { type: 'unsupported' }>): Buffer {
  const w = new Writer(32).begin(Backend.authentication);
  switch (auth.type) {
    case 'ok':
      w.int32(AuthCode.ok);
      break;
    case 'cleartext-password':
      w.int32(AuthCode.cleartextPassword);
      break;
    case 'md5-password':
      w.int32(AuthCode.md5Password).bytes(auth.salt);
      break;
    case 'sasl':
      w.int32(AuthCode.sasl);
      for (const m of auth.mechanisms) w.cstring(m);
      w.byte(0);
      break;
    case 'sasl-continue':
      w.int32(AuthCode.saslContinue).bytes(auth.data);
      break;
    case 'sasl-final':
      w.int32(AuthCode.saslFinal).bytes(auth.data);
      break;
  }
  return w.end().toBuffer();
}

// Federated Authentication Token message (packet type 0x08): the token a client fetched after
// the server's FEDAUTHINFO (ADAL/MSAL workflows). [MS-TDS] 2.2.6.3.
//   DataLen DWORD (bytes that follow), FedAuthToken L_VARBYTE (UTF-16LE), [Nonce 32 bytes].

import { Reader, Writer } from './cursor.js';
import { FEDAUTH_NONCE_LENGTH } from './feature-ext.js';

export interface FedAuthTokenMessage {
  /** The access token (a JWT for Azure AD), decoded from UTF-16LE. */
  readonly token: string;
  readonly nonce?: Buffer;
}

export function decodeFedAuthToken(payload: Buffer): FedAuthTokenMessage {
  const r = new Reader(payload, 0, payload.length);
  const dataLength = r.u32le('FEDAUTH DataLen');
  if (dataLength !== r.remaining) r.fail(`FEDAUTH DataLen ${dataLength} does not match the ${r.remaining} bytes that follow`, 0);
  const at = r.pos;
  const tokenBytes = r.lVarbyte('FEDAUTH token');
  if (tokenBytes.length % 2 !== 0) r.fail(`FEDAUTH token has an odd byte length ${tokenBytes.length}`, at);
  const token = tokenBytes.toString('utf16le');
  if (r.remaining === 0) return { token };
  if (r.remaining !== FEDAUTH_NONCE_LENGTH) r.fail(`FEDAUTH nonce must be 32 bytes, got ${r.remaining}`);
  return { token, nonce: r.bytes(FEDAUTH_NONCE_LENGTH, 'FEDAUTH nonce') };
}

export function encodeFedAuthToken(m: FedAuthTokenMessage): Buffer {
  const token = Buffer.from(m.token, 'utf16le');
  if (m.nonce && m.nonce.length !== FEDAUTH_NONCE_LENGTH) throw new RangeError('FEDAUTH nonce must be 32 bytes');
  const w = new Writer(8 + token.length + FEDAUTH_NONCE_LENGTH);
  w.u32le(4 + token.length + (m.nonce ? FEDAUTH_NONCE_LENGTH : 0)).lVarbyte(token);
  if (m.nonce) w.bytes(m.nonce);
  return w.finish();
}

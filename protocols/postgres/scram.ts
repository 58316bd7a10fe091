// SCRAM-SHA-256 client side (RFC 5802 / RFC 7677), as PostgreSQL uses it (no channel binding:
// gs2 header "n,,"; the user name is left empty because PostgreSQL takes it from the startup packet).
// https://www.postgresql.org/docs/current/sasl-authentication.html
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../errors.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

export interface ScramClient {
  clientFirst: Buffer;
  clientNonce: string;
  clientFirstBare: string;
}

export function scramClientFirst(nonce = randomBytes(18).toString('base64')): ScramClient {
  const clientFirstBare = `n=*,r=${nonce}`;
  return { clientFirst: Buffer.from(`n,,${clientFirstBare}`), clientNonce: nonce, clientFirstBare };
}

function attributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ProtocolError(`malformed SCRAM attribute "${part.slice(0, 20)}"`);
    out.set(part[0] as string, part.slice(2));
  }
  return out;
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();

export interface ScramFinal {
  clientFinal: Buffer;
  /** The ServerSignature the server must send back in its final message. */
  expectedServerSignature: Buffer;
}

/** Computes the client-final message from the server-first message. */
export function scramClientFinal(client: ScramClient, serverFirst: Buffer, password: string): ScramFinal {
  const serverFirstText = serverFirst.toString('utf8');
  const attrs = attributes(serverFirstText);
  const nonce = attrs.get('r');
  const salt = attrs.get('s');
  const iterations = Number(attrs.get('i'));
  if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) {
    throw new ProtocolError('malformed SCRAM server-first message');
  }
  if (!nonce.startsWith(client.clientNonce) || nonce.length === client.clientNonce.length) {
    throw new ProtocolError('SCRAM server nonce does not extend the client nonce');
  }
  if (iterations > 10_000_000) throw new ProtocolError(`SCRAM iteration count ${iterations} is unreasonable`);
  const saltedPassword = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const clientFinalWithoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${client.clientFirstBare},${serverFirstText},${clientFinalWithoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] as number) ^ (clientSignature[i] as number);
  const serverKey = hmac(saltedPassword, 'Server Key');
  return {
    clientFinal: Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`),
    expectedServerSignature: hmac(serverKey, authMessage),
  };
}

/** Checks the server-final message; throws ProtocolError if the server did not prove it knows the password. */
export function scramVerifyServerFinal(final: ScramFinal, serverFinal: Buffer): void {
  const attrs = attributes(serverFinal.toString('utf8'));
  const err = attrs.get('e');
  if (err) throw new ProtocolError(`SCRAM authentication failed: ${err}`);
  const v = attrs.get('v');
  if (!v) throw new ProtocolError('SCRAM server-final message has no signature');
  const sig = Buffer.from(v, 'base64');
  if (sig.length !== final.expectedServerSignature.length || !timingSafeEqual(sig, final.expectedServerSignature)) {
    throw new ProtocolError('SCRAM server signature does not match');
  }
}

/** PostgreSQL's MD5 password response: "md5" + md5hex(md5hex(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`;
}

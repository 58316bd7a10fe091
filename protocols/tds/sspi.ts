// SSPI (0xED): an SSPI/Kerberos/NTLM challenge from the server. [MS-TDS] 2.2.7.22.
//   Length USHORT, SSPIBuffer.

import type { Reader, Writer } from './cursor.js';
import { TOKEN, beginUShortToken, endUShortToken } from './token-codes.js';

export interface SspiToken {
  readonly kind: 'SSPI';
  readonly data: Buffer;
}

export function readSspi(r: Reader): SspiToken {
  return { kind: 'SSPI', data: r.bytes(r.remaining, 'SSPI buffer') };
}

export function writeSspi(w: Writer, t: SspiToken): void {
  const at = beginUShortToken(w, TOKEN.SSPI);
  w.bytes(t.data);
  endUShortToken(w, at, 'SSPI');
}

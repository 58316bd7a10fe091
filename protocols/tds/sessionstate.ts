// SESSIONSTATE (0xE4): session recovery state, sent only when the client negotiated the
// SESSIONRECOVERY feature. [MS-TDS] 2.2.7.21. Length DWORD, then the data (kept raw).

import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';

export interface SessionStateToken {
  readonly kind: 'SESSIONSTATE';
  readonly data: Buffer;
}

export function readSessionState(r: Reader): SessionStateToken {
  return { kind: 'SESSIONSTATE', data: r.bytes(r.remaining, 'SESSIONSTATE data') };
}

export function writeSessionState(w: Writer, t: SessionStateToken): void {
  w.u8(TOKEN.SESSIONSTATE).lVarbyte(t.data);
}

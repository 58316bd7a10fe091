// FEATUREEXTACK (0xAE): the server's answer to the LOGIN7 FeatureExt list. [MS-TDS] 2.2.7.11.
//   1*(FeatureId BYTE, FeatureAckDataLen DWORD, FeatureAckData) then TERMINATOR 0xFF.
// No length prefix: measureFeatureExtAck() finds the end for the incremental parser.

import { ProtocolError } from '../errors.js';
import type { Reader, Writer } from './cursor.js';
import { FEATURE_ID, type FeatureExt, readFeatureList, writeFeatureList } from './feature-ext.js';
import { TOKEN } from './token-codes.js';
import { NEED_MORE } from './type-info.js';

export interface FeatureExtAckToken {
  readonly kind: 'FEATUREEXTACK';
  readonly features: readonly FeatureExt[];
}

export function readFeatureExtAck(r: Reader): FeatureExtAckToken {
  return { kind: 'FEATUREEXTACK', features: readFeatureList(r, 'FEATUREEXTACK') };
}

export function writeFeatureExtAck(w: Writer, t: FeatureExtAckToken): void {
  w.u8(TOKEN.FEATUREEXTACK);
  writeFeatureList(w, t.features);
}

/**
 * End of the token body starting at `pos` (after the token byte), or NEED_MORE. A declared
 * feature length reaching past `limit` is a ProtocolError.
 */
export function measureFeatureExtAck(buf: Buffer, pos: number, end: number, limit: number, origin: number): number {
  let p = pos;
  for (;;) {
    if (p >= end) return NEED_MORE;
    if (buf[p] === FEATURE_ID.TERMINATOR) return p + 1;
    if (p + 5 > end) return NEED_MORE;
    const next = p + 5 + buf.readUInt32LE(p + 1);
    if (next > limit) throw new ProtocolError('FEATUREEXTACK feature data exceeds the token size cap', p - origin);
    p = next;
    if (p > end) return NEED_MORE;
  }
}

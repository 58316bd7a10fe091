// HMAC-SHA-256 streams shared by the keyed strategies (hash, format): deterministic for a key
// and a value, so equal values mask equally (joins and group-bys keep working on masked data).
import { createHmac } from 'node:crypto';

const DIGEST_BYTES = 32;

export function hmac(key: Uint8Array, value: string): Buffer {
  return createHmac('sha256', key).update(value, 'utf8').digest();
}

/** At least `n` pseudo-random bytes for (key, value): HMAC(key, value), then HMAC(key, counter ‖ value) blocks. */
export function keyedStream(key: Uint8Array, value: string, n: number): Buffer {
  const first = hmac(key, value);
  if (n <= DIGEST_BYTES) return first;
  const blocks = [first];
  for (let i = 1; blocks.length * DIGEST_BYTES < n; i++) {
    blocks.push(createHmac('sha256', key).update(`${i}\u0000`, 'utf8').update(value, 'utf8').digest());
  }
  return Buffer.concat(blocks);
}

// Checkpoints and seals are compact JWS (RFC 7515) signed with EdDSA (Ed25519). They are produced
// synchronously with node:crypto so that a checkpoint lands exactly where it is due in the chain
// (jose's signing API is asynchronous, and an await there would let other records slip in between
// the record a mark covers and the mark itself). They are standard JWS: verification uses jose.

import { sign, verify, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { SigningKey, VerifyKey } from './keys.js';

export const MARK_TYPE = 'warden-transcript-mark';

/** What a checkpoint or seal signs. */
export interface SignedMark {
  typ: 'checkpoint' | 'seal';
  instance: string;
  /** Segment number and file name the mark sits in. */
  segment: number;
  file: string;
  /** The last record covered (the one just before the mark) and its hash. */
  seq: number;
  hash: string;
  /** Records in the segment from its `open` record up to and including `seq`. */
  records: number;
  /** Seq of the segment's `open` record. */
  firstSeq: number;
  /** When the mark was made (ISO 8601). */
  ts: string;
  /**
   * Where the chain begins, once retention (`transcripts.retention`) removed its oldest segments:
   * absent while it begins at its first record. Every later mark repeats it, so the newest mark
   * says which segments must still be present.
   */
  start?: ChainStart;
}

/** The first segment kept after retention removed the ones before it. */
export interface ChainStart {
  /** Its segment number and file name. */
  segment: number;
  file: string;
  /** Seq of its first record (its `open`), and that record's `prev`: the hash of the last record removed. */
  seq: number;
  prev: string;
  /** When the segments before it were removed (ISO 8601). */
  ts: string;
}

export function signMark(key: SigningKey, mark: SignedMark): string {
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: key.kid, typ: MARK_TYPE })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(mark)).toString('base64url');
  const signingInput = `${header}.${payload}`;
  return `${signingInput}.${sign(null, Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
}

/**
 * A mark this writer's own key signed, checked synchronously (node:crypto), or undefined: for the
 * writer, which must not trust what any other key, or none, says (retention reads a seal's time).
 */
export function ownMark(jws: string, publicKey: KeyObject): SignedMark | undefined {
  const [header, payload, signature] = jws.split('.');
  if (header === undefined || payload === undefined || signature === undefined) return undefined;
  try {
    const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown; typ?: unknown };
    if (h.alg !== 'EdDSA' || h.typ !== MARK_TYPE) return undefined;
    if (!verify(null, Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'))) return undefined;
    return asMark(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
  } catch {
    return undefined;
  }
}

export type MarkCheck =
  | { ok: true; mark: SignedMark; kid: string }
  | { ok: false; reason: string; kid?: string; mark?: SignedMark };

/** Verifies a mark's signature against any of `keys`, then its payload's shape. */
export async function verifyMark(jws: string, keys: readonly VerifyKey[]): Promise<MarkCheck> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(jws);
    kid = typeof header.kid === 'string' ? header.kid : undefined;
  } catch {
    return { ok: false, reason: 'the signature is not a compact JWS' };
  }
  const claimed = peekMark(jws);
  const withKid = <T extends object>(v: T): T => (kid === undefined ? v : { ...v, kid });
  const withMark = <T extends object>(v: T): T => (claimed === undefined ? v : { ...v, mark: claimed });
  const candidates = kid === undefined ? keys : [...keys.filter((k) => k.kid === kid), ...keys.filter((k) => k.kid !== kid)];
  for (const key of candidates) {
    try {
      const { payload, protectedHeader } = await compactVerify(jws, key.publicKey, { algorithms: ['EdDSA', 'Ed25519'] });
      if (protectedHeader.typ !== MARK_TYPE) return withMark(withKid({ ok: false, reason: `unexpected JWS type ${String(protectedHeader.typ)}` }));
      const mark = asMark(JSON.parse(new TextDecoder().decode(payload)));
      if (!mark) return withKid({ ok: false, reason: 'the signed payload is not a transcript mark' });
      return { ok: true, mark, kid: key.kid };
    } catch {
      // try the next key
    }
  }
  const known = keys.map((k) => k.kid).join(', ');
  const reason =
    kid !== undefined && !keys.some((k) => k.kid === kid)
      ? `signed by key ${kid}, not by the trusted key (${known})`
      : `the signature does not verify with the trusted key (${known})`;
  return withMark(withKid({ ok: false, reason }));
}

/** Decodes a mark's payload without checking the signature (for messages only). */
export function peekMark(jws: string): SignedMark | undefined {
  const part = jws.split('.')[1];
  if (part === undefined) return undefined;
  try {
    return asMark(JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
  } catch {
    return undefined;
  }
}

function asMark(v: unknown): SignedMark | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const m = v as Record<string, unknown>;
  const ok =
    (m.typ === 'checkpoint' || m.typ === 'seal') &&
    typeof m.instance === 'string' &&
    Number.isSafeInteger(m.segment) &&
    typeof m.file === 'string' &&
    Number.isSafeInteger(m.seq) &&
    typeof m.hash === 'string' &&
    Number.isSafeInteger(m.records) &&
    Number.isSafeInteger(m.firstSeq) &&
    typeof m.ts === 'string' &&
    (m.start === undefined || isChainStart(m.start));
  return ok ? (m as unknown as SignedMark) : undefined;
}

function isChainStart(v: unknown): v is ChainStart {
  if (!v || typeof v !== 'object') return false;
  const s = v as Record<string, unknown>;
  return Number.isSafeInteger(s.segment) && typeof s.file === 'string' && Number.isSafeInteger(s.seq) && typeof s.prev === 'string' && typeof s.ts === 'string';
}

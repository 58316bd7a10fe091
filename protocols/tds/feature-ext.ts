// FeatureExt: the feature list at the end of a TDS 7.4 LOGIN7, and the FEDAUTH feature's data.
// [MS-TDS] 2.2.6.4 (LOGIN7: FeatureExt = 1*FeatureOpt TERMINATOR; FeatureOpt = FeatureId BYTE,
// FeatureDataLen DWORD, FeatureData; FEDAUTH FeatureData = Options BYTE (fFedAuthEcho in bit 0,
// bFedAuthLibrary in bits 1-7), then per library: SECURITYTOKEN: FedAuthToken L_VARBYTE
// (UTF-16LE) and an optional 32-byte Nonce; ADAL/MSAL: Workflow BYTE).
// The same list shape comes back in the FEATUREEXTACK token (2.2.7.11).

import { Reader, Writer } from './cursor.js';

export const FEATURE_ID = {
  SESSIONRECOVERY: 0x01,
  FEDAUTH: 0x02,
  COLUMNENCRYPTION: 0x04,
  GLOBALTRANSACTIONS: 0x05,
  AZURESQLSUPPORT: 0x08,
  DATACLASSIFICATION: 0x09,
  UTF8_SUPPORT: 0x0a,
  AZURESQLDNSCACHING: 0x0b,
  TERMINATOR: 0xff,
} as const;

export const FEDAUTH_LIBRARY = {
  LIVE_ID: 0x00,
  SECURITY_TOKEN: 0x01,
  /** ADAL/MSAL: the client obtains the token after the server's FEDAUTHINFO. */
  ADAL: 0x02,
} as const;

export const FEDAUTH_WORKFLOW = {
  USERNAME_PASSWORD: 0x01,
  INTEGRATED: 0x02,
  INTERACTIVE: 0x03,
} as const;

export interface FeatureExt {
  readonly featureId: number;
  readonly data: Buffer;
}

export const FEDAUTH_NONCE_LENGTH = 32;
/** Cap on a FeatureExt list's total size (LOGIN7 itself is capped at 128 KiB by the spec). */
const MAX_FEATURES = 64;

/** Reads FeatureOpts up to and including the terminator. */
export function readFeatureList(r: Reader, what: string): FeatureExt[] {
  const out: FeatureExt[] = [];
  for (;;) {
    const featureId = r.u8(`${what} FeatureId`);
    if (featureId === FEATURE_ID.TERMINATOR) return out;
    if (out.length >= MAX_FEATURES) r.fail(`${what} has more than ${MAX_FEATURES} features`);
    out.push({ featureId, data: r.lVarbyte(`${what} feature 0x${featureId.toString(16)}`) });
  }
}

export function writeFeatureList(w: Writer, features: readonly FeatureExt[]): void {
  for (const f of features) {
    if (f.featureId === FEATURE_ID.TERMINATOR) throw new RangeError('feature id 0xFF is the terminator');
    w.u8(f.featureId, 'FeatureId').lVarbyte(f.data);
  }
  w.u8(FEATURE_ID.TERMINATOR);
}

export interface FedAuthFeature {
  readonly library: number;
  readonly echo: boolean;
  /** SECURITY_TOKEN: the access token (a JWT for Azure AD), decoded from UTF-16LE. */
  readonly token?: string;
  /** SECURITY_TOKEN: the nonce the server sent in PRELOGIN, echoed back. */
  readonly nonce?: Buffer;
  /** ADAL: the workflow byte. */
  readonly workflow?: number;
  /** Any other library: its data after the options byte. */
  readonly data?: Buffer;
}

export function decodeFedAuthFeature(data: Buffer): FedAuthFeature {
  const r = new Reader(data, 0, data.length);
  const options = r.u8('FEDAUTH options');
  const library = options >> 1;
  const echo = (options & 1) === 1;
  switch (library) {
    case FEDAUTH_LIBRARY.SECURITY_TOKEN: {
      const at = r.pos;
      const tokenBytes = r.lVarbyte('FEDAUTH token');
      if (tokenBytes.length % 2 !== 0) r.fail(`FEDAUTH token has an odd byte length ${tokenBytes.length}`, at);
      const token = tokenBytes.toString('utf16le');
      if (r.remaining === 0) return { library, echo, token };
      if (r.remaining !== FEDAUTH_NONCE_LENGTH) r.fail(`FEDAUTH nonce must be 32 bytes, got ${r.remaining}`);
      return { library, echo, token, nonce: r.bytes(FEDAUTH_NONCE_LENGTH, 'FEDAUTH nonce') };
    }
    case FEDAUTH_LIBRARY.ADAL: {
      const workflow = r.u8('FEDAUTH workflow');
      r.expectEnd('FEDAUTH feature data');
      return { library, echo, workflow };
    }
    default:
      return { library, echo, data: r.bytes(r.remaining, 'FEDAUTH data') };
  }
}

export function encodeFedAuthFeature(f: FedAuthFeature): Buffer {
  if (!Number.isInteger(f.library) || f.library < 0 || f.library > 0x7f) throw new RangeError(`FEDAUTH library out of range: ${f.library}`);
  const w = new Writer(64);
  w.u8((f.library << 1) | (f.echo ? 1 : 0));
  switch (f.library) {
    case FEDAUTH_LIBRARY.SECURITY_TOKEN:
      if (f.token === undefined) throw new RangeError('FEDAUTH SECURITY_TOKEN needs a token');
      w.lVarbyte(Buffer.from(f.token, 'utf16le'));
      if (f.nonce) {
        if (f.nonce.length !== FEDAUTH_NONCE_LENGTH) throw new RangeError('FEDAUTH nonce must be 32 bytes');
        w.bytes(f.nonce);
      }
      break;
    case FEDAUTH_LIBRARY.ADAL:
      w.u8(f.workflow ?? FEDAUTH_WORKFLOW.USERNAME_PASSWORD, 'FEDAUTH workflow');
      break;
    default:
      w.bytes(f.data ?? Buffer.alloc(0));
  }
  return w.finish();
}

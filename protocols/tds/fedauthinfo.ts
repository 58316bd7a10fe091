// FEDAUTHINFO (0xEE): what a client needs to fetch a federated-authentication token (TDS 7.4).
// [MS-TDS] 2.2.7.12.
//   TokenLength DWORD, CountOfInfoIDs DWORD, CountOfInfoIDs x (FedAuthInfoID BYTE,
//   FedAuthInfoDataLen DWORD, FedAuthInfoDataOffset DWORD), then the data. Offsets count from
//   the start of CountOfInfoIDs. STSURL and SPN data are UTF-16LE strings.

import type { Reader, Writer } from './cursor.js';
import { TOKEN } from './token-codes.js';

export const FEDAUTHINFO_ID = {
  STSURL: 0x01,
  SPN: 0x02,
} as const;

export interface FedAuthInfoOption {
  readonly id: number;
  readonly data: Buffer;
}

export interface FedAuthInfoToken {
  readonly kind: 'FEDAUTHINFO';
  readonly options: readonly FedAuthInfoOption[];
}

const OPTION_SIZE = 9;

/** Reads the body after TokenLength; `r` ends where the token ends. */
export function readFedAuthInfo(r: Reader): FedAuthInfoToken {
  const base = r.pos;
  const bodyLength = r.remaining;
  const count = r.u32le('FEDAUTHINFO CountOfInfoIDs');
  if (count * OPTION_SIZE > r.remaining) r.fail(`FEDAUTHINFO claims ${count} options, more than fit`, base);
  const options: FedAuthInfoOption[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const id = r.u8('FedAuthInfoID');
    const length = r.u32le('FedAuthInfoDataLen');
    const offset = r.u32le('FedAuthInfoDataOffset');
    if (offset < 4 + count * OPTION_SIZE || offset + length > bodyLength) {
      r.fail(`FEDAUTHINFO option ${id} data at ${offset}+${length} lies outside the token`, at);
    }
    options.push({ id, data: Buffer.from(r.buf.subarray(base + offset, base + offset + length)) });
  }
  r.pos = r.end;
  return { kind: 'FEDAUTHINFO', options };
}

export function writeFedAuthInfo(w: Writer, t: FedAuthInfoToken): void {
  const dataStart = 4 + t.options.length * OPTION_SIZE;
  const bodyLength = dataStart + t.options.reduce((n, o) => n + o.data.length, 0);
  w.u8(TOKEN.FEDAUTHINFO).u32le(bodyLength).u32le(t.options.length);
  let offset = dataStart;
  for (const o of t.options) {
    w.u8(o.id, 'FedAuthInfoID').u32le(o.data.length).u32le(offset);
    offset += o.data.length;
  }
  for (const o of t.options) w.bytes(o.data);
}

/** The STS URL and SPN as strings, when present. */
export function fedAuthInfoStrings(t: FedAuthInfoToken): { stsUrl?: string; spn?: string } {
  const get = (id: number): string | undefined => t.options.find((o) => o.id === id)?.data.toString('utf16le');
  const stsUrl = get(FEDAUTHINFO_ID.STSURL);
  const spn = get(FEDAUTHINFO_ID.SPN);
  return { ...(stsUrl !== undefined ? { stsUrl } : {}), ...(spn !== undefined ? { spn } : {}) };
}

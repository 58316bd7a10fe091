// PRELOGIN: the first message of a TDS 7.x session, in both directions (client: packet type
// 0x12; server reply: 0x04). [MS-TDS] 2.2.6.5; example in 4.1.
//
// The payload is a list of option headers (PL_OPTION_TOKEN BYTE, PL_OFFSET USHORT, PL_OPTION_LENGTH
// USHORT, both big-endian), a TERMINATOR 0xFF, then the option data the offsets point at.
// When a PRELOGIN packet carries a TLS handshake instead, its payload is raw TLS bytes: that is
// not a PRELOGIN structure and must not be fed to decodePrelogin().
//
// Decoding keeps every option, including zero-length ones and unknown tokens, so that encoding a
// decoded message gives back the same bytes when the sender laid the data out in option order.

import { Reader, Writer } from './cursor.js';

export const PRELOGIN_OPTION = {
  VERSION: 0x00,
  ENCRYPTION: 0x01,
  INSTOPT: 0x02,
  THREADID: 0x03,
  MARS: 0x04,
  TRACEID: 0x05,
  FEDAUTHREQUIRED: 0x06,
  NONCEOPT: 0x07,
  TERMINATOR: 0xff,
} as const;

/** B_FENCRYPTION values. [MS-TDS] 2.2.6.5 */
export const ENCRYPTION = {
  ENCRYPT_OFF: 0x00,
  ENCRYPT_ON: 0x01,
  ENCRYPT_NOT_SUP: 0x02,
  ENCRYPT_REQ: 0x03,
  /** Bit flag that may be OR-ed into the value: the client presents a certificate. */
  ENCRYPT_CLIENT_CERT: 0x80,
} as const;

export interface PreloginVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  readonly subBuild: number;
}

export interface TraceId {
  /** GUID_CONNID: 16 bytes. */
  readonly connectionId: Buffer;
  /** GUID_ActivityID: 16 bytes. */
  readonly activityId: Buffer;
  readonly sequence: number;
}

/**
 * One decoded PRELOGIN message. `null` means "present with zero length" (Babelfish sends THREADID
 * and TRACEID that way); an absent field means the option was not sent.
 */
export interface Prelogin {
  readonly version?: PreloginVersion;
  readonly encryption?: number;
  /** INSTOPT without its terminating 0x00 (read as Latin-1). */
  readonly instance?: string;
  readonly threadId?: number | null;
  readonly mars?: number;
  readonly traceId?: TraceId | null;
  readonly fedAuthRequired?: number;
  /** NONCEOPT: 32 bytes. */
  readonly nonce?: Buffer;
  /** Options this codec does not know, kept as raw data, in token order. */
  readonly unknown?: readonly { readonly token: number; readonly data: Buffer }[];
}

const OPTION_HEADER = 5;
const TRACEID_LENGTH = 36;
const NONCE_LENGTH = 32;
const VERSION_LENGTH = 6;

export function decodePrelogin(payload: Buffer): Prelogin {
  const r = new Reader(payload, 0, payload.length);
  const headers: { token: number; offset: number; length: number; at: number }[] = [];
  for (;;) {
    const at = r.pos;
    const token = r.u8('PRELOGIN option token');
    if (token === PRELOGIN_OPTION.TERMINATOR) break;
    const offset = r.u16be('PRELOGIN option offset');
    const length = r.u16be('PRELOGIN option length');
    if (headers.some((h) => h.token === token)) r.fail(`PRELOGIN option 0x${token.toString(16)} appears twice`, at);
    headers.push({ token, offset, length, at });
  }
  const dataStart = r.pos;
  const out: {
    version?: PreloginVersion;
    encryption?: number;
    instance?: string;
    threadId?: number | null;
    mars?: number;
    traceId?: TraceId | null;
    fedAuthRequired?: number;
    nonce?: Buffer;
    unknown?: { token: number; data: Buffer }[];
  } = {};
  for (const h of headers) {
    if (h.offset < dataStart || h.offset + h.length > payload.length) {
      r.fail(
        `PRELOGIN option 0x${h.token.toString(16)} points at ${h.offset}+${h.length}, outside the data area ${dataStart}..${payload.length}`,
        h.at,
      );
    }
    const d = new Reader(payload, h.offset, h.offset + h.length);
    const name = `PRELOGIN option 0x${h.token.toString(16)}`;
    const exact = (n: number): void => {
      if (h.length !== n) d.fail(`${name} has length ${h.length}, expected ${n}`);
    };
    switch (h.token) {
      case PRELOGIN_OPTION.VERSION:
        exact(VERSION_LENGTH);
        out.version = {
          major: d.u8('VERSION major'),
          minor: d.u8('VERSION minor'),
          build: d.u16be('VERSION build'),
          subBuild: d.u16be('VERSION sub-build'),
        };
        break;
      case PRELOGIN_OPTION.ENCRYPTION:
        exact(1);
        out.encryption = d.u8('ENCRYPTION');
        break;
      case PRELOGIN_OPTION.INSTOPT: {
        const bytes = d.bytes(h.length, 'INSTOPT');
        const nul = bytes.indexOf(0);
        if (nul !== bytes.length - 1) d.fail('INSTOPT must end with its only 0x00 byte', h.offset);
        out.instance = bytes.toString('latin1', 0, nul);
        break;
      }
      case PRELOGIN_OPTION.THREADID:
        if (h.length === 0) out.threadId = null;
        else {
          exact(4);
          out.threadId = d.u32be('THREADID');
        }
        break;
      case PRELOGIN_OPTION.MARS:
        exact(1);
        out.mars = d.u8('MARS');
        break;
      case PRELOGIN_OPTION.TRACEID:
        if (h.length === 0) out.traceId = null;
        else {
          exact(TRACEID_LENGTH);
          out.traceId = {
            connectionId: d.bytes(16, 'TRACEID connection id'),
            activityId: d.bytes(16, 'TRACEID activity id'),
            sequence: d.u32le('TRACEID activity sequence'),
          };
        }
        break;
      case PRELOGIN_OPTION.FEDAUTHREQUIRED:
        exact(1);
        out.fedAuthRequired = d.u8('FEDAUTHREQUIRED');
        break;
      case PRELOGIN_OPTION.NONCEOPT:
        exact(NONCE_LENGTH);
        out.nonce = d.bytes(NONCE_LENGTH, 'NONCEOPT');
        break;
      default:
        (out.unknown ??= []).push({ token: h.token, data: d.bytes(h.length, name) });
    }
  }
  return out;
}

/** Encodes options in token order, data laid out in the same order right after the terminator. */
export function encodePrelogin(p: Prelogin): Buffer {
  const options: { token: number; data: Buffer }[] = [];
  if (p.version) {
    const v = Buffer.alloc(VERSION_LENGTH);
    v[0] = byte(p.version.major, 'VERSION major');
    v[1] = byte(p.version.minor, 'VERSION minor');
    v.writeUInt16BE(p.version.build, 2);
    v.writeUInt16BE(p.version.subBuild, 4);
    options.push({ token: PRELOGIN_OPTION.VERSION, data: v });
  }
  if (p.encryption !== undefined) {
    options.push({ token: PRELOGIN_OPTION.ENCRYPTION, data: Buffer.from([byte(p.encryption, 'ENCRYPTION')]) });
  }
  if (p.instance !== undefined) {
    if (p.instance.includes('\0')) throw new RangeError('INSTOPT must not contain a NUL character');
    options.push({ token: PRELOGIN_OPTION.INSTOPT, data: Buffer.from(`${p.instance}\0`, 'latin1') });
  }
  if (p.threadId !== undefined) {
    const d = Buffer.alloc(p.threadId === null ? 0 : 4);
    if (p.threadId !== null) d.writeUInt32BE(p.threadId);
    options.push({ token: PRELOGIN_OPTION.THREADID, data: d });
  }
  if (p.mars !== undefined) options.push({ token: PRELOGIN_OPTION.MARS, data: Buffer.from([byte(p.mars, 'MARS')]) });
  if (p.traceId !== undefined) {
    const w = new Writer(TRACEID_LENGTH);
    if (p.traceId !== null) {
      w.bytes(exactLength(p.traceId.connectionId, 16, 'TRACEID connection id'));
      w.bytes(exactLength(p.traceId.activityId, 16, 'TRACEID activity id'));
      w.u32le(p.traceId.sequence, 'TRACEID activity sequence');
    }
    options.push({ token: PRELOGIN_OPTION.TRACEID, data: w.finish() });
  }
  if (p.fedAuthRequired !== undefined) {
    options.push({ token: PRELOGIN_OPTION.FEDAUTHREQUIRED, data: Buffer.from([byte(p.fedAuthRequired, 'FEDAUTHREQUIRED')]) });
  }
  if (p.nonce !== undefined) {
    options.push({ token: PRELOGIN_OPTION.NONCEOPT, data: exactLength(p.nonce, NONCE_LENGTH, 'NONCEOPT') });
  }
  for (const u of p.unknown ?? []) {
    if (u.token === PRELOGIN_OPTION.TERMINATOR || u.token <= PRELOGIN_OPTION.NONCEOPT) {
      throw new RangeError(`unknown PRELOGIN option token 0x${u.token.toString(16)} collides with a known one`);
    }
    options.push({ token: byte(u.token, 'PRELOGIN option token'), data: u.data });
  }
  options.sort((a, b) => a.token - b.token);
  const w = new Writer();
  let offset = options.length * OPTION_HEADER + 1;
  for (const o of options) {
    w.u8(o.token).u16be(offset, 'PRELOGIN option offset').u16be(o.data.length, 'PRELOGIN option length');
    offset += o.data.length;
  }
  w.u8(PRELOGIN_OPTION.TERMINATOR);
  for (const o of options) w.bytes(o.data);
  return w.finish();
}

function byte(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${what} out of range: ${v}`);
  return v;
}

function exactLength(b: Buffer, n: number, what: string): Buffer {
  if (b.length !== n) throw new RangeError(`${what} must be ${n} bytes, got ${b.length}`);
  return b;
}

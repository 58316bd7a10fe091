// The 5-byte COLLATION rule. [MS-TDS] 2.2.5.1.2:
//   LCID (20 bits) | fIgnoreCase fIgnoreAccent fIgnoreKana fIgnoreWidth fBinary fBinary2 fUTF8
//   FRESERVEDBIT (8 bits) | Version (4 bits), as a little-endian DWORD; then SortId (BYTE).
// A SortId other than 0 names an old "SQL_" collation whose code page it fixes; otherwise the
// LCID's language picks the Windows code page; fUTF8 means UTF-8 regardless.

import { CODE_PAGE } from './code-pages.js';
import type { Reader, Writer } from './cursor.js';

export interface Collation {
  readonly lcid: number;
  /** The 8 flag bits; see COLLATION_FLAG. */
  readonly flags: number;
  readonly version: number;
  readonly sortId: number;
}

export const COLLATION_FLAG = {
  IGNORE_CASE: 0x01,
  IGNORE_ACCENT: 0x02,
  IGNORE_KANA: 0x04,
  IGNORE_WIDTH: 0x08,
  BINARY: 0x10,
  BINARY2: 0x20,
  UTF8: 0x40,
} as const;

export const COLLATION_LENGTH = 5;

export function readCollation(r: Reader, what = 'collation'): Collation {
  const info = r.u32le(what);
  const sortId = r.u8(what);
  return { lcid: info & 0xfffff, flags: (info >>> 20) & 0xff, version: info >>> 28, sortId };
}

export function writeCollation(w: Writer, c: Collation): void {
  if (c.lcid < 0 || c.lcid > 0xfffff) throw new RangeError(`collation LCID out of range: ${c.lcid}`);
  if (c.flags < 0 || c.flags > 0xff) throw new RangeError(`collation flags out of range: ${c.flags}`);
  if (c.version < 0 || c.version > 0xf) throw new RangeError(`collation version out of range: ${c.version}`);
  w.u32le((c.lcid | (c.flags << 20) | (c.version << 28)) >>> 0);
  w.u8(c.sortId, 'collation sort id');
}

export function encodeCollation(c: Collation): Buffer {
  const b = Buffer.alloc(COLLATION_LENGTH);
  b.writeUInt32LE((c.lcid | (c.flags << 20) | (c.version << 28)) >>> 0, 0);
  b[4] = c.sortId;
  return b;
}

export function decodeCollation(b: Uint8Array): Collation {
  const info = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  return { lcid: info & 0xfffff, flags: (info >>> 20) & 0xff, version: info >>> 28, sortId: b[4]! };
}

/** SortId ranges of the SQL collations and their code pages. */
const SORT_ID_RANGES: readonly (readonly [number, number, number])[] = [
  [30, 34, CODE_PAGE.CP437],
  [40, 44, CODE_PAGE.CP850],
  [49, 49, CODE_PAGE.CP850],
  [51, 54, CODE_PAGE.CP1252],
  [55, 61, CODE_PAGE.CP850],
  [80, 96, CODE_PAGE.CP1250],
  [104, 108, CODE_PAGE.CP1251],
  [112, 114, CODE_PAGE.CP1253],
  [120, 122, CODE_PAGE.CP1253],
  [124, 124, CODE_PAGE.CP1253],
  [128, 130, CODE_PAGE.CP1254],
  [136, 138, CODE_PAGE.CP1255],
  [144, 146, CODE_PAGE.CP1256],
  [152, 160, CODE_PAGE.CP1257],
  [183, 186, CODE_PAGE.CP1252],
];

/** Whole-LCID exceptions (languages written in more than one script or region-specific pages). */
const BY_LCID: Readonly<Record<number, number>> = {
  0x0404: CODE_PAGE.CP950, // Chinese (Taiwan)
  0x0804: CODE_PAGE.CP936, // Chinese (PRC)
  0x0c04: CODE_PAGE.CP950, // Chinese (Hong Kong)
  0x1004: CODE_PAGE.CP936, // Chinese (Singapore)
  0x1404: CODE_PAGE.CP950, // Chinese (Macao)
  0x041a: CODE_PAGE.CP1250, // Croatian
  0x081a: CODE_PAGE.CP1250, // Serbian (Latin)
  0x0c1a: CODE_PAGE.CP1251, // Serbian (Cyrillic)
  0x101a: CODE_PAGE.CP1250, // Croatian (Bosnia)
  0x141a: CODE_PAGE.CP1250, // Bosnian (Latin)
  0x201a: CODE_PAGE.CP1251, // Bosnian (Cyrillic)
  0x042c: CODE_PAGE.CP1254, // Azeri (Latin)
  0x082c: CODE_PAGE.CP1251, // Azeri (Cyrillic)
  0x0443: CODE_PAGE.CP1254, // Uzbek (Latin)
  0x0843: CODE_PAGE.CP1251, // Uzbek (Cyrillic)
};

/** Primary language id (low 10 bits of the LCID) to its Windows ANSI code page. */
const BY_LANGUAGE: Readonly<Record<number, number>> = {
  0x01: 1256, 0x02: 1251, 0x03: 1252, 0x05: 1250, 0x06: 1252, 0x07: 1252, 0x08: 1253,
  0x09: 1252, 0x0a: 1252, 0x0b: 1252, 0x0c: 1252, 0x0d: 1255, 0x0e: 1250, 0x0f: 1252,
  0x10: 1252, 0x11: 932, 0x12: 949, 0x13: 1252, 0x14: 1252, 0x15: 1250, 0x16: 1252,
  0x17: 1252, 0x18: 1250, 0x19: 1251, 0x1b: 1250, 0x1c: 1250, 0x1d: 1252, 0x1e: 874,
  0x1f: 1254, 0x20: 1256, 0x21: 1252, 0x22: 1251, 0x23: 1251, 0x24: 1250, 0x25: 1257,
  0x26: 1257, 0x27: 1257, 0x29: 1256, 0x2a: 1258, 0x2d: 1252, 0x2e: 1252, 0x2f: 1251,
  0x36: 1252, 0x37: 1252, 0x38: 1252, 0x3b: 1252, 0x3e: 1252, 0x3f: 1251, 0x40: 1251,
  0x41: 1252, 0x42: 1250, 0x44: 1251, 0x52: 1252, 0x56: 1252, 0x5f: 1252, 0x62: 1252,
  0x6d: 1251, 0x7a: 1252, 0x7c: 1252, 0x7e: 1252, 0x80: 1256, 0x83: 1252, 0x85: 1251,
  0x8c: 1256,
};

/** The code page of char/varchar/text data under `c`, or undefined for a Unicode-only collation. */
export function codePageOf(c: Collation): number | undefined {
  if (c.flags & COLLATION_FLAG.UTF8) return CODE_PAGE.UTF8;
  if (c.sortId !== 0) {
    for (const [lo, hi, cp] of SORT_ID_RANGES) if (c.sortId >= lo && c.sortId <= hi) return cp;
  }
  const lcid = c.lcid & 0xffff;
  return BY_LCID[lcid] ?? BY_LANGUAGE[lcid & 0x3ff];
}

// Text in the code page of a non-Unicode SQL Server collation (char/varchar/text values).
// [MS-TDS] 2.2.5.1.2 (Collation): a collation selects a Windows code page; UTF-8 collations
// (fUTF8) carry UTF-8. Node has decoders for the Windows code pages (TextDecoder, WHATWG tables)
// but no encoders, so the reverse tables are built here on first use.
//
// Single-byte pages decode losslessly: a byte the WHATWG table leaves undefined decodes to the
// code point of the same number (what Windows does for cp1252 0x81), so it encodes back. CP437
// and CP850 (old SQL collations) are not in WHATWG; their upper halves are spelled out below
// (generated from Python's codecs, 2026-11-29). So is CP1252's: Node's TextDecoder treats the
// 'windows-1252' label as ISO-8859-1 and would turn 0x80 into U+0080 instead of the euro sign.
// Double-byte pages (932/936/949/950) decode through
// TextDecoder; their encoders are built by decoding every lead/trail pair.
// Encoding a character the code page cannot hold is a RangeError naming it: no silent '?'.

import { TextDecoder } from 'node:util';

export const CODE_PAGE = {
  CP437: 437,
  CP850: 850,
  CP874: 874,
  CP932: 932,
  CP936: 936,
  CP949: 949,
  CP950: 950,
  CP1250: 1250,
  CP1251: 1251,
  CP1252: 1252,
  CP1253: 1253,
  CP1254: 1254,
  CP1255: 1255,
  CP1256: 1256,
  CP1257: 1257,
  CP1258: 1258,
  UTF8: 65001,
} as const;

const UPPER_HALF: Readonly<Record<number, string>> = {
  1252:
    '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
    '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178' +
    '\u00a0\u00a1\u00a2\u00a3\u00a4\u00a5\u00a6\u00a7\u00a8\u00a9\u00aa\u00ab\u00ac\u00ad\u00ae\u00af' +
    '\u00b0\u00b1\u00b2\u00b3\u00b4\u00b5\u00b6\u00b7\u00b8\u00b9\u00ba\u00bb\u00bc\u00bd\u00be\u00bf' +
    '\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9\u00ca\u00cb\u00cc\u00cd\u00ce\u00cf' +
    '\u00d0\u00d1\u00d2\u00d3\u00d4\u00d5\u00d6\u00d7\u00d8\u00d9\u00da\u00db\u00dc\u00dd\u00de\u00df' +
    '\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef' +
    '\u00f0\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f7\u00f8\u00f9\u00fa\u00fb\u00fc\u00fd\u00fe\u00ff',
  437:
    '\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5' +
    '\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192' +
    '\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb' +
    '\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510' +
    '\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567' +
    '\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580' +
    '\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229' +
    '\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0',
  850:
    '\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5' +
    '\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00f8\u00a3\u00d8\u00d7\u0192' +
    '\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u00ae\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb' +
    '\u2591\u2592\u2593\u2502\u2524\u00c1\u00c2\u00c0\u00a9\u2563\u2551\u2557\u255d\u00a2\u00a5\u2510' +
    '\u2514\u2534\u252c\u251c\u2500\u253c\u00e3\u00c3\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u00a4' +
    '\u00f0\u00d0\u00ca\u00cb\u00c8\u0131\u00cd\u00ce\u00cf\u2518\u250c\u2588\u2584\u00a6\u00cc\u2580' +
    '\u00d3\u00df\u00d4\u00d2\u00f5\u00d5\u00b5\u00fe\u00de\u00da\u00db\u00d9\u00fd\u00dd\u00af\u00b4' +
    '\u00ad\u00b1\u2017\u00be\u00b6\u00a7\u00f7\u00b8\u00b0\u00a8\u00b7\u00b9\u00b3\u00b2\u25a0\u00a0',
};

/** WHATWG encoding labels of the Windows code pages TextDecoder knows. */
const WHATWG_LABEL: Readonly<Record<number, string>> = {
  874: 'windows-874',
  932: 'shift_jis',
  936: 'gbk',
  949: 'euc-kr',
  950: 'big5',
  1250: 'windows-1250',
  1251: 'windows-1251',
  1253: 'windows-1253',
  1254: 'windows-1254',
  1255: 'windows-1255',
  1256: 'windows-1256',
  1257: 'windows-1257',
  1258: 'windows-1258',
};

/** Lead-byte and trail-byte ranges of the double-byte pages. */
const DBCS: Readonly<Record<number, { lead: [number, number][]; trail: [number, number][] }>> = {
  932: { lead: [[0x81, 0x9f], [0xe0, 0xfc]], trail: [[0x40, 0x7e], [0x80, 0xfc]] },
  936: { lead: [[0x81, 0xfe]], trail: [[0x40, 0x7e], [0x80, 0xfe]] },
  949: { lead: [[0x81, 0xfe]], trail: [[0x41, 0xfe]] },
  950: { lead: [[0x81, 0xfe]], trail: [[0x40, 0x7e], [0xa1, 0xfe]] },
};

export function isSupportedCodePage(cp: number): boolean {
  return cp === CODE_PAGE.UTF8 || cp in UPPER_HALF || cp in WHATWG_LABEL;
}

interface SingleByte {
  readonly kind: 'single';
  readonly decode: string; // 256 characters
  readonly encode: Map<number, number>;
}
interface DoubleByte {
  readonly kind: 'double';
  readonly decoder: TextDecoder;
  encode?: Map<number, number>; // code point -> byte (<= 0xff) or lead << 8 | trail
}
const tables = new Map<number, SingleByte | DoubleByte>();

function table(cp: number): SingleByte | DoubleByte {
  const cached = tables.get(cp);
  if (cached) return cached;
  let t: SingleByte | DoubleByte;
  if (cp in DBCS) {
    t = { kind: 'double', decoder: new TextDecoder(WHATWG_LABEL[cp]!) };
  } else {
    let upper = UPPER_HALF[cp];
    if (upper === undefined) {
      const label = WHATWG_LABEL[cp];
      if (label === undefined) throw new RangeError(`code page ${cp} is not supported`);
      const dec = new TextDecoder(label);
      const used = new Set<number>();
      const chars: string[] = [];
      for (let b = 0x80; b <= 0xff; b++) {
        const c = dec.decode(Uint8Array.of(b));
        chars.push(c);
        if (c !== '\ufffd') used.add(c.codePointAt(0)!);
      }
      upper = chars.map((c, i) => (c === '\ufffd' && !used.has(0x80 + i) ? String.fromCharCode(0x80 + i) : c)).join('');
    }
    let decode = '';
    for (let b = 0; b < 0x80; b++) decode += String.fromCharCode(b);
    decode += upper;
    const encode = new Map<number, number>();
    for (let b = 0; b < 256; b++) {
      const code = decode.charCodeAt(b);
      if (code !== 0xfffd && !encode.has(code)) encode.set(code, b);
    }
    t = { kind: 'single', decode, encode };
  }
  tables.set(cp, t);
  return t;
}

/** Decodes bytes in code page `cp` (65001 = UTF-8). */
export function decodeCodePage(buf: Uint8Array, cp: number): string {
  if (cp === CODE_PAGE.UTF8) return Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8');
  const t = table(cp);
  if (t.kind === 'double') return t.decoder.decode(buf);
  let s = '';
  for (let i = 0; i < buf.length; i++) s += t.decode[buf[i]!];
  return s;
}

/** Encodes `s` in code page `cp`; a character the page cannot hold is a RangeError. */
export function encodeCodePage(s: string, cp: number): Buffer {
  if (cp === CODE_PAGE.UTF8) return Buffer.from(s, 'utf8');
  const t = table(cp);
  const enc = t.kind === 'single' ? t.encode : doubleByteEncoder(t, cp);
  const out: number[] = [];
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    const b = code < 0x80 ? code : enc.get(code);
    if (b === undefined) {
      throw new RangeError(`character U+${code.toString(16).toUpperCase().padStart(4, '0')} has no encoding in code page ${cp}`);
    }
    if (b > 0xff) out.push(b >> 8, b & 0xff);
    else out.push(b);
  }
  return Buffer.from(out);
}

function doubleByteEncoder(t: DoubleByte, cp: number): Map<number, number> {
  if (t.encode) return t.encode;
  const enc = new Map<number, number>();
  const ranges = DBCS[cp]!;
  const dec = new TextDecoder(WHATWG_LABEL[cp]!);
  for (let b = 0x80; b <= 0xff; b++) {
    const c = dec.decode(Uint8Array.of(b));
    if (c.length === 1 && c !== '\ufffd') enc.set(c.charCodeAt(0), b);
  }
  for (const [lo, hi] of ranges.lead) {
    for (let lead = lo; lead <= hi; lead++) {
      for (const [tlo, thi] of ranges.trail) {
        for (let trail = tlo; trail <= thi; trail++) {
          const c = dec.decode(Uint8Array.of(lead, trail));
          if (c === '\ufffd' || c.length === 0) continue;
          const code = c.codePointAt(0)!;
          if ([...c].length === 1 && !enc.has(code)) enc.set(code, (lead << 8) | trail);
        }
      }
    }
  }
  t.encode = enc;
  return enc;
}

// TYPE_INFO and values: known byte layouts (GUID order, datetime, money, decimal, time scales),
// NULL of every nullable type, encode∘decode and decode∘encode for every type, code pages.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../protocols/errors.js';
import { LATIN1_CI_AS, UTF8, valueCases as cases } from './tds-support.js';
import { CODE_PAGE, decodeCodePage, encodeCodePage } from '../../protocols/tds/code-pages.js';
import { type Collation, codePageOf } from '../../protocols/tds/collation.js';
import { Reader, Writer } from '../../protocols/tds/cursor.js';
import { formatDateTime2, formatDateTimeOffset, formatTime } from '../../protocols/tds/temporal.js';
import { DATA_TYPE, type TypeInfo, measureTypeInfo, readTypeInfo, writeTypeInfo } from '../../protocols/tds/type-info.js';
import { type Value, type ValueOptions, guidToBytes, measureValue, readValue, writeValue } from '../../protocols/tds/values.js';

const JAPANESE: Collation = { lcid: 0x0411, flags: 0x0d, version: 0, sortId: 0 };

function enc(ti: TypeInfo, v: Value, opts: ValueOptions = {}): Buffer {
  const w = new Writer();
  writeValue(w, ti, v, opts);
  return w.finish();
}

function dec(ti: TypeInfo, bytes: Buffer, opts: ValueOptions = {}): Value {
  const r = new Reader(bytes, 0, bytes.length);
  const v = readValue(r, ti, opts);
  expect(r.remaining).toBe(0);
  expect(measureValue(bytes, 0, bytes.length, ti, opts)).toBe(bytes.length);
  return v;
}

function typeInfoBytes(ti: TypeInfo): Buffer {
  const w = new Writer();
  writeTypeInfo(w, ti);
  return w.finish();
}

describe('value byte layouts', () => {
  it('stores a GUID with the first three groups little-endian', () => {
    const ti = { type: DATA_TYPE.GUID, length: 16 };
    const bytes = enc(ti, '3D9C1724-11E2-4B8F-AB0D-549B6F03675A');
    expect(bytes.toString('hex')).toBe('1024179c3de2118f4bab0d549b6f03675a'); // as in the customers capture
    expect(dec(ti, bytes)).toBe('3D9C1724-11E2-4B8F-AB0D-549B6F03675A');
    expect(() => guidToBytes('not-a-guid')).toThrow(/is not a GUID/);
  });

  it('encodes money high half first and keeps four decimals exactly', () => {
    const ti = { type: DATA_TYPE.MONEYN, length: 8 };
    expect(enc(ti, '47931.9548').toString('hex')).toBe('0800000000fcd5911c');
    expect(dec(ti, enc(ti, '-0.0001'))).toBe('-0.0001');
    expect(dec(ti, enc(ti, '922337203685477.5807'))).toBe('922337203685477.5807');
    expect(() => enc(ti, '922337203685477.5808')).toThrow(RangeError);
    expect(dec({ type: DATA_TYPE.MONEY4 }, enc({ type: DATA_TYPE.MONEY4 }, '-214748.3648'))).toBe('-214748.3648');
  });

  it('sizes decimals by precision (SQL Server) or minimally (Babelfish)', () => {
    const ti = { type: DATA_TYPE.DECIMALN, length: 9, precision: 12, scale: 2 };
    expect(enc(ti, '100000.50').toString('hex')).toBe('0901b296980000000000'); // as tedious sent it
    expect(enc({ ...ti, length: 17 }, '42657.09', { decimalLength: 'minimal' }).toString('hex')).toBe('0501ed164100');
    expect(dec(ti, enc(ti, '-0.00'))).toBe('-0.00');
    expect(() => enc(ti, '1.234')).toThrow(/more than 2 fraction digits/);
    expect(() => enc(ti, '12345678901.00')).toThrow(/more than 12 digits/);
  });

  it('encodes datetime as days since 1900 and 1/300 s ticks, smalldatetime as minutes', () => {
    const dt = { type: DATA_TYPE.DATETIMN, length: 8 };
    const d = new Date(Date.UTC(2024, 0, 31, 12, 30, 15, 997));
    const bytes = enc(dt, d);
    expect(bytes.readInt32LE(1)).toBe(45320);
    expect(bytes.readUInt32LE(5)).toBe(Math.round((12 * 3600 + 30 * 60 + 15.997) * 300));
    expect(dec(dt, bytes)).toEqual(d);
    const sdt = { type: DATA_TYPE.DATETIMN, length: 4 };
    expect(dec(sdt, enc(sdt, new Date(Date.UTC(2079, 5, 6, 23, 59))))).toEqual(new Date(Date.UTC(2079, 5, 6, 23, 59)));
    // 23:59:59.999 rounds into the next day, as SQL Server does.
    expect(dec(dt, enc(dt, new Date(Date.UTC(2000, 0, 1, 23, 59, 59, 999))))).toEqual(new Date(Date.UTC(2000, 0, 2)));
  });

  it('keeps 100 ns precision for time, datetime2 and datetimeoffset at every scale', () => {
    const ticks = 12 * 3600 * 10_000_000 + 1_234_567;
    for (let scale = 0; scale <= 7; scale++) {
      const unit = 10 ** (7 - scale);
      const t = { kind: 'time' as const, ticks: Math.floor(ticks / unit) * unit };
      const ti = { type: DATA_TYPE.TIMEN, scale };
      const bytes = enc(ti, t);
      expect(bytes[0]).toBe(scale <= 2 ? 3 : scale <= 4 ? 4 : 5);
      expect(dec(ti, bytes)).toEqual(t);
    }
    const dto = { kind: 'datetimeoffset' as const, days: 739260, ticks: 9_301_234_570, offsetMinutes: -300 };
    expect(dec({ type: DATA_TYPE.DATETIMEOFFSETN, scale: 7 }, enc({ type: DATA_TYPE.DATETIMEOFFSETN, scale: 7 }, dto))).toEqual(dto);
    expect(formatDateTimeOffset(dto)).toBe('2025-01-09T19:15:30.1234570-05:00');
    expect(formatDateTime2({ days: 738885, ticks: 629_070 })).toBe('2024-01-01T00:00:00.0629070');
    expect(formatTime(ticks, 3)).toBe('12:00:00.123');
  });

  it('refuses values that do not fit their TYPE_INFO', () => {
    expect(() => dec({ type: DATA_TYPE.INTN, length: 4 }, Buffer.from('0201000000', 'hex'))).toThrow(/does not fit its TYPE_INFO/);
    expect(() => dec({ type: DATA_TYPE.TIMEN, scale: 7 }, Buffer.from('03000000', 'hex'))).toThrow(ProtocolError);
    expect(() => dec({ type: DATA_TYPE.DECIMALN, length: 5, precision: 5, scale: 0 }, Buffer.from('0502ffffffff', 'hex'))).toThrow(/sign byte/);
    expect(() => dec({ type: DATA_TYPE.NVARCHAR, length: 10, collation: LATIN1_CI_AS }, Buffer.from('0300616263', 'hex'))).toThrow(/odd byte length/);
    expect(() => dec({ type: DATA_TYPE.DATETIMN, length: 8 }, Buffer.from('080000000000fc8b01', 'hex'))).toThrow(/past midnight/);
    expect(() => enc({ type: DATA_TYPE.INT4 }, null)).toThrow(/not nullable/);
    expect(() => enc({ type: DATA_TYPE.INTN, length: 2 }, 70000)).toThrow(RangeError);
    expect(() => enc({ type: DATA_TYPE.NVARCHAR, length: 4, collation: LATIN1_CI_AS }, 'abc')).toThrow(/exceeds the declared length 4/);
  });

  it('checks PLP totals against the chunks and the cap', () => {
    const ti = { type: DATA_TYPE.BIGVARBIN, length: 0xffff };
    const bytes = enc(ti, Buffer.alloc(100, 1), { plpChunkSize: 30 });
    expect(bytes.readUInt32LE(8)).toBe(30);
    expect(dec(ti, bytes)).toEqual(Buffer.alloc(100, 1));
    expect(dec(ti, enc(ti, Buffer.alloc(10), { plpUnknownLength: true }))).toEqual(Buffer.alloc(10));
    const lying = Buffer.from(bytes);
    lying.writeBigUInt64LE(99n, 0);
    expect(() => dec(ti, lying)).toThrow(/overruns the value/);
    expect(() => measureValue(bytes, 0, 20, ti, { maxValueLength: 50 })).toThrow(/exceeds the 50-byte cap/);
    expect(measureValue(bytes, 0, 20, ti, {})).toBe(-1); // short of bytes: a sentinel, not an exception
  });

  it('reads TEXT/NTEXT/IMAGE with text pointers in rows and without in parameters', () => {
    const ti: TypeInfo = { type: DATA_TYPE.NTEXT, length: 0x7ffffffe, collation: LATIN1_CI_AS };
    const inRow = enc(ti, 'héllo', { textPointers: true });
    expect(inRow[0]).toBe(16);
    expect(dec(ti, inRow, { textPointers: true })).toBe('héllo');
    expect(dec(ti, enc(ti, null, { textPointers: true }), { textPointers: true })).toBeNull();
    expect(dec(ti, enc(ti, 'x'))).toBe('x');
    expect(enc(ti, null).toString('hex')).toBe('ffffffff');
  });
});

describe('code pages', () => {
  it('maps collations to code pages', () => {
    expect(codePageOf(LATIN1_CI_AS)).toBe(CODE_PAGE.CP1252);
    expect(codePageOf(UTF8)).toBe(CODE_PAGE.UTF8);
    expect(codePageOf(JAPANESE)).toBe(CODE_PAGE.CP932);
    expect(codePageOf({ lcid: 0x0419, flags: 0, version: 0, sortId: 0 })).toBe(CODE_PAGE.CP1251);
    expect(codePageOf({ lcid: 0x0409, flags: 0, version: 0, sortId: 40 })).toBe(CODE_PAGE.CP850);
  });

  it('round-trips every byte of the single-byte pages', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const cp of [437, 850, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258]) {
      expect(encodeCodePage(decodeCodePage(all, cp), cp), `code page ${cp}`).toEqual(all);
    }
    expect(decodeCodePage(Buffer.from([0x80, 0xe9]), 1252)).toBe('€é');
  });

  it('encodes Japanese in CP932 and refuses characters a page cannot hold', () => {
    const bytes = encodeCodePage('日本語テキスト', 932);
    expect(bytes.toString('hex')).toBe('93fa967b8cea8365834c83588367');
    expect(decodeCodePage(bytes, 932)).toBe('日本語テキスト');
    expect(() => encodeCodePage('日本', 1252)).toThrow(/U\+65E5 has no encoding in code page 1252/);
  });

  it('decodes varchar through the column collation, UTF-8 collations included', () => {
    const ti = (c: Collation): TypeInfo => ({ type: DATA_TYPE.BIGVARCHR, length: 100, collation: c });
    expect(dec(ti(LATIN1_CI_AS), enc(ti(LATIN1_CI_AS), 'Fakenamé'))).toBe('Fakenamé');
    expect(enc(ti(UTF8), '✓').toString('hex')).toBe('0300e29c93');
    expect(dec(ti(JAPANESE), enc(ti(JAPANESE), '花子'))).toBe('花子');
    const unicodeOnly: Collation = { lcid: 0x0439, flags: 0, version: 0, sortId: 0 }; // Hindi: no code page
    expect(() => dec(ti(unicodeOnly), Buffer.from('010041', 'hex'))).toThrow(/no supported code page/);
  });
});

describe('round trips for every type', () => {
  for (const c of cases) {
    it(`${c.name}: decode(encode(v)) = v and encode(decode(bytes)) = bytes, TYPE_INFO included`, () => {
      const tiArb = 'type' in c.ti ? fc.constant(c.ti as TypeInfo) : (c.ti as fc.Arbitrary<TypeInfo>);
      fc.assert(
        fc.property(
          tiArb.chain((ti) => fc.tuple(fc.constant(ti), c.value(ti))),
          ([ti, v]) => {
            const tib = typeInfoBytes(ti);
            expect(measureTypeInfo(tib, 0, tib.length, 0)).toBe(tib.length);
            expect(readTypeInfo(new Reader(tib, 0, tib.length))).toEqual(ti);
            const opts = c.opts ?? {};
            const bytes = enc(ti, v, opts);
            const back = dec(ti, bytes, opts);
            expect(back).toEqual(v);
            expect(enc(ti, back, opts).equals(bytes)).toBe(true);
            // Every strict prefix is "need more", never a different answer.
            for (let n = 0; n < bytes.length; n++) expect(measureValue(bytes, 0, n, ti, opts)).toBe(-1);
          },
        ),
        { numRuns: 120 },
      );
    });
  }

  it('NULL of every nullable type decodes to null', () => {
    for (const c of cases) {
      const ti = 'type' in c.ti ? (c.ti as TypeInfo) : fc.sample(c.ti as fc.Arbitrary<TypeInfo>, 1)[0]!;
      const fixed = [DATA_TYPE.INT1, DATA_TYPE.INT2, DATA_TYPE.INT4, DATA_TYPE.INT8, DATA_TYPE.BIT, DATA_TYPE.FLT4, DATA_TYPE.FLT8, DATA_TYPE.MONEY, DATA_TYPE.DATETIME] as number[];
      if (fixed.includes(ti.type)) continue;
      expect(dec(ti, enc(ti, null, c.opts), c.opts), c.name).toBeNull();
    }
  });
});

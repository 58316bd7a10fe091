// The DataRow rewriter: property tests over random rows (any column count, NULLs, any bytes,
// several masked columns with different strategies), embedded at any offset of a larger buffer
// as a socket read delivers them. The rewritten row is always a well-formed DataRow, untouched
// columns are byte-identical, and no protected value survives anywhere in the output.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDataRow, encodeDataRow } from '../../protocols/postgres/backend-messages.js';
import type { MaskStrategyConfig } from '../../src/config/sections/masking.js';
import { BUILTIN } from '../../src/masking/classifiers.js';
import { DataRowRewriter } from '../../src/masking/data-row.js';
import { valueType, TypeOid } from '../../src/masking/pg-types.js';
import { MaskingError } from '../../src/masking/types.js';
import { compileMasker, contentMasker, type ValueMasker } from '../../src/masking/value-masker.js';

const TEXT = valueType(TypeOid.text, -1);
const SECRET = 'SECRET';

const strategies: MaskStrategyConfig[] = [
  { kind: 'redact', text: '****' },
  { kind: 'null' },
  { kind: 'partial', keepFirst: 0, keepLast: 2, maskChar: '*' },
  { kind: 'hash', key: 'property-test-key-0123', length: 16 },
  { kind: 'format', key: 'property-test-key-0123', keepFirst: 0, keepLast: 0 },
  { kind: 'email', keepDomain: false, keepFirstLetter: false, maskChar: '#' },
];

function masker(s: MaskStrategyConfig): ValueMasker {
  const m = compileMasker({ rule: 'test', strategy: s, redactOnly: false, redactText: '****', binary: 'null' }, TEXT, 0);
  if ('refuse' in m) throw new Error(m.refuse);
  return m.masker;
}

/** A protected value: holds the marker, never shorter than what partial keeps plus the marker. */
const secretValue = fc.string({ maxLength: 12 }).map((s) => Buffer.from(`${SECRET}${s.replace(/[^a-z0-9]/gi, '')}`, 'utf8'));
/** An ordinary value: any bytes without the marker. */
const clearValue = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)).filter((b) => !b.includes(SECRET));

const rowSpec = fc
  .array(fc.record({ masked: fc.boolean(), strategy: fc.nat(strategies.length - 1), isNull: fc.boolean() }), { minLength: 1, maxLength: 12 })
  .chain((cols) =>
    fc.record({
      cols: fc.constant(cols),
      values: fc.tuple(...cols.map((c) => (c.isNull ? fc.constant(null) : c.masked ? secretValue : clearValue))),
      prefix: fc.uint8Array({ maxLength: 16 }),
      suffix: fc.uint8Array({ maxLength: 16 }),
    }),
  );

describe('DataRowRewriter', () => {
  it('always yields a well-formed DataRow, keeps untouched columns, and never emits a protected value', () => {
    fc.assert(
      fc.property(rowSpec, ({ cols, values, prefix, suffix }) => {
        const row = encodeDataRow(values as (Buffer | null)[]);
        const buf = Buffer.concat([Buffer.from(prefix), row, Buffer.from(suffix)]);
        const rw = new DataRowRewriter(cols.length, cols.map((c) => (c.masked ? masker(strategies[c.strategy]!) : undefined)), 'test');
        const out = rw.rewrite(buf, prefix.length, prefix.length + row.length);
        const anyMaskedValue = cols.some((c) => c.masked && !c.isNull);
        if (!anyMaskedValue) {
          expect(out).toBeUndefined();
          return;
        }
        expect(out).toBeInstanceOf(Buffer);
        const decoded = decodeDataRow(out as Buffer); // checks every length and the message length
        expect(decoded).toHaveLength(cols.length);
        cols.forEach((c, i) => {
          const before = values[i] as Buffer | null;
          if (!c.masked || before === null) expect(decoded[i]).toEqual(before);
        });
        expect((out as Buffer).includes(SECRET)).toBe(false);
        // The input is left as it was.
        expect(buf.subarray(prefix.length, prefix.length + row.length)).toEqual(row);
      }),
      { numRuns: 500 },
    );
  });

  it('rewrites rows where lengths grow, shrink and stay, with several masked columns', () => {
    const rw = new DataRowRewriter(4, [masker({ kind: 'redact', text: 'a much longer redaction' }), undefined, masker({ kind: 'null' }), masker({ kind: 'partial', keepFirst: 1, keepLast: 1, maskChar: '•' })], 'test');
    const row = encodeDataRow([Buffer.from('x'), Buffer.from('keep me'), Buffer.from('gone'), Buffer.from('abcdef')]);
    const out = rw.rewrite(row, 0, row.length) as Buffer;
    expect(decodeDataRow(out).map((v) => (v === null ? null : v.toString()))).toEqual(['a much longer redaction', 'keep me', null, 'a••••f']);
  });

  it('leaves a row alone when every masked column is NULL', () => {
    const rw = new DataRowRewriter(2, [undefined, masker({ kind: 'redact', text: '****' })], 'test');
    const row = encodeDataRow([Buffer.from('a'), null]);
    expect(rw.rewrite(row, 0, row.length)).toBeUndefined();
  });

  it('refuses malformed rows with MaskingError (the row is not sent)', () => {
    const rw = new DataRowRewriter(2, [undefined, masker({ kind: 'redact', text: '****' })], 'rule-x');
    const good = encodeDataRow([Buffer.from('a'), Buffer.from('b')]);
    const threeCols = encodeDataRow([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    const badLength = Buffer.from(good);
    badLength.writeInt32BE(1000, 7);
    const badFrame = Buffer.from(good);
    badFrame.writeInt32BE(99, 1);
    for (const bad of [threeCols, badLength, badFrame, Buffer.from('Z\0\0\0\x05I')]) {
      expect(() => rw.rewrite(bad, 0, bad.length)).toThrow(MaskingError);
    }
    try {
      rw.rewrite(threeCols, 0, threeCols.length);
    } catch (err) {
      expect((err as MaskingError).rule).toBe('rule-x');
    }
  });

  it('fuzz: any bytes either rewrite to a well-formed row or fail with MaskingError, nothing else', () => {
    const rw = new DataRowRewriter(3, [undefined, masker({ kind: 'partial', keepFirst: 0, keepLast: 2, maskChar: '*' }), masker({ kind: 'redact', text: '****' })], 'fuzz');
    const valid = encodeDataRow([Buffer.from('a'), Buffer.from('secret'), null]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (noise, at, byte) => {
        for (const input of [Buffer.from(noise), Buffer.concat([Buffer.from([0x44]), Buffer.from(noise)]), Object.assign(Buffer.from(valid), { [at]: byte })]) {
          try {
            const out = rw.rewrite(input, 0, input.length);
            if (out) expect(decodeDataRow(out)).toHaveLength(3);
          } catch (err) {
            expect(err).toBeInstanceOf(MaskingError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('content scanners mask what they find in place and leave other values unchanged', () => {
    const rules = [
      { rule: 'pii', classifiers: [BUILTIN.email], strategy: { kind: 'email', keepDomain: true, keepFirstLetter: false, maskChar: '*' } as const, redactText: '****' },
      { rule: 'cards', classifiers: [BUILTIN.card_number], strategy: { kind: 'partial', keepFirst: 0, keepLast: 4, maskChar: 'x' } as const, redactText: '****' },
    ];
    const scan = contentMasker(rules, TEXT, 0)!;
    const rw = new DataRowRewriter(2, [undefined, scan], 'pii');
    const hit = encodeDataRow([Buffer.from('1'), Buffer.from('mail alice@example.com, card 4111-1111-1111-1111.')]);
    expect(decodeDataRow(rw.rewrite(hit, 0, hit.length) as Buffer)[1]!.toString()).toBe('mail ****@example.com, card xxxxxxxxxxxxxxx1111.');
    const miss = encodeDataRow([Buffer.from('1'), Buffer.from('nothing to see, 4111111111111112')]);
    expect(rw.rewrite(miss, 0, miss.length)).toBeUndefined();
  });

  it('content scanners keep json valid and scan inside arrays', () => {
    const rules = [{ rule: 'pii', classifiers: [BUILTIN.email], strategy: { kind: 'redact', text: '****' } as const, redactText: '****' }];
    const json = contentMasker(rules, valueType(TypeOid.jsonb, -1), 1)!;
    const v = Buffer.concat([Buffer.from([1]), Buffer.from('{"to": "alice@example.com"}')]);
    const n = json.mask(v, 0, v.length);
    expect(json.out[0]).toBe(1);
    expect(JSON.parse(json.out.toString('utf8', 1, n))).toEqual({ to: '****' });
    const arr = contentMasker(rules, valueType(1009, -1), 0)!;
    const a = Buffer.from('{"write to alice@example.com",plain}');
    const m = arr.mask(a, 0, a.length);
    expect(arr.out.toString('utf8', 0, m)).toBe('{"write to ****",plain}');
  });
});

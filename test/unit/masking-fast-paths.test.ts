// The byte-level fast paths of masking must write exactly what the general path writes (decode
// the value to text, apply the strategy, encode it back), for every value: ASCII and not, empty,
// NULL, with COPY text escapes, with char(n) padding and varchar(n) limits. Each property below
// runs the fast and the general path on the same random input and compares bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeDataRow } from '../../protocols/postgres/backend-messages.js';
import type { MaskStrategyConfig } from '../../src/config/sections/masking.js';
import type { CopyFormat } from '../../src/masking/copy.js';
import { escapeText, TextCopyRewriter, unescapeText } from '../../src/masking/copy-text.js';
import { DataRowRewriter } from '../../src/masking/data-row.js';
import { OutputSlab } from '../../src/masking/output-slab.js';
import { TypeOid, valueType, type ValueType } from '../../src/masking/pg-types.js';
import type { MessageSink } from '../../src/masking/types.js';
import { compileMasker, MASK_NULL, MASK_UNCHANGED, type ValueMasker } from '../../src/masking/value-masker.js';

const FAST_STRATEGIES: MaskStrategyConfig[] = [
  { kind: 'email', keepDomain: true, keepFirstLetter: false, maskChar: '*' },
  { kind: 'email', keepDomain: false, keepFirstLetter: true, maskChar: '#' },
  { kind: 'email', keepDomain: true, keepFirstLetter: true, maskChar: '•' },
  { kind: 'partial', keepFirst: 0, keepLast: 4, maskChar: '*' },
  { kind: 'partial', keepFirst: 2, keepLast: 1, maskChar: 'x' },
  { kind: 'partial', keepFirst: 1, keepLast: 1, maskChar: '•' },
  { kind: 'redact', text: '****' },
  { kind: 'null' },
];

const TYPES: ValueType[] = [
  valueType(TypeOid.text, -1),
  valueType(TypeOid.varchar, -1),
  valueType(TypeOid.varchar, 4 + 6), // varchar(6)
  valueType(TypeOid.bpchar, 4 + 8), // char(8)
  valueType(TypeOid.char, -1), // "char"
];

function compile(s: MaskStrategyConfig, t: ValueType, fastPaths: boolean): ValueMasker {
  const m = compileMasker({ rule: 'test', strategy: s, redactOnly: false, redactText: '****', binary: 'null' }, t, 0, fastPaths);
  if ('refuse' in m) throw new Error(m.refuse);
  return m.masker;
}

/** What a masker makes of one value: the bytes, 'NULL' or 'UNCHANGED'. */
function result(m: ValueMasker, v: Buffer): string {
  const src = Buffer.concat([Buffer.from('pre'), v, Buffer.from('post')]);
  const r = m.mask(src, 3, v.length);
  if (r === MASK_NULL) return 'NULL';
  if (r === MASK_UNCHANGED) return 'UNCHANGED';
  return m.out.subarray(0, r).toString('hex');
}

/** Values that hit every branch: ASCII with '@' anywhere, trailing spaces, Unicode, empty. */
const textValue = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'B', '7', '@', '.', ' ', '-'), maxLength: 24 }),
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', '@', 'a@', '@b', 'alice@example.com', 'x  ', '  ', 'é@x.y', 'a@b@c'),
);

describe('byte-level fast paths agree with the general path', () => {
  it('value maskers: the same bytes for every strategy, type and value', () => {
    fc.assert(
      fc.property(fc.nat(FAST_STRATEGIES.length - 1), fc.nat(TYPES.length - 1), textValue, (si, ti, text) => {
        const s = FAST_STRATEGIES[si] as MaskStrategyConfig;
        const t = TYPES[ti] as ValueType;
        const v = Buffer.from(text, 'utf8');
        expect(result(compile(s, t, true), v)).toBe(result(compile(s, t, false), v));
      }),
      { numRuns: 3000 },
    );
  });

  it('email on bytes that are not UTF-8 takes the general path', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const s = FAST_STRATEGIES[0] as MaskStrategyConfig;
        const t = TYPES[0] as ValueType;
        const v = Buffer.from(bytes);
        expect(result(compile(s, t, true), v)).toBe(result(compile(s, t, false), v));
      }),
      { numRuns: 1000 },
    );
  });

  it('in-place masking writes what mask() writes', () => {
    const strategies = FAST_STRATEGIES.filter((s) => s.kind === 'partial');
    fc.assert(
      fc.property(fc.nat(strategies.length - 1), fc.nat(1), textValue, (si, ti, text) => {
        const m = compile(strategies[si] as MaskStrategyConfig, TYPES[ti] as ValueType, true);
        const v = Buffer.from(text, 'utf8');
        if (!m.inPlace?.sameLength(v, 0, v.length)) return;
        const copy = Buffer.from(v);
        m.inPlace.overwrite(copy, 0, copy.length);
        expect(copy.toString('hex')).toBe(result(compile(strategies[si] as MaskStrategyConfig, TYPES[ti] as ValueType, false), v));
      }),
      { numRuns: 2000 },
    );
  });
});

/** Collects what a plan adds to the relay's output. */
class Collect implements MessageSink {
  parts: Buffer[] = [];
  add(buf: Buffer, start: number, end: number): void {
    this.parts.push(Buffer.from(buf.subarray(start, end)));
  }
  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const rowValue = fc.option(textValue.map((s) => Buffer.from(s, 'utf8')), { nil: null });

describe('DataRowRewriter fast paths', () => {
  it('rows rewrite the same with fast and general maskers, through rewrite() and forward()', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ value: rowValue, strategy: fc.option(fc.nat(FAST_STRATEGIES.length - 1), { nil: undefined }) }), { minLength: 1, maxLength: 6 }),
        fc.nat(1),
        (cols, ti) => {
          const t = TYPES[ti] as ValueType;
          const maskers = (fast: boolean): (ValueMasker | undefined)[] => cols.map((c) => (c.strategy === undefined ? undefined : compile(FAST_STRATEGIES[c.strategy] as MaskStrategyConfig, t, fast)));
          const row = encodeDataRow(cols.map((c) => c.value));
          const buf = Buffer.concat([Buffer.from('xx'), row, Buffer.from('yy')]);
          const general = new DataRowRewriter(cols.length, maskers(false), 'test').rewrite(buf, 2, 2 + row.length);
          const fast = new DataRowRewriter(cols.length, maskers(true), 'test', new OutputSlab());
          expect(fast.rewrite(buf, 2, 2 + row.length)?.toString('hex')).toBe(general?.toString('hex'));
          const sink = new Collect();
          fast.forward(buf, 2, 2 + row.length, sink);
          expect(sink.bytes.toString('hex')).toBe((general ?? row).toString('hex'));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

/** The default text format, and one whose delimiter is a mask character (the fast paths must step aside). */
const TEXT_FORMATS: CopyFormat[] = [0x09, 0x2a].map((delimiter) => ({ format: 'text', delimiter, nullString: Buffer.from('\\N'), quote: 0x22, escape: 0x22, header: false }));

/** A COPY text field's value (escaped when the row is written), or NULL. */
const copyField = fc.option(fc.oneof(textValue, fc.string({ unit: fc.constantFrom('a', '\t', '\n', '\\', '\r', '\x01', 'é', '*', '|'), maxLength: 10 })), { nil: null });

/** The general path, row by row: split, unescape, mask, escape back (as before the one-pass rewrite). */
function referenceText(rows: (Buffer | null)[][], maskers: (ValueMasker | undefined)[], fmt: CopyFormat): Buffer {
  const lines = rows.map((fields) =>
    Buffer.concat(
      fields.flatMap((f, i) => {
        const sep = i > 0 ? [Buffer.of(fmt.delimiter)] : [];
        const m = maskers[i];
        if (f === null) return [...sep, fmt.nullString];
        if (!m) return [...sep, f];
        const v = unescapeText(f);
        const r = m.mask(v, 0, v.length);
        if (r === MASK_UNCHANGED) return [...sep, f];
        if (r === MASK_NULL) return [...sep, fmt.nullString];
        return [...sep, escapeText(Buffer.from(m.out.subarray(0, r)), fmt.delimiter)];
      }),
    ),
  );
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.of(0x0a)]));
}

function copyData(payload: Buffer): Buffer {
  const m = Buffer.alloc(5 + payload.length);
  m[0] = 0x64;
  m.writeInt32BE(4 + payload.length, 1);
  payload.copy(m, 5);
  return m;
}

describe('TextCopyRewriter fast paths', () => {
  it('writes what the general path writes, however the rows are split into messages', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((n) =>
          fc.record({
            strategies: fc.array(fc.option(fc.nat(FAST_STRATEGIES.length - 1), { nil: undefined }), { minLength: n, maxLength: n }),
            rows: fc.array(fc.array(copyField, { minLength: n, maxLength: n }), { minLength: 1, maxLength: 6 }),
            cuts: fc.array(fc.nat(400), { maxLength: 4 }),
            forward: fc.boolean(),
          }),
        ),
        fc.nat(1),
        fc.nat(TEXT_FORMATS.length - 1),
        ({ strategies, rows: values, cuts, forward }, ti, fi) => {
          const t = TYPES[ti] as ValueType;
          const fmt = TEXT_FORMATS[fi] as CopyFormat;
          const rows = values.map((fields) => fields.map((f) => (f === null ? null : escapeText(Buffer.from(f, 'utf8'), fmt.delimiter))));
          const maskers = (fast: boolean): (ValueMasker | undefined)[] => strategies.map((s) => (s === undefined ? undefined : compile(FAST_STRATEGIES[s] as MaskStrategyConfig, t, fast)));
          const payload = Buffer.concat(rows.flatMap((fields) => [Buffer.concat(fields.flatMap((f, i) => [...(i > 0 ? [Buffer.of(fmt.delimiter)] : []), f ?? fmt.nullString])), Buffer.of(0x0a)]));
          const expected = referenceText(rows, maskers(false), fmt);
          // The payload cut into CopyData messages at random points, all in one socket read.
          const points = [...new Set(cuts.map((c) => c % (payload.length + 1)))].sort((a, b) => a - b);
          const bounds = [0, ...points, payload.length];
          const msgs = bounds.slice(1).map((e, k) => copyData(payload.subarray(bounds[k], e)));
          const chunk = Buffer.concat(msgs);
          const rw = new TextCopyRewriter(strategies.length, maskers(true), fmt, 'test', new OutputSlab());
          const out: Buffer[] = [];
          let at = 0;
          for (const m of msgs) {
            if (forward) {
              const sink = new Collect();
              rw.forward(chunk, at, at + m.length, sink);
              out.push(sink.bytes.subarray(5));
            } else {
              out.push((rw.rewrite(chunk, at, at + m.length) ?? m).subarray(5));
            }
            at += m.length;
          }
          expect(Buffer.concat(out).toString('hex')).toBe(expected.toString('hex'));
        },
      ),
      { numRuns: 1500 },
    );
  });
});

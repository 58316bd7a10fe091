// The byte-level fast paths of masking must write exactly what the general path writes (decode
// the value to text, apply the strategy, encode it back), for every value: ASCII and not, empty,
// NULL, with COPY text escapes, with char(n) padding and varchar(n) limits. Each property below
// runs the fast and the general path on the same random input and compares bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeDataRow } from '../../protocols/postgres/backend-messages.js';
import type { MaskStrategyConfig } from '../../src/config/sections/masking.js';
import type { CopyFormat } from '../../src/masking/copy.js';
import { BinaryCopyRewriter } from '../../src/masking/copy-binary.js';
import { escapeText, quoteCsv, TextCopyRewriter, unescapeText } from '../../src/masking/copy-text.js';
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

  it('direct masking writes what mask() writes, where the caller puts it', () => {
    fc.assert(
      fc.property(fc.nat(FAST_STRATEGIES.length - 1), fc.nat(TYPES.length - 1), textValue, fc.nat(8), (si, ti, text, to) => {
        const s = FAST_STRATEGIES[si] as MaskStrategyConfig;
        const t = TYPES[ti] as ValueType;
        const d = compile(s, t, true).direct;
        if (!d) return;
        const v = Buffer.from(text, 'utf8');
        const dst = Buffer.alloc(to + d.maxLength(v.length), 0xee);
        const n = d.write(v, 0, v.length, dst, to);
        if (n < 0) return;
        expect(dst.subarray(to, to + n).toString('hex')).toBe(result(compile(s, t, false), v));
        // Only bytes of the value and the fill byte (so a COPY text field needs no escaping).
        for (const b of dst.subarray(to, to + n)) expect(b === d.fill || v.includes(b)).toBe(true);
      }),
      { numRuns: 2000 },
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

/** The payloads of the CopyData messages back to back in `bytes` (every byte must belong to one). */
function copyPayloads(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < bytes.length; ) {
    expect(bytes[p]).toBe(0x64);
    const next = p + 1 + bytes.readInt32BE(p + 1);
    expect(next).toBeLessThanOrEqual(bytes.length);
    out.push(bytes.subarray(p + 5, next));
    p = next;
  }
  return out;
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
            mode: fc.constantFrom('rewrite', 'forward', 'run'),
            reads: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
            tail: fc.uint8Array({ maxLength: 6 }),
          }),
        ),
        fc.nat(1),
        fc.nat(TEXT_FORMATS.length - 1),
        ({ strategies, rows: values, cuts, mode, reads, tail }, ti, fi) => {
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
          if (mode === 'run') {
            // Runs of messages as socket reads deliver them (`reads` messages each), each read
            // followed by a few bytes of the next (words may be read past a run's end).
            for (let k = 0, r = 0; k < msgs.length; r++) {
              const n = Math.min(reads[r % reads.length] as number, msgs.length - k);
              const read = Buffer.concat([...msgs.slice(k, k + n), Buffer.from(tail)]);
              const sink = new Collect();
              rw.forwardRun(read, 0, read.length - tail.length, sink);
              out.push(...copyPayloads(sink.bytes));
              k += n;
            }
            // Message boundaries are kept: one message out per message in.
            expect(out).toHaveLength(msgs.length);
          } else {
            let at = 0;
            for (const m of msgs) {
              if (mode === 'forward') {
                const sink = new Collect();
                rw.forward(chunk, at, at + m.length, sink);
                out.push(sink.bytes.subarray(5));
              } else {
                out.push((rw.rewrite(chunk, at, at + m.length) ?? m).subarray(5));
              }
              at += m.length;
            }
          }
          expect(Buffer.concat(out).toString('hex')).toBe(expected.toString('hex'));
        },
      ),
      { numRuns: 1500 },
    );
  });
});

/** Messages as forward() sends them one by one, and as forwardRun() sends them in runs of `reads` messages: they must be the same. */
function runsMatchMessages(make: () => TextCopyRewriter | BinaryCopyRewriter, msgs: Buffer[], reads: number[]): void {
  const one = make();
  const expected = msgs.flatMap((m) => {
    const sink = new Collect();
    one.forward(m, 0, m.length, sink);
    return copyPayloads(sink.bytes).map((b) => b.toString('hex'));
  });
  const runs = make();
  const got: string[] = [];
  for (let k = 0, r = 0; k < msgs.length; r++) {
    const n = Math.min(reads[r % reads.length] as number, msgs.length - k);
    const read = Buffer.concat(msgs.slice(k, k + n));
    const sink = new Collect();
    runs.forwardRun(read, 0, read.length, sink);
    got.push(...copyPayloads(sink.bytes).map((b) => b.toString('hex')));
    k += n;
  }
  expect(got).toEqual(expected);
}

/** `payload` cut at `cuts` into CopyData messages. */
function cutMessages(payload: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (payload.length + 1)))].sort((a, b) => a - b);
  const bounds = [0, ...points, payload.length];
  return bounds.slice(1).map((e, k) => copyData(payload.subarray(bounds[k], e)));
}

describe('COPY runs (forwardRun) send what forward() sends message by message', () => {
  const CSV: CopyFormat = { format: 'csv', delimiter: 0x2c, nullString: Buffer.alloc(0), quote: 0x22, escape: 0x22, header: true };
  const strategyArb = fc.array(fc.option(fc.nat(FAST_STRATEGIES.length - 1), { nil: undefined }), { minLength: 3, maxLength: 3 });
  const fieldsArb = fc.array(fc.array(rowValue, { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 6 });
  const cutsArb = fc.array(fc.nat(400), { maxLength: 5 });
  const readsArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });
  const maskersOf = (strategies: (number | undefined)[], t: ValueType): (ValueMasker | undefined)[] =>
    strategies.map((s) => (s === undefined ? undefined : compile(FAST_STRATEGIES[s] as MaskStrategyConfig, t, true)));

  it('CSV (quoted values, newlines inside quotes, a header line)', () => {
    fc.assert(
      fc.property(strategyArb, fieldsArb, cutsArb, readsArb, fc.nat(1), (strategies, rows, cuts, reads, ti) => {
        const lines = rows.map((fields) => Buffer.concat([...fields.flatMap((f, i) => [...(i > 0 ? [Buffer.of(0x2c)] : []), f === null ? Buffer.alloc(0) : quoteCsv(f, 0x22, 0x22)]), Buffer.of(0x0a)]));
        const payload = Buffer.concat([Buffer.from('a,b,c\n'), ...lines]);
        const t = TYPES[ti] as ValueType;
        runsMatchMessages(() => new TextCopyRewriter(3, maskersOf(strategies, t), CSV, 'test', new OutputSlab()), cutMessages(payload, cuts), reads);
      }),
      { numRuns: 500 },
    );
  });

  it('binary (header with the first tuple, NULLs, the trailer)', () => {
    fc.assert(
      fc.property(strategyArb, fieldsArb, cutsArb, readsArb, fc.nat(1), (strategies, rows, cuts, reads, ti) => {
        const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
        const tuples = rows.map((fields) => {
          const parts: Buffer[] = [Buffer.from([0, 3])];
          for (const f of fields) {
            const len = Buffer.alloc(4);
            len.writeInt32BE(f === null ? -1 : f.length);
            parts.push(len, ...(f === null ? [] : [f]));
          }
          return Buffer.concat(parts);
        });
        const payload = Buffer.concat([header, ...tuples, Buffer.from([0xff, 0xff])]);
        const t = TYPES[ti] as ValueType;
        runsMatchMessages(() => new BinaryCopyRewriter(3, maskersOf(strategies, t), 'test', new OutputSlab()), cutMessages(payload, cuts), reads);
      }),
      { numRuns: 500 },
    );
  });

  it('text runs larger than a slab, with long values and escapes, one row per message', () => {
    const t = TYPES[0] as ValueType;
    const maskers = maskersOf([0, 3, undefined], t);
    const rows: (Buffer | null)[][] = Array.from({ length: 3000 }, (_, i) => [
      Buffer.from(i % 97 === 0 ? `long${'x'.repeat(20_000)}@example.com` : `person${i}@example.com`),
      i % 13 === 0 ? null : Buffer.from(i % 11 === 0 ? `a\\b\t${i}` : String(i).padStart(9, '0')),
      Buffer.from(i % 7 === 0 ? 'é ü \x01 ok' : `note ${i}`),
    ]);
    const fmt = TEXT_FORMATS[0] as CopyFormat;
    const escaped = rows.map((fields) => fields.map((f) => (f === null ? null : escapeText(f, fmt.delimiter))));
    const msgs = escaped.map((fields) => copyData(Buffer.concat([...fields.flatMap((f, i) => [...(i > 0 ? [Buffer.of(fmt.delimiter)] : []), f ?? fmt.nullString]), Buffer.of(0x0a)])));
    runsMatchMessages(() => new TextCopyRewriter(3, maskers, fmt, 'test', new OutputSlab()), msgs, [1000, 1, 700]);
    const rw = new TextCopyRewriter(3, maskers, fmt, 'test', new OutputSlab());
    const read = Buffer.concat(msgs);
    const sink = new Collect();
    rw.forwardRun(read, 0, read.length, sink);
    expect(Buffer.concat(copyPayloads(sink.bytes)).toString('hex')).toBe(referenceText(escaped, maskersOf([0, 3, undefined], t), fmt).toString('hex'));
    // A range per slab (64 KiB) or so, not per row.
    expect(sink.parts.length).toBeLessThan(read.length / 20_000);
  });

  it('a run that fails on a malformed row sends the rows before it, then throws', () => {
    const fmt = TEXT_FORMATS[0] as CopyFormat;
    const maskers = maskersOf([0, undefined, undefined], TYPES[0] as ValueType);
    const good = copyData(Buffer.from('a@b.c\t1\t2\n'));
    const bad = copyData(Buffer.from('a@b.c\t1\n'));
    const rw = new TextCopyRewriter(3, maskers, fmt, 'test', new OutputSlab());
    const read = Buffer.concat([good, good, bad, good]);
    const sink = new Collect();
    expect(() => rw.forwardRun(read, 0, read.length, sink)).toThrow(/2 fields, 3 columns expected/);
    expect(copyPayloads(sink.bytes).map((b) => b.toString())).toEqual(['****@b.c\t1\t2\n', '****@b.c\t1\t2\n']);
  });
});

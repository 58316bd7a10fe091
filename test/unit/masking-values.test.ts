// Type-aware masking checked by PostgreSQL itself: sample values of the common types come from
// the harness server in text and in binary format, every strategy masks them, and each masked
// value is sent back to the server as a parameter of the column's type (text: the type's input
// function; binary: its receive function). A masked value must be accepted, must differ from the
// original, and the text and binary paths must agree for deterministic strategies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MaskStrategyConfig } from '../../src/config/sections/masking.js';
import { valueType } from '../../src/masking/pg-types.js';
import { compileMasker, MASK_NULL, MASK_UNCHANGED, type MaskAction } from '../../src/masking/value-masker.js';
import { decodeDataRow, type FieldDescription } from '../../protocols/postgres/backend-messages.js';
import { fieldsOf, harnessTarget, RawPg, rowsOf } from '../integration/masking-wire.js';

const SAMPLE = `SELECT 'Alice Testperson'::text AS t, 'alice@example.com'::varchar(40) AS vc, '941-74-7468'::char(11) AS ssn,
  'x'::"char" AS ch, 'nm'::name AS nm, (-42)::int2 AS i2, 2147483647::int4 AS i4, 9007199254740993::int8 AS i8,
  42657.09::numeric(12,2) AS num, (-0.5)::numeric AS num2, 'NaN'::numeric AS nan, 3.25::float4 AS f4, (-1.5e300)::float8 AS f8,
  true AS b, '1953-09-07'::date AS d, '0044-03-15 BC'::date AS bc, '2024-01-01 00:00:00.062907'::timestamp AS ts,
  '2025-07-16 11:15:30.123457+00'::timestamptz AS tstz, 'infinity'::timestamp AS inf,
  '3d9c1724-11e2-4b8f-ab0d-549b6f03675a'::uuid AS u, '\\x89504e470d0a'::bytea AS by,
  '{"a": "alice@example.com", "n": 1}'::json AS j, '{"a": 1, "b": [1, 2]}'::jsonb AS jb,
  ARRAY['a', 'b c', NULL, 'd"e\\f']::text[] AS ta, ARRAY[1, 2, NULL]::int4[] AS ia, ARRAY['941-74-7468']::char(11)[] AS ca,
  ARRAY[['ab', 'cd'], ['ef', 'gh']]::text[] AS ta2, '1 day'::interval AS iv, '10.0.0.1'::inet AS ip`;

const KEY = 'a-masking-test-key-0123456789';
const STRATEGIES: MaskStrategyConfig[] = [
  { kind: 'redact', text: '[hidden]' },
  { kind: 'null' },
  { kind: 'partial', keepFirst: 1, keepLast: 2, maskChar: '*' },
  { kind: 'email', keepDomain: true, keepFirstLetter: true, maskChar: '*' },
  { kind: 'hash', key: KEY, length: 12 },
  { kind: 'format', key: KEY, keepFirst: 0, keepLast: 0 },
  { kind: 'date', precision: 'month' },
];
const DETERMINISTIC = new Set(['redact', 'partial', 'email', 'hash', 'format', 'date']);

let raw: RawPg;
let fields: FieldDescription[];
let text: (Buffer | null)[];
let binary: (Buffer | null)[];

beforeAll(async () => {
  raw = await RawPg.connect(harnessTarget());
  const t = await raw.extended(SAMPLE, [], [0]);
  const b = await raw.extended(SAMPLE, [], [1]);
  fields = fieldsOf(t);
  text = decodeDataRow(rowsOf(t)[0]!);
  binary = decodeDataRow(rowsOf(b)[0]!);
});

afterAll(async () => {
  await raw?.close();
});

function action(strategy: MaskStrategyConfig, binarySetting: 'null' | 'fail' = 'null', redactOnly = false): MaskAction {
  return { rule: 'test', strategy, redactOnly, redactText: '****', binary: binarySetting };
}

/** The masked bytes, null for SQL NULL, or 'refuse'. */
function mask(a: MaskAction, f: FieldDescription, value: Buffer, format: number): Buffer | null | 'refuse' | 'unchanged' {
  const m = compileMasker(a, valueType(f.typeOid, f.typeModifier), format);
  if ('refuse' in m) return 'refuse';
  const r = m.masker.mask(value, 0, value.length);
  if (r === MASK_NULL) return null;
  if (r === MASK_UNCHANGED) return 'unchanged';
  return Buffer.from(m.masker.out.subarray(0, r));
}

describe('masked values decode as their declared type (PostgreSQL is the judge)', () => {
  it('the sample holds every type in both formats', () => {
    expect(fields.map((f) => f.name)).toContain('tstz');
    expect(text.every((v) => v !== null)).toBe(true);
    expect(binary.every((v) => v !== null)).toBe(true);
  });

  for (const strategy of STRATEGIES) {
    for (const redactOnly of [false, true]) {
      it(`${strategy.kind}${redactOnly ? ' (full redaction)' : ''}: accepted by the type's input and receive functions`, async () => {
        const problems: string[] = [];
        let masked = 0;
        for (const [i, f] of fields.entries()) {
          const results: { format: number; text: string | null }[] = [];
          for (const format of [0, 1]) {
            const original = (format === 0 ? text : binary)[i] as Buffer;
            const out = mask(action(strategy, 'null', redactOnly), f, original, format);
            if (out === 'refuse' || out === 'unchanged') {
              problems.push(`${f.name}/${format}: ${out}`);
              continue;
            }
            if (out === null) {
              results.push({ format, text: null });
              continue;
            }
            masked++;
            const back = await raw.roundTrip(f.typeOid, out, format);
            if ('error' in back) {
              problems.push(`${f.name}/${format}: ${JSON.stringify(out.toString(format === 0 ? 'utf8' : 'hex'))} rejected: ${back.error}`);
              continue;
            }
            results.push({ format, text: back.text });
            const originalText = text[i]!.toString('utf8');
            if (back.text === originalText && !['inf', 'nan'].includes(f.name)) problems.push(`${f.name}/${format}: not masked (${originalText})`);
          }
          const [a, b] = results;
          if (DETERMINISTIC.has(strategy.kind) && a && b && a.text !== b.text) problems.push(`${f.name}: text gives ${a.text}, binary gives ${b.text}`);
        }
        expect(problems).toEqual([]);
        if (strategy.kind !== 'null') expect(masked).toBeGreaterThan(0);
      });
    }
  }

  it('keeps char(n) widths and varchar(n) limits', async () => {
    const ssn = fields.findIndex((f) => f.name === 'ssn');
    for (const s of STRATEGIES.filter((x) => x.kind !== 'null')) {
      const out = mask(action(s), fields[ssn]!, text[ssn]!, 0);
      if (out instanceof Buffer) expect(out.toString('utf8')).toHaveLength(11);
    }
    const vc = { ...fields.find((f) => f.name === 'vc')!, typeModifier: 5 + 4 };
    const out = mask(action({ kind: 'redact', text: 'a-long-redaction' }), vc, Buffer.from('alice'), 0);
    expect((out as Buffer).toString()).toBe('a-lon');
  });

  it('masks array elements and keeps the array shape', () => {
    const ta = fields.findIndex((f) => f.name === 'ta');
    const partialOut = mask(action({ kind: 'partial', keepFirst: 0, keepLast: 1, maskChar: '*' }), fields[ta]!, text[ta]!, 0) as Buffer;
    expect(partialOut.toString()).toBe('{*,**c,NULL,****f}');
    const ta2 = fields.findIndex((f) => f.name === 'ta2');
    expect((mask(action({ kind: 'redact', text: 'x' }), fields[ta2]!, text[ta2]!, 0) as Buffer).toString()).toBe('{{x,x},{x,x}}');
    const ia = fields.findIndex((f) => f.name === 'ia');
    expect((mask(action({ kind: 'redact', text: 'x' }), fields[ia]!, text[ia]!, 0) as Buffer).toString()).toBe('{NULL,NULL,NULL}');
  });

  it('keeps the jsonb version byte', () => {
    const jb = fields.findIndex((f) => f.name === 'jb');
    const out = mask(action({ kind: 'hash', key: KEY, length: 12 }), fields[jb]!, binary[jb]!, 1) as Buffer;
    expect(out[0]).toBe(1);
    expect(JSON.parse(out.toString('utf8', 1))).toMatch(/^[0-9a-f]{12}$/);
  });

  it('a type warden cannot rewrite: NULL, or in binary with binary: fail, a refusal', () => {
    const iv = fields.findIndex((f) => f.name === 'iv');
    expect(mask(action({ kind: 'partial', keepFirst: 0, keepLast: 1, maskChar: '*' }), fields[iv]!, text[iv]!, 0)).toBeNull();
    expect(mask(action({ kind: 'hash', key: KEY, length: 12 }), fields[iv]!, binary[iv]!, 1)).toBeNull();
    expect(mask(action({ kind: 'hash', key: KEY, length: 12 }, 'fail'), fields[iv]!, binary[iv]!, 1)).toBe('refuse');
    // Text format never refuses: NULL is always a valid value.
    expect(mask(action({ kind: 'hash', key: KEY, length: 12 }, 'fail'), fields[iv]!, text[iv]!, 0)).toBeNull();
    // The null strategy never refuses either.
    expect(mask(action({ kind: 'null' }, 'fail'), fields[iv]!, binary[iv]!, 1)).toBeNull();
  });
});

// Masking strategies and content classifiers as pure functions: every strategy's shape and
// determinism, the byte-level partial against the string one, and each classifier (Luhn, mod-97,
// SSN shapes, …) on values that must and must not match.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILTIN, customClassifier, findMatches, ibanValid, luhnValid } from '../../src/masking/classifiers.js';
import { valueType, TypeOid, type ScalarKind, type ValueType } from '../../src/masking/pg-types.js';
import { generalizeDate } from '../../src/masking/strategies/date.js';
import { email } from '../../src/masking/strategies/email.js';
import { formatPreserving } from '../../src/masking/strategies/format.js';
import { hashValue } from '../../src/masking/strategies/hash.js';
import { partial, partialBytes, partialBytesMax } from '../../src/masking/strategies/partial.js';
import { redact } from '../../src/masking/strategies/redact.js';
import { compileStrategy, strategyApplies } from '../../src/masking/strategies/index.js';

const st = (oid: number, typmod = -1): { kind: ScalarKind; type: ValueType } => {
  const type = valueType(oid, typmod);
  return { kind: type.kind as ScalarKind, type };
};
const TEXT = st(TypeOid.text);
const KEY = Buffer.from('a-test-key-of-24-bytes!!');
const OTHER_KEY = Buffer.from('another-key-of-24-bytes!');

describe('redact and null', () => {
  it('redacts text to the fixed text, json to a JSON string, other types to NULL', () => {
    expect(redact('[hidden]', 'text')).toBe('[hidden]');
    expect(redact('[hidden]', 'json')).toBe('"[hidden]"');
    expect(JSON.parse(redact('a"b', 'jsonb') as string)).toBe('a"b');
    for (const k of ['int4', 'numeric', 'date', 'uuid', 'bool', 'bytea'] as const) expect(redact('x', k)).toBeNull();
  });

  it('null applies to every type; partial and email only to text', () => {
    for (const k of ['text', 'int4', 'date', 'opaque'] as const) expect(strategyApplies('null', k)).toBe(true);
    expect(strategyApplies('partial', 'int4')).toBe(false);
    expect(strategyApplies('email', 'json')).toBe(false);
    expect(strategyApplies('hash', 'uuid')).toBe(true);
    expect(strategyApplies('date', 'bool')).toBe(false);
    expect(compileStrategy({ kind: 'null' })('941-74-7468', TEXT)).toBeNull();
  });
});

describe('partial', () => {
  const o = { keepFirst: 0, keepLast: 4, maskChar: '*' };

  it('keeps the last characters and one mask character per hidden one', () => {
    expect(partial('941-74-7468', TEXT, o)).toBe('*******7468');
    expect(partial('4111111111111111', TEXT, { keepFirst: 4, keepLast: 4, maskChar: '#' })).toBe('4111########1111');
  });

  it('masks a value too short to hide anything whole (never shows all of it)', () => {
    expect(partial('abcd', TEXT, o)).toBe('****');
    expect(partial('ab', TEXT, { keepFirst: 1, keepLast: 1, maskChar: '*' })).toBe('**');
    expect(partial('', TEXT, o)).toBe('');
  });

  it('counts characters, not bytes or UTF-16 units', () => {
    expect(partial('花子さんの番号', TEXT, { keepFirst: 1, keepLast: 2, maskChar: '•' })).toBe('花••••番号');
    expect(partial('a😀b😀c', TEXT, { keepFirst: 0, keepLast: 1, maskChar: '*' })).toBe('****c');
  });

  it('does not apply to non-text types', () => {
    expect(partial('42', st(TypeOid.int4), o)).toBeUndefined();
  });

  it('the byte version agrees with the string version on any UTF-8 text and options', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.nat(6), fc.nat(6), fc.constantFrom('*', '•', 'x', '█'), (value, keepFirst, keepLast, maskChar) => {
        const opts = { keepFirst, keepLast, maskChar };
        const src = Buffer.concat([Buffer.from('prefix'), Buffer.from(value, 'utf8'), Buffer.from('suffix')]);
        const len = Buffer.byteLength(value, 'utf8');
        const mask = Buffer.from(maskChar, 'utf8');
        const out = Buffer.alloc(partialBytesMax(len, mask));
        const n = partialBytes(src, 6, len, opts, mask, out);
        expect(out.toString('utf8', 0, n)).toBe(partial(value, TEXT, opts));
      }),
    );
  });
});

describe('email', () => {
  const o = { keepDomain: true, keepFirstLetter: false, maskChar: '*' };

  it('hides the local part and keeps the domain, or the first letter too', () => {
    expect(email('alice.testperson1@example.com', TEXT, o)).toBe('****@example.com');
    expect(email('alice.testperson1@example.com', TEXT, { ...o, keepFirstLetter: true })).toBe('a****@example.com');
    expect(email('alice.testperson1@example.com', TEXT, { ...o, keepDomain: false })).toBe('****@****');
  });

  it('hides the length of the local part', () => {
    expect(email('a@x.org', TEXT, o)).toBe(email('averyveryverylongname@x.org', TEXT, o)?.replace('averyveryverylongname', 'a'));
  });

  it('masks a value that is not an email address whole', () => {
    expect(email('not an address', TEXT, o)).toBe('****');
    expect(email('@example.com', TEXT, o)).toBe('****');
    expect(email('alice@', TEXT, o)).toBe('****');
  });
});

describe('hash', () => {
  const o = { key: KEY, length: 16 };

  it('is deterministic for a key and differs between keys and values', () => {
    const a = hashValue('alice@example.com', TEXT, o);
    expect(hashValue('alice@example.com', TEXT, o)).toBe(a);
    expect(hashValue('alice@example.com', TEXT, { ...o, key: OTHER_KEY })).not.toBe(a);
    expect(hashValue('bob@example.com', TEXT, o)).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
  });

  it('is shaped for the column type', () => {
    const int2 = Number(hashValue('12345', st(TypeOid.int2), o));
    expect(int2).toBeGreaterThanOrEqual(0);
    expect(int2).toBeLessThanOrEqual(32767);
    expect(BigInt(hashValue('9007199254740993', st(TypeOid.int8), o) as string)).toBeLessThan(2n ** 63n);
    expect(hashValue('3d9c1724-11e2-4b8f-ab0d-549b6f03675a', st(TypeOid.uuid), o)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // numeric(12,2): at most 10 integer digits and the scale kept.
    expect(hashValue('42657.09', st(TypeOid.numeric, ((12 << 16) | 2) + 4), o)).toMatch(/^\d{1,10}\.00$/);
    expect(hashValue('\\x0102', st(TypeOid.bytea), o)).toMatch(/^\\x[0-9a-f]{64}$/);
    expect(JSON.parse(hashValue('{"a":1}', st(TypeOid.jsonb), o) as string)).toMatch(/^[0-9a-f]{16}$/);
    expect(hashValue('1953-09-07', st(TypeOid.date), o)).toBeUndefined();
  });

  it('fits char(n) exactly and varchar(n) at most, ignoring char padding', () => {
    const ssn = st(TypeOid.bpchar, 11 + 4);
    expect(hashValue('941-74-7468', ssn, o)).toHaveLength(11);
    expect(hashValue('abc', st(TypeOid.bpchar, 11 + 4), o)).toBe(hashValue('abc        ', st(TypeOid.bpchar, 11 + 4), o));
    expect((hashValue('alice@example.com', st(TypeOid.varchar, 5 + 4), o) as string).length).toBe(5);
  });
});

describe('format-preserving', () => {
  const o = { key: KEY, keepFirst: 0, keepLast: 0 };

  it('keeps digits as digits, letters as letters of the same case, everything else in place', () => {
    const out = formatPreserving('4111-1111-1111-1111', TEXT, o) as string;
    expect(out).toMatch(/^\d{4}-\d{4}-\d{4}-\d{4}$/);
    expect(out).not.toBe('4111-1111-1111-1111');
    const mixed = formatPreserving('AB-12 cd', TEXT, o) as string;
    expect(mixed).toMatch(/^[A-Z]{2}-\d{2} [a-z]{2}$/);
    expect(formatPreserving('4111-1111-1111-1111', TEXT, o)).toBe(out);
  });

  it('keeps the first and last characters when asked', () => {
    const out = formatPreserving('4111111111111111', TEXT, { ...o, keepFirst: 2, keepLast: 4 }) as string;
    expect(out.startsWith('41')).toBe(true);
    expect(out.endsWith('1111')).toBe(true);
  });

  it('keeps numbers valid for their type', () => {
    fc.assert(
      fc.property(fc.integer({ min: -32768, max: 32767 }), (n) => {
        const out = formatPreserving(String(n), st(TypeOid.int2), o) as string;
        const v = Number(out);
        expect(Number.isInteger(v) && v >= -32768 && v <= 32767).toBe(true);
        expect(out.replace('-', '').length).toBe(String(n).replace('-', '').length);
        expect(/^-?(0|[1-9]\d*)$/.test(out)).toBe(true);
      }),
    );
    expect(formatPreserving('9223372036854775807', st(TypeOid.int8), o)).toMatch(/^\d{19}$/);
    expect(formatPreserving('-42657.09', st(TypeOid.numeric), o)).toMatch(/^-[1-9]\d{4}\.\d{2}$/);
    expect(formatPreserving('NaN', st(TypeOid.numeric), o)).toBe('NaN');
    expect(formatPreserving('1.5e+20', st(TypeOid.float8), o)).toMatch(/^\d\.\de\+20$/);
    expect(formatPreserving('3d9c1724-11e2-4b8f-ab0d-549b6f03675a', st(TypeOid.uuid), o)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(formatPreserving('2024-01-01', st(TypeOid.date), o)).toBeUndefined();
  });
});

describe('date generalisation', () => {
  it('keeps the year (or month) of dates and timestamps', () => {
    expect(generalizeDate('1953-09-07', st(TypeOid.date), { precision: 'year' })).toBe('1953-01-01');
    expect(generalizeDate('1953-09-07', st(TypeOid.date), { precision: 'month' })).toBe('1953-09-01');
    expect(generalizeDate('2024-01-01 00:00:00.062907', st(TypeOid.timestamp), { precision: 'month' })).toBe('2024-01-01 00:00:00');
    expect(generalizeDate('2025-07-16 11:15:30.123457+00', st(TypeOid.timestamptz), { precision: 'year' })).toBe('2025-01-01 00:00:00+00');
    expect(generalizeDate('2025-07-16 11:15:30+05:30', st(TypeOid.timestamptz), { precision: 'month' })).toBe('2025-07-01 00:00:00+05:30');
    expect(generalizeDate('0044-03-15 BC', st(TypeOid.date), { precision: 'year' })).toBe('0044-01-01 BC');
    expect(generalizeDate('infinity', st(TypeOid.date), { precision: 'year' })).toBe('infinity');
  });

  it('works on ISO text, and gives up on anything else (the caller redacts)', () => {
    expect(generalizeDate('1953-09-07', TEXT, { precision: 'year' })).toBe('1953-01-01');
    expect(generalizeDate('09/07/1953', TEXT, { precision: 'year' })).toBeUndefined();
    expect(generalizeDate('07.09.1953', st(TypeOid.date), { precision: 'year' })).toBeUndefined();
    expect(generalizeDate('1953-09-07', st(TypeOid.int4), { precision: 'year' })).toBeUndefined();
  });
});

describe('content classifiers', () => {
  const found = (name: keyof typeof BUILTIN, text: string): string[] => findMatches(text, [BUILTIN[name]]).map((m) => text.slice(m.start, m.end));

  it('Luhn: the public test card numbers pass, one changed digit fails', () => {
    for (const n of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '30569309025904', '3530111333300000', '5105105105105100']) {
      expect(luhnValid(n)).toBe(true);
    }
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('4111 1111 1111 1111')).toBe(false); // digits only
    fc.assert(
      fc.property(fc.stringMatching(/^\d{15}$/), fc.integer({ min: 1, max: 9 }), (body, bump) => {
        // Exactly one check digit makes a number valid.
        const valid = [...'0123456789'].filter((d) => luhnValid(body + d));
        expect(valid).toHaveLength(1);
        const d = Number(valid[0]);
        expect(luhnValid(body + String((d + bump) % 10))).toBe(false);
      }),
    );
  });

  it('finds card numbers in text, grouped or not, only when the Luhn check passes', () => {
    expect(found('card_number', 'paid with 4111-1111-1111-1111 yesterday')).toEqual(['4111-1111-1111-1111']);
    expect(found('card_number', 'card 4111 1111 1111 1111.')).toEqual(['4111 1111 1111 1111']);
    expect(found('card_number', 'order 4111111111111112 (not a card)')).toEqual([]);
    expect(found('card_number', 'amex 378282246310005, visa 4242424242424242')).toEqual(['378282246310005', '4242424242424242']);
    expect(found('card_number', 'phone 2024561111')).toEqual([]);
  });

  it('finds US SSN shapes but not impossible ones', () => {
    expect(found('us_ssn', 'ssn 941-74-7468 on file')).toEqual(['941-74-7468']);
    expect(found('us_ssn', '123 45 6789')).toEqual(['123 45 6789']);
    expect(found('us_ssn', '000-12-3456 666-12-3456 123-00-4567 123-45-0000')).toEqual([]);
    expect(found('us_ssn', 'part of 1941-74-74689')).toEqual([]);
  });

  it('finds IBANs whose mod-97 check passes', () => {
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('DE89370400440532013000')).toBe(true);
    expect(ibanValid('DE89370400440532013001')).toBe(false);
    expect(found('iban', 'pay to DE89370400440532013000 today')).toEqual(['DE89370400440532013000']);
    expect(found('iban', 'pay to GB82 WEST 1234 5698 7654 32.')).toEqual(['GB82 WEST 1234 5698 7654 32']);
    expect(found('iban', 'ref DE89370400440532013001')).toEqual([]);
  });

  it('finds emails, phone numbers, UK NINOs, Canadian SINs, JWTs and API keys', () => {
    expect(found('email', 'write to alice.testperson1@example.com or bob@mail.example.org.')).toEqual(['alice.testperson1@example.com', 'bob@mail.example.org']);
    expect(found('phone', 'call +1 415 555 2671 or (415) 555-2671')).toEqual(['+1 415 555 2671', '(415) 555-2671']);
    expect(found('phone', 'version 1.2.3')).toEqual([]);
    expect(found('uk_nino', 'NI number AB 12 34 56 C')).toEqual(['AB 12 34 56 C']);
    expect(found('uk_nino', 'QQ 12 34 56 C')).toEqual([]); // Q is never a first letter
    expect(found('uk_nino', 'GB123456A')).toEqual([]);
    expect(found('ca_sin', 'SIN 046-454-286')).toEqual(['046-454-286']);
    expect(found('ca_sin', 'SIN 046-454-287')).toEqual([]);
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl';
    expect(found('jwt', `Authorization: Bearer ${jwt}`)).toEqual([jwt]);
    expect(found('api_key', 'key AKIAIOSFODNN7EXAMPLE and ghp_0123456789abcdefghijklmnopqrstuvwxyz')).toEqual(['AKIAIOSFODNN7EXAMPLE', 'ghp_0123456789abcdefghijklmnopqrstuvwxyz']);
    expect(found('api_key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----')).toHaveLength(1);
  });

  it('custom classifiers: compiled with flags, refused when invalid or matching nothing', () => {
    const c = customClassifier('employee_id', 'emp-[0-9]{6}', true);
    expect(typeof c).toBe('object');
    if (typeof c === 'string') return;
    expect(findMatches('EMP-123456 and emp-654321', [c]).length).toBe(2);
    expect(customClassifier('bad', '(', false)).toMatch(/not a valid regular expression/);
    expect(customClassifier('empty', 'a*', false)).toBe('matches the empty string');
  });

  it('merges overlapping matches of several classifiers', () => {
    const text = 'card 4111 1111 1111 1111 end';
    const m = findMatches(text, [BUILTIN.phone, BUILTIN.card_number]);
    expect(m).toHaveLength(1);
    expect(text.slice(m[0]!.start, m[0]!.end)).toContain('4111 1111 1111 1111');
  });
});

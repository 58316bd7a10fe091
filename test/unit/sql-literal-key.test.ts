import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { literalKey } from '../../src/sql/literal-key.js';
import { classifyStatement } from '../../src/sql/fast.js';
import { classify, initSqlParser } from '../../src/sql/index.js';
import type { Classification } from '../../src/sql/types.js';

beforeAll(async () => {
  await initSqlParser();
});

describe('literalKey', () => {
  it('replaces numeric literals only', () => {
    const a = literalKey('SELECT abalance FROM pgbench_accounts WHERE aid = 48213;');
    const b = literalKey('SELECT abalance FROM pgbench_accounts WHERE aid = 7;');
    expect(a).toBe(b);
    expect(a).not.toContain('48213');
    expect(literalKey('SELECT 1.5e-3, .5, 0x1F, 1_000')).toBe(literalKey('SELECT 2.5e+9, .7, 0xAB, 2_000'));
  });

  it('keeps digits inside strings, identifiers, quoted identifiers, parameters, comments and dollar quotes', () => {
    for (const sql of [
      "SELECT 'abc123' FROM t1",
      'SELECT "col 1" FROM "t 2"',
      'SELECT $1, $2 FROM t',
      'SELECT x -- 123\nFROM t',
      'SELECT x /* 1 /* 2 */ 3 */ FROM t',
      'DO $$BEGIN PERFORM 1; END$$',
      'DO $tag$ select 42 $tag$',
      "SELECT E'\\'1\\'' FROM t",
      "SELECT set_config('role', 'x1', false)",
    ]) {
      expect(literalKey(sql)).toBe(sql);
    }
  });

  it('leaves texts with ORDER BY or GROUP BY alone: there a number can name a column', () => {
    expect(literalKey('SELECT id, ssn FROM customers WHERE id > 5 ORDER BY 2')).toBe('SELECT id, ssn FROM customers WHERE id > 5 ORDER BY 2');
    expect(literalKey('SELECT ssn, count(*) FROM customers GROUP  BY 1')).toBe('SELECT ssn, count(*) FROM customers GROUP  BY 1');
  });

  it('falls back to the whole text when unsure', () => {
    for (const sql of ["SELECT 'unterminated 1", 'SELECT 1abc', "SELECT U&'d\\0061t\\+000061' , 1", 'SELECT /* open 1', 'SELECT $x$ 1']) {
      expect(literalKey(sql)).toBe(sql);
    }
  });

  it('texts sharing a key classify the same (property)', () => {
    const templates = [
      'SELECT abalance FROM pgbench_accounts WHERE aid = #',
      'UPDATE pgbench_accounts SET abalance = abalance + # WHERE aid = #',
      "SELECT * FROM customers WHERE id IN (#, #) AND email LIKE 'a%' LIMIT #",
      'DELETE FROM orders WHERE amount > #.# RETURNING id',
      'SELECT pg_terminate_backend(#)',
      "SELECT set_config('role', 'x', false), #",
      'INSERT INTO t(a, b) VALUES (#, -#.#e#)',
      'SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.amount > # AND c.rank < # HAVING count(*) > #',
    ];
    const strip = (c: Classification): unknown =>
      c.ok ? c.statements.map(({ text: _t, start: _s, tree: _tr, normalized: _n, ...rest }) => rest) : c;
    fc.assert(
      fc.property(fc.constantFrom(...templates), fc.array(fc.nat(100000), { minLength: 4, maxLength: 4 }), fc.array(fc.nat(100000), { minLength: 4, maxLength: 4 }), (t, xs, ys) => {
        let i = 0;
        const a = t.replace(/#/g, () => String(xs[i++ % 4]));
        i = 0;
        const b = t.replace(/#/g, () => String(ys[i++ % 4]));
        expect(literalKey(a)).toBe(literalKey(b));
        expect(strip(classifyStatement(b))).toEqual(strip(classify(b)));
        expect(strip(classifyStatement(a))).toEqual(strip(classify(a)));
      }),
      { numRuns: 200 },
    );
  });
});

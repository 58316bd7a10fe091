// The `masking:` configuration section: defaults, every strategy's options, selectors and
// classifiers, audiences, and precise problems with positions — read alone (readYaml) and as
// part of a whole configuration (principal references, the example policy).
import { describe, expect, it } from 'vitest';
import { readYaml } from '../../src/config/document.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { MASKING_DEFAULTS, readMasking, type MaskingConfig } from '../../src/config/sections/masking.js';
import { fixturePath } from '../../src/embedded/seed.js';
import { createMaskingEngine } from '../../src/masking/index.js';
import { compileRules } from '../../src/masking/rules.js';
import { parseColumnSelector, selectorMatches } from '../../src/masking/selectors.js';
import { lineCol, valueOf } from './config-helpers.js';

function read(yaml: string, env: NodeJS.ProcessEnv = {}): { value: MaskingConfig | undefined; problems: string[] } {
  const r = readYaml(yaml, (root) => readMasking(root.section(['masking'])!.get('masking'), { principals: new Set(['agent', 'security-team']) }), { env });
  return { value: r.value, problems: r.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.reason}`) };
}

const pos = (p: { line: number; col: number }): string => `${p.line}:${p.col}`;

function ok(yaml: string, env: NodeJS.ProcessEnv = {}): MaskingConfig {
  const r = read(yaml, env);
  expect(r.problems).toEqual([]);
  return r.value as MaskingConfig;
}

describe('masking: defaults and options', () => {
  it('fills the documented defaults', () => {
    const c = ok('masking:\n  rules:\n    - { name: r, columns: [public.customers.ssn], strategy: partial }\n');
    expect(c.rules[0]).toEqual({
      name: 'r',
      columns: ['public.customers.ssn'],
      columnNames: [],
      content: [],
      strategy: { kind: 'partial', keepFirst: 0, keepLast: 4, maskChar: '*' },
      binary: 'null',
      inference: 'deny',
      laundering: 'deny',
    });
    expect(MASKING_DEFAULTS).toMatchObject({ binary: 'null', inference: 'deny', laundering: 'deny', redactText: '****' });
    expect(ok('masking: {}\n')).toEqual({ rules: [], classifiers: [] });
  });

  it('reads every strategy with its options', () => {
    const c = ok(`masking:
  rules:
    - { name: a, columns: [t.c], strategy: redact, options: { text: "[x]" } }
    - { name: b, columns: [t.c], strategy: "null" }
    - { name: c, columns: [t.c], strategy: partial, options: { keep_first: 2, keep_last: 0, mask_char: "•" } }
    - { name: d, columns: [t.c], strategy: email, options: { keep_domain: false, keep_first_letter: true, mask_char: "#" } }
    - { name: e, columns: [t.c], strategy: hash, options: { key: "\${env:MASK_KEY}", length: 32 } }
    - { name: f, columns: [t.c], strategy: format }
    - { name: g, columns: [t.c], strategy: date, options: { precision: month } }
`, { MASK_KEY: 'k'.repeat(32) });
    expect(c.rules.map((r) => r.strategy)).toEqual([
      { kind: 'redact', text: '[x]' },
      { kind: 'null' },
      { kind: 'partial', keepFirst: 2, keepLast: 0, maskChar: '•' },
      { kind: 'email', keepDomain: false, keepFirstLetter: true, maskChar: '#' },
      { kind: 'hash', key: 'k'.repeat(32), length: 32 },
      { kind: 'format', keepFirst: 0, keepLast: 0 },
      { kind: 'date', precision: 'month' },
    ]);
  });

  it('reads classifiers, audiences and settings', () => {
    const c = ok(`masking:
  classifiers:
    - { name: employee_id, pattern: 'EMP-[0-9]{6}', ignore_case: true }
  rules:
    - name: r
      column_names: ['*ssn*']
      content: [employee_id, national_id]
      strategy: redact
      applies_to: { roles: [Shop.ReadOnly], groups: [g1] }
      exempt: { principals: [security-team] }
      binary: fail
      inference: hold
      laundering: allow
`);
    expect(c.classifiers).toEqual([{ name: 'employee_id', pattern: 'EMP-[0-9]{6}', ignoreCase: true }]);
    expect(c.rules[0]).toMatchObject({
      columnNames: ['*ssn*'],
      content: ['employee_id', 'national_id'],
      appliesTo: { principals: [], roles: ['Shop.ReadOnly'], groups: ['g1'] },
      exempt: { principals: ['security-team'], roles: [], groups: [] },
      binary: 'fail',
      inference: 'hold',
      laundering: 'allow',
    });
    const [rule] = compileRules(c);
    expect(rule!.classifiers.map((k) => k.name)).toEqual(['employee_id', 'us_ssn', 'uk_nino', 'ca_sin']);
    expect(rule!.coversColumn('public', 'people', 'home_SSN')).toBe(true);
  });
});

describe('masking: problems, each at its position', () => {
  it('reports every problem of a broken section, in file order', () => {
    const yaml = `masking:
  classifiers:
    - { name: bad, pattern: '(' }
    - { name: email, pattern: 'x' }
  rules:
    - name: ids
      columns: [public.customers.ssn, 'a..b', customers]
      content: [us_ssn, emial]
      strategy: partial
      options: { keep_last: 99, mask_char: '"', keep_frist: 2 }
    - name: ids
      column_names: ['*']
      strategy: hash
      options: { key: short }
    - name: n
      columns: [x.y]
      strategy:
      exempt: { principals: [nobody] }
    - name: s
      strategy: redact
      inference: maybe
`;
    expect(read(yaml).problems).toEqual([
      `${lineCol(yaml, "'('").line}:${lineCol(yaml, "'('").col} masking.classifiers[0].pattern: is not a valid regular expression: /(/gu: Unterminated group`,
      `${valueOf(yaml, 'name: email').line}:${valueOf(yaml, 'name: email').col} masking.classifiers[1].name: is the name of a built-in classifier; choose another name, got "email"`,
      `7:39 masking.rules[0].columns[1]: has an empty name part, got "a..b"`,
      `7:47 masking.rules[0].columns[2]: must be schema.table.column or table.column (use column_names for a column name alone), got "customers"`,
      `8:25 masking.rules[0].content[1]: unknown content classifier "emial" (did you mean "email"?); built-in: email, card_number, us_ssn, uk_nino, ca_sin, iban, phone, jwt, api_key, national_id; custom: bad`,
      `${pos(valueOf(yaml, 'keep_last: 99'))} masking.rules[0].options.keep_last: must be an integer between 0 and 64, got 99`,
      `${pos(valueOf(yaml, `mask_char: '"'`))} masking.rules[0].options.mask_char: must be a visible character other than a quote, backslash, comma or semicolon, got "\\""`,
      `${pos(lineCol(yaml, 'keep_frist'))} masking.rules[0].options.keep_frist: unknown key (did you mean "keep_first"?)`,
      `11:13 masking.rules[1].name: duplicate rule name "ids" (first used at line 6)`,
      `12:22 masking.rules[1].column_names[0]: matches every column name; name the columns, got "*"`,
      `14:23 masking.rules[1].options.key: must be at least 16 bytes long`,
      `17:7 masking.rules[2].strategy: is required but has no value (for the NULL strategy write "null" in quotes: a bare null is YAML for "no value")`,
      `18:30 masking.rules[2].exempt.principals[0]: unknown principal "nobody"; known principals: agent, security-team`,
      `19:7 masking.rules[3]: must select data with at least one of columns, column_names, content`,
      `21:18 masking.rules[3].inference: must be one of allow, deny, hold, got "maybe"`,
    ]);
  });

  it('never prints a key, even when it is too short', () => {
    const yaml = 'masking:\n  rules:\n    - { name: r, columns: [a.b], strategy: hash, options: { key: "${env:K}" } }\n';
    const r = { ...read(yaml, { K: 'tiny-secret' }), yaml };
    expect(r.problems.join('\n')).not.toContain('tiny-secret');
    expect(r.problems).toEqual([`${pos(lineCol(r.yaml, '"${env:K}"'))} masking.rules[0].options.key: must be at least 16 bytes long`]);
  });

  it('requires the hash key, and an audience to name someone', () => {
    expect(read('masking:\n  rules:\n    - { name: r, columns: [a.b], strategy: hash }\n').problems[0]).toMatch(/options\.key: is required \(the HMAC key/);
    expect(read('masking:\n  rules:\n    - { name: r, columns: [a.b], strategy: redact, exempt: {} }\n').problems[0]).toMatch(/exempt: must name at least one of principals, roles, groups/);
  });

  it('in a whole configuration, principal names are checked against the principals section', () => {
    const base = `listen: { postgres: { host: 127.0.0.1, port: 6432 }, admin: { host: 127.0.0.1, port: 9187 } }
plaintext_tokens: loopback
identity: { dev_issuer: { enabled: true } }
targets: { shop: { protocol: postgres, host: 127.0.0.1, database: shop, user: u, password: p } }
principals: [{ name: agent, match: { issuer: dev, subject: a }, targets: [shop] }]
`;
    const good = parseConfig(`${base}masking:\n  rules:\n    - { name: r, columns: [a.b], strategy: redact, exempt: { principals: [agent] } }\n`);
    expect(good.masking?.rules[0]?.exempt?.principals).toEqual(['agent']);
    expect(parseConfig(base).masking).toBeUndefined();
    try {
      parseConfig(`${base}masking:\n  rules:\n    - { name: r, columns: [a.b], strategy: redact, exempt: { principals: [agnet] } }\n`);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.reason)).toEqual(['unknown principal "agnet" (did you mean "agent"?); known principals: agent']);
    }
  });

  it('the example policy has a masking section for the shop database that compiles', async () => {
    const config = await loadConfig(fixturePath('policies', 'example.yaml'), { env: { SHOP_PG_PASSWORD: 'x', SHOP_MSSQL_PASSWORD: 'y' } });
    const names = config.masking?.rules.map((r) => r.name);
    expect(names).toEqual(['national-ids', 'card-numbers', 'contact', 'names', 'salaries', 'birth-dates', 'secrets-in-text']);
    const engine = createMaskingEngine({ masking: config.masking, targets: config.targets });
    const agent = { name: 'reporting-agent', issuerName: 'azure', issuer: 'x', subject: 's', subjectClaim: 'azp', roles: ['Shop.ReadOnly'], groups: [], groupsOverage: false, audience: 'a' };
    expect(engine.rulesFor(agent).all).toHaveLength(7);
    expect(engine.rulesFor({ ...agent, name: 'security-team' }).empty).toBe(true);
  });
});

describe('column selectors', () => {
  it('fold unquoted names, keep quoted ones, and match wildcards per part', () => {
    const sel = (t: string): ReturnType<typeof parseColumnSelector> => parseColumnSelector(t);
    const m = (t: string, s: string | undefined, table: string, col: string): boolean => {
      const p = sel(t);
      if (typeof p === 'string') throw new Error(p);
      return selectorMatches(p, s, table, col);
    };
    expect(m('Public.Customers.SSN', 'public', 'customers', 'ssn')).toBe(true);
    expect(m('"HR"."Staff".salary', 'HR', 'Staff', 'salary')).toBe(true);
    expect(m('"HR"."Staff".salary', 'hr', 'staff', 'salary')).toBe(false);
    expect(m('customers.ssn', 'archive', 'customers', 'ssn')).toBe(true);
    expect(m('*.customers.card_*', 'x', 'customers', 'card_number')).toBe(true);
    expect(m('public.cust?mers.ssn', 'public', 'customers', 'ssn')).toBe(true);
    expect(m('public.customers.ssn', 'archive', 'customers', 'ssn')).toBe(false);
    // A name written without a schema may be any schema's.
    expect(m('public.customers.ssn', undefined, 'customers', 'ssn')).toBe(true);
    expect(m('"a.b".c.d', 'a.b', 'c', 'd')).toBe(true);
    expect(sel('"unterminated.c.d')).toBe('has an unterminated double quote');
    expect(sel('a.b.c.d')).toMatch(/must be schema.table.column/);
  });
});

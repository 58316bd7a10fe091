// The masking catalog and plans against the harness PostgreSQL: which output column is masked,
// decided from real RowDescriptions (table OID + attribute number) and lineage — aliases, views
// (PostgreSQL reports the view, not its base table), nested views, search_path tricks, a temp
// table shadowing a protected table, whole rows, statistics views — and a battery of derived
// expressions. Each query runs for real; the rows are rewritten with the plan and checked.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMaskingEngine, type Masker, type WardenMaskingEngine } from '../../src/masking/index.js';
import type { RowMaskPlan } from '../../src/masking/types.js';
import { classify, initSqlParser, type StatementInfo } from '../../src/sql/index.js';
import { fieldsOf, harnessTarget, maskingConfig, principal, RawPg, rowsOf, superuserTarget, values } from './masking-wire.js';

const S = `mask_cat_${process.pid}`;
const CONFIG = maskingConfig(`
masking:
  rules:
    - name: ssn
      columns: [public.customers.ssn]
      strategy: partial
      options: { keep_last: 4 }
    - name: email
      columns: [customers.email]
      strategy: email
    - name: cards
      columns: [public.customers.card_number]
      strategy: hash
      options: { key: a-test-key-for-cards-0001 }
    - name: salary
      columns: [public.customers.salary]
      strategy: "null"
`);

let engine: WardenMaskingEngine;
let masker: Masker;
let raw: RawPg;
let admin: pg.Client;

function stmtOf(sql: string): StatementInfo | undefined {
  const c = classify(sql);
  return c.ok ? c.statements[c.statements.length - 1] : undefined;
}

interface Result {
  plan: RowMaskPlan;
  names: string[];
  rows: (string | null)[][];
  /** Per column: "rule/strategy" or "-". */
  masks: string[];
}

/** Runs `sql` and plans its result; `as` is the statement the plan is told about (default: `sql` parsed; null: unknown). */
async function run(sql: string, as: StatementInfo | null | 'parse' = 'parse'): Promise<Result> {
  const msgs = await raw.query(sql);
  const fields = fieldsOf(msgs);
  const plan = await masker.plan(fields, as === 'parse' ? stmtOf(sql) : (as ?? undefined));
  const rows = rowsOf(msgs).map((r) => values(plan.rewriteDataRow(r, 0, r.length) ?? r));
  return { plan, names: fields.map((f) => f.name), rows, masks: plan.columns.map((c) => (c ? `${c.rule}/${c.strategy}` : '-')) };
}

beforeAll(async () => {
  await initSqlParser();
  admin = new pg.Client({ ...superuserTarget(), ssl: false });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${S}`);
  await admin.query(`CREATE VIEW ${S}.v1 AS SELECT id, lower(email) AS le, ssn AS national, full_name FROM public.customers`);
  await admin.query(`CREATE VIEW ${S}.v2 AS SELECT national AS n2, le, id FROM ${S}.v1`);
  await admin.query(`CREATE TABLE ${S}.customers (id int, ssn text, email text)`);
  await admin.query(`INSERT INTO ${S}.customers VALUES (1, 'not-a-secret', 'decoy@example.org')`);
  await admin.query(`GRANT USAGE ON SCHEMA ${S} TO warden_scram; GRANT SELECT ON ALL TABLES IN SCHEMA ${S} TO warden_scram`);
  engine = createMaskingEngine({ masking: CONFIG, targets: new Map([['shop', harnessTarget()]]) });
  masker = (await engine.masker({ principal: principal(), target: 'shop' })) as Masker;
  raw = await RawPg.connect(harnessTarget());
});

afterAll(async () => {
  await raw?.close();
  await engine?.close();
  await admin?.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  await admin?.end();
});

describe('plain columns: the RowDescription origin decides', () => {
  it('masks through aliases', async () => {
    const r = await run('SELECT c.ssn AS x, c.email AS y, c.id FROM customers AS c WHERE c.id = 1');
    expect(r.masks).toEqual(['ssn/partial', 'email/email', '-']);
    expect(r.rows).toEqual([['*******7468', '****@example.com', '1']]);
    // The table each masked value came from (recorded in transcripts for the access review).
    expect(r.plan.columns.map((c) => c?.table ?? '-')).toEqual(['public.customers', 'public.customers', '-']);
  });

  it('reports views as views: their columns are traced through the definition', async () => {
    const r = await run(`SELECT national, le, full_name FROM ${S}.v1 WHERE id = 1`);
    expect(r.plan.columns[0]?.because).toContain('public.customers.ssn');
    expect(r.plan.columns[0]?.table).toBe('public.customers'); // the table behind the view
    expect(r.masks).toEqual(['ssn/partial', 'email/redact', '-']);
    expect(r.rows).toEqual([['*******7468', '****', 'Alice Testperson']]);
  });

  it('follows views of views', async () => {
    const r = await run(`SELECT n2, le FROM ${S}.v2 WHERE id = 2`);
    expect(r.masks).toEqual(['ssn/partial', 'email/redact']);
    expect(r.rows[0]).toEqual(['*******4657', '****']);
  });

  it('a rule naming the view itself also applies', async () => {
    const e = createMaskingEngine({
      masking: maskingConfig(`masking:\n  rules:\n    - { name: view-rule, columns: ["${S}.v1.full_name"], strategy: redact }\n`),
      targets: new Map([['shop', harnessTarget()]]),
    });
    try {
      const m = (await e.masker({ principal: principal(), target: 'shop' })) as Masker;
      const msgs = await raw.query(`SELECT full_name, id FROM ${S}.v1 WHERE id = 3`);
      const plan = await m.plan(fieldsOf(msgs), stmtOf(`SELECT full_name, id FROM ${S}.v1`));
      expect(plan.columns.map((c) => c?.rule ?? '-')).toEqual(['view-rule', '-']);
    } finally {
      await e.close();
    }
  });

  it('a whole row (attnum 0) of a protected table is fully redacted', async () => {
    const r = await run('SELECT c, id FROM customers c WHERE id = 1');
    expect(r.plan.columns[0]?.because).toMatch(/whole row|several rules/);
    expect(r.rows).toEqual([[null, '1']]);
  });

  it('planner statistics of protected tables are protected', async () => {
    await admin.query('ANALYZE public.customers');
    const r = await run("SELECT attname, most_common_vals, histogram_bounds FROM pg_stats WHERE schemaname = 'public' AND tablename = 'customers' AND attname = 'ssn'");
    expect(r.masks[0]).toBe('-');
    expect(r.masks[1]).not.toBe('-');
    expect(r.masks[2]).not.toBe('-');
    for (const row of r.rows) expect(JSON.stringify(row)).not.toContain('941-74-7468');
  });
});

describe('search_path and temp tables cannot disguise a protected table', () => {
  it('a same-named table in another schema is itself, by OID (not protected by public.customers rules)', async () => {
    await raw.query(`SET search_path = ${S}, public`);
    try {
      const r = await run('SELECT ssn, email FROM customers');
      expect(r.masks).toEqual(['-', 'email/email']); // `customers.email` names any schema
      expect(r.rows).toEqual([['not-a-secret', '****@example.org']]);
      // Lineage sees only the unqualified name: every same-named relation counts.
      const d = await run(`SELECT ssn || '' AS s FROM customers`);
      expect(d.masks).toEqual(['ssn/redact']);
    } finally {
      await raw.query('RESET search_path');
    }
  });

  it('a temp table shadowing public.customers is resolved by OID, even when created after the snapshot', async () => {
    await raw.query(`CREATE TEMP TABLE customers (ssn text, email text, card_number text)`);
    try {
      await raw.query(`INSERT INTO customers VALUES ('111-22-3333', 'temp@example.net', '4111111111111111')`);
      const r = await run('SELECT ssn, email, card_number FROM customers');
      expect(r.masks).toEqual(['-', 'email/email', '-']);
      expect(r.rows).toEqual([['111-22-3333', '****@example.net', '4111111111111111']]);
      // Copying the real table into the temp one would be laundering (checked before it runs).
      expect(masker.checkStatement(stmtOf('INSERT INTO customers SELECT ssn, email, card_number FROM public.customers')).action).toBe('deny');
      // And reading the real one through pg_temp-proof qualification still masks.
      const q = await run('SELECT ssn FROM public.customers WHERE id = 1');
      expect(q.rows).toEqual([['*******7468']]);
    } finally {
      await raw.query('DROP TABLE pg_temp.customers');
    }
  });
});

describe('derived columns (table OID 0): lineage decides', () => {
  const cases: [string, string[]][] = [
    ['SELECT ssn FROM customers UNION ALL SELECT ssn FROM customers', ['ssn/partial']],
    ['WITH x AS (SELECT ssn AS s FROM customers) SELECT s FROM x', ['ssn/partial']],
    ['SELECT ssn::text FROM customers', ['ssn/partial']],
    ['SELECT lower(email) FROM customers', ['email/redact']],
    ['SELECT length(ssn) FROM customers', ['ssn/null']],
    ["SELECT reverse(ssn) FROM customers", ['ssn/redact']],
    ["SELECT CASE WHEN id > 0 THEN ssn ELSE 'x' END FROM customers", ['ssn/redact']],
    ["SELECT string_agg(email, ',') FROM customers", ['email/redact']],
    ['SELECT array_agg(ssn) FROM customers', ['ssn/redact']],
    ['SELECT md5(card_number) FROM customers', ['cards/redact']], // a hash of a computed value is not sent
    ['SELECT card_number FROM customers UNION ALL SELECT NULL', ['cards/redact']], // column and constants mixed
    ['SELECT (SELECT ssn FROM customers WHERE id = 1)', ['ssn/redact']],
    ["SELECT x FROM customers, LATERAL (SELECT ssn || '!' AS x) l", ['ssn/redact']],
    ['SELECT row_to_json(c) FROM customers c', ['ssn/redact']],
    ['SELECT to_jsonb(c.*) FROM customers c', ['ssn/redact']],
    ['SELECT json_agg(c) FROM customers c', ['ssn/redact']],
    ["SELECT ssn || email FROM customers", ['ssn/redact']],
    ['SELECT salary + 1 FROM customers', ['salary/null']],
    ['SELECT count(*), max(id) FROM customers', ['-', '-']],
    ["SELECT 'literal', 42", ['-', '-']],
  ];
  for (const [sql, masks] of cases) {
    it(sql, async () => {
      const r = await run(sql);
      expect(r.masks).toEqual(masks);
      const text = JSON.stringify(r.rows);
      for (const secret of ['941-74-7468', '7468-47-149', 'alice.testperson1@example.com', '4111111111111111', '42657.09']) expect(text).not.toContain(secret);
    });
  }

  it('the json redaction is still valid json', async () => {
    const r = await run('SELECT row_to_json(c) FROM customers c WHERE id = 1');
    expect(JSON.parse(r.rows[0]![0] as string)).toBe('****');
  });

  it('an unknown statement: every column without a table origin counts as derived from every protected column', async () => {
    const r = await run("SELECT id, ssn, 'plain' AS p FROM customers WHERE id = 1", null);
    expect(r.masks).toEqual(['-', 'ssn/partial', 'ssn/redact']);
    expect(r.rows).toEqual([['1', '*******7468', '****']]);
  });

  it('results that do not line up with the statement are treated as unknown', async () => {
    const r = await run("SELECT 'a' AS one, 'b' AS two", stmtOf("SELECT 'a' AS other, 'b' AS two") ?? null);
    expect(r.masks).toEqual(['ssn/redact', 'ssn/redact']);
  });
});

describe('catalog lifecycle', () => {
  it('a relation OID that does not exist refuses the result (42501 cannot resolve column origin)', async () => {
    const plan = await masker.plan([{ name: 'x', tableOid: 4_000_000_000, columnAttr: 1, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }], undefined);
    expect(plan.refuse?.message).toBe('cannot resolve column origin');
    expect(() => plan.rewriteDataRow(Buffer.from('D\0\0\0\x06\0\0'), 0, 7)).toThrow();
  });

  it('invalidate() after DDL reloads the snapshot; new views are traced', async () => {
    await admin.query(`CREATE VIEW ${S}.v3 AS SELECT upper(email) AS u FROM public.customers`);
    await admin.query(`GRANT SELECT ON ${S}.v3 TO warden_scram`);
    masker.invalidate();
    const r = await run(`SELECT u || '' AS w FROM ${S}.v3`);
    expect(r.plan.columns[0]?.because).toContain('derived from public.customers.email');
  });

  it('a view redefined under the same OID is judged by its new definition after invalidate()', async () => {
    await admin.query(`CREATE VIEW ${S}.v4 AS SELECT id, full_name::text AS x FROM public.customers`);
    await admin.query(`GRANT SELECT ON ${S}.v4 TO warden_scram`);
    masker.invalidate();
    await masker.ready();
    expect((await run(`SELECT x FROM ${S}.v4 WHERE id = 1`)).rows).toEqual([['Alice Testperson']]);
    await admin.query(`CREATE OR REPLACE VIEW ${S}.v4 AS SELECT id, ssn::text AS x FROM public.customers`);
    masker.invalidate();
    // Until the catalog is read again, statements cannot be judged: they are refused, not guessed.
    const during = masker.checkStatement(stmtOf(`SELECT x FROM ${S}.v4`));
    expect(during.action === 'deny' && during.reason).toContain('being read again');
    await masker.ready();
    expect(masker.checkStatement(stmtOf(`SELECT x FROM ${S}.v4`)).action).toBe('allow');
    expect(masker.checkStatement(stmtOf(`SELECT id FROM ${S}.v4 WHERE x LIKE '9%'`)).action).toBe('deny');
    const r = await run(`SELECT x FROM ${S}.v4 WHERE id = 1`);
    expect(r.masks).toEqual(['ssn/partial']);
    expect(r.rows).toEqual([['*******7468']]);
  });

  it('session() fails closed when the catalog cannot be loaded', async () => {
    const bad = createMaskingEngine({ masking: CONFIG, targets: new Map([['shop', { ...harnessTarget(), password: 'wrong' }]]) });
    await expect(bad.session({ principal: principal(), target: 'shop' })).rejects.toThrow(/cannot load the catalog/);
    await bad.close();
  });
});

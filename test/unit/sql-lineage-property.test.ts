// Property: however a protected column is wrapped — functions, casts, CASE, subqueries, CTEs,
// UNION, aliases, LATERAL, aggregates, windows, whole rows, recursion — lineage still reports it.
// And the converse: wrapping an unprotected column never makes the protected one appear.
// Every generated query is first checked by the harness PostgreSQL (EXPLAIN), so it is real SQL.
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, initSqlParser, lineage, type CatalogView } from '../../src/sql/index.js';
import { directUrl } from '../helpers/pg-env.js';

let client: pg.Client;
let catalog: CatalogView;

beforeAll(async () => {
  await initSqlParser();
  client = new pg.Client({ connectionString: directUrl() });
  await client.connect();
  const cols = await client.query<{ table_name: string; column_name: string }>(
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
  );
  const tables = new Map<string, string[]>();
  for (const r of cols.rows) tables.set(r.table_name, [...(tables.get(r.table_name) ?? []), r.column_name]);
  catalog = { columnsOf: (schema, table) => (schema === undefined || schema === 'public' ? tables.get(table) : undefined) };
});

afterAll(async () => {
  await client?.end();
});

/** Expression wrappers: each takes an expression and returns a text-valued expression over it. */
const EXPR_WRAPPERS: ReadonlyArray<(e: string) => string> = [
  (e) => `lower(${e}::text)`,
  (e) => `upper(CAST(${e} AS varchar))`,
  (e) => `(${e}::text || '-x')`,
  (e) => `concat('a', ${e})`,
  (e) => `coalesce(${e}::text, 'none')`,
  (e) => `CASE WHEN ${e} IS NULL THEN 'a' ELSE 'b' END`,
  (e) => `CASE WHEN true THEN ${e}::text ELSE 'n' END`,
  (e) => `substr(${e}::text, 1, 3)`,
  (e) => `md5(${e}::text)`,
  (e) => `to_jsonb(${e})::text`,
  (e) => `json_build_object('k', ${e})::text`,
  (e) => `(ARRAY[${e}::text])[1]`,
  (e) => `(SELECT ${e}::text)`,
  (e) => `format('%s!', ${e})`,
  (e) => `(${e})::text COLLATE "C"`,
  (e) => `nullif(${e}::text, '')`,
  (e) => `greatest(${e}::text, '')`,
];

/** Query wrappers: each takes a query with one column `x` and returns such a query. */
const QUERY_WRAPPERS: ReadonlyArray<(q: string, n: number) => string> = [
  (q, n) => `SELECT q${n}.x FROM (${q}) AS q${n}`,
  (q, n) => `SELECT q${n}.y AS x FROM (${q}) AS q${n}(y)`,
  (q, n) => `WITH c${n} AS (${q}) SELECT x FROM c${n}`,
  (q, n) => `SELECT u${n}.x FROM ((SELECT v${n}.x::text AS x FROM (${q}) AS v${n}) UNION ALL SELECT 'k') AS u${n}`,
  (q, n) => `SELECT u${n}.x FROM (SELECT 'k' AS x UNION (SELECT v${n}.x::text FROM (${q}) AS v${n})) AS u${n}`,
  (q, n) => `SELECT max(m${n}.x) AS x FROM (${q}) AS m${n}`,
  (q, n) => `SELECT string_agg(a${n}.x::text, ',') AS x FROM (${q}) AS a${n}`,
  (q, n) => `SELECT first_value(w${n}.x) OVER (ORDER BY 1) AS x FROM (${q}) AS w${n}`,
  (q, n) => `SELECT l${n}.x FROM (SELECT 1) AS d${n}, LATERAL (${q}) AS l${n}`,
  (q, n) => `SELECT * FROM (${q}) AS s${n}`,
  (q, n) => `SELECT row_to_json(r${n})::text AS x FROM (${q}) AS r${n}`,
  (q, n) => `SELECT to_jsonb(r${n}.*)::text AS x FROM (${q}) AS r${n}`,
  (q, n) => `SELECT j${n}.x FROM (${q}) AS j${n} JOIN orders o${n} ON true`,
  (q, n) => `SELECT (SELECT z${n}.x FROM (${q}) AS z${n} LIMIT 1) AS x`,
  (q, n) => `WITH RECURSIVE r${n}(x, n) AS (SELECT b${n}.x::text, 1 FROM (${q}) AS b${n} UNION ALL SELECT r${n}.x, n + 1 FROM r${n} WHERE n < 2) SELECT x FROM r${n}`,
  (q, n) => `SELECT e${n}.x FROM (${q}) AS e${n} WHERE e${n}.x IS NOT NULL ORDER BY 1`,
];

/** How the base query names the customers table and the column. */
const BASES: ReadonlyArray<(col: string, e: (ref: string) => string) => string> = [
  (col, e) => `SELECT ${e(`c.${col}`)} AS x FROM customers c`,
  (col, e) => `SELECT ${e(`p.${col}`)} AS x FROM public.customers AS p`,
  (col, e) => `SELECT ${e(`"C".${col}`)} AS x FROM customers AS "C"`,
  (col, e) => `SELECT ${e(col)} AS x FROM customers`,
];

interface Plan {
  base: number;
  exprs: number[];
  queries: number[];
  exprsAfter: number[];
}

const plan = fc.record({
  base: fc.nat(BASES.length - 1),
  exprs: fc.array(fc.nat(EXPR_WRAPPERS.length - 1), { maxLength: 4 }),
  queries: fc.array(fc.nat(QUERY_WRAPPERS.length - 1), { minLength: 1, maxLength: 5 }),
  // Expression wrappers applied to a subquery's column again, between query wrappers.
  exprsAfter: fc.array(fc.nat(EXPR_WRAPPERS.length - 1), { maxLength: 2 }),
});

function build(p: Plan, column: string): string {
  const wrapExpr = (ref: string, list: readonly number[]): string => list.reduce((e, i) => EXPR_WRAPPERS[i]!(e), ref);
  let q = BASES[p.base]!(column, (ref) => wrapExpr(ref, p.exprs));
  p.queries.forEach((w, n) => {
    q = QUERY_WRAPPERS[w]!(q, n);
    if (n === 0 && p.exprsAfter.length > 0) q = `SELECT ${wrapExpr('t.x', p.exprsAfter)} AS x FROM (${q}) AS t`;
  });
  return q;
}

function sourcesOf(sql: string): { all: string[]; unresolved: boolean; columns: number } {
  const c = classify(sql);
  if (!c.ok) throw new Error(`generated SQL did not parse: ${c.error}\n${sql}`);
  const r = lineage(c.statements[0]!, catalog);
  return {
    all: r.columns.flatMap((col) => col.sources.map((s) => `${s.table}.${s.column}`)),
    unresolved: r.columns.some((col) => col.unresolved) || !r.shapeKnown,
    columns: r.columns.length,
  };
}

async function assertValid(sql: string): Promise<void> {
  try {
    await client.query(`EXPLAIN ${sql}`);
  } catch (err) {
    throw new Error(`PostgreSQL rejected the generated query: ${(err as Error).message}\n${sql}`);
  }
}

describe('lineage property: a protected column survives any chain of wrappers', () => {
  it('reports customers.ssn through random wrapper chains', async () => {
    await fc.assert(
      fc.asyncProperty(plan, async (p) => {
        const sql = build(p, 'ssn');
        await assertValid(sql);
        const got = sourcesOf(sql);
        expect(got.columns).toBe(1);
        expect(got.all, sql).toContain('customers.ssn');
        expect(got.unresolved, sql).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('never reports customers.ssn when only customers.id is wrapped', async () => {
    await fc.assert(
      fc.asyncProperty(plan, async (p) => {
        const sql = build(p, 'id');
        await assertValid(sql);
        const got = sourcesOf(sql);
        expect(got.all, sql).toContain('customers.id');
        expect(got.all, sql).not.toContain('customers.ssn');
      }),
      { numRuns: 100 },
    );
  });

  it('reports the column in WHERE predicates however it is wrapped', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(EXPR_WRAPPERS.length - 1), { maxLength: 4 }), fc.constantFrom("'941%'", '$1', "'x'"), async (ws, rhs) => {
        const e = ws.reduce((acc, i) => EXPR_WRAPPERS[i]!(acc), 'c.ssn');
        const sql = `SELECT c.id FROM customers c WHERE ${e} LIKE ${rhs}`;
        const c = classify(sql);
        if (!c.ok) throw new Error(c.error);
        const r = lineage(c.statements[0]!, catalog);
        const hit = r.predicateColumns.find((pc) => pc.column.column === 'ssn' && pc.clause === 'where');
        expect(hit, sql).toBeDefined();
        expect(hit!.comparedWith).toBe('pattern');
        expect(hit!.direct).toBe(ws.length === 0);
      }),
      { numRuns: 60 },
    );
  });
});

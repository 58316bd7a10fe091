// The masking bypass suite: an agent tries every way we know to get a protected value out —
// aliases, views, whole-row JSON, expressions, CTEs, UNION, cursors, PREPARE, binary results,
// COPY in every format, errors that quote values, notifications, encodings — through warden with
// real clients against the real PostgreSQL. A tap between client and warden keeps every byte
// warden sends; no protected value may appear in it, in any encoding we can think of.
import net from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { decodeDataRow } from '../../protocols/postgres/backend-messages.js';
import { decodeNotice } from '../../protocols/postgres/error-response.js';
import { encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeParse, encodeQuery, SYNC } from '../../protocols/postgres/frontend-messages.js';
import { rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { directUrl } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

// WARDEN_BYPASS_SELFTEST=1 runs the suite with masking off: then every attempt must be caught
// leaking (proof that the needles and the tap would see a leak).
const SELFTEST = process.env.WARDEN_BYPASS_SELFTEST === '1';
const MASKING = SELFTEST ? '' : `
masking:
  rules:
    - name: national-ids
      columns: [customers.ssn]
      strategy: partial
      options: { keep_last: 0 }
    - name: cards
      columns: [customers.card_number]
      strategy: partial
      options: { keep_last: 4 }
    - name: emails
      columns: [customers.email]
      strategy: email
    - name: salaries
      columns: [customers.salary]
      strategy: "null"
    - name: names
      columns: [customers.full_name]
      strategy: hash
      options: { key: bypass-suite-hmac-key-0123456789 }
`;

/** A TCP tap: clients connect here; every byte warden sends back is kept. */
class Tap {
  readonly fromWarden: Buffer[] = [];
  private readonly server: net.Server;
  port = 0;
  constructor(private readonly target: number) {
    this.server = net.createServer((client) => {
      const up = net.connect(this.target, '127.0.0.1');
      client.pipe(up);
      up.on('data', (d: Buffer) => {
        this.fromWarden.push(Buffer.from(d));
        client.write(d);
      });
      const end = (): void => {
        client.destroy();
        up.destroy();
      };
      client.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
  }
  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => {
      this.port = (this.server.address() as net.AddressInfo).port;
      r();
    }));
  }
  bytes(): Buffer {
    return Buffer.concat(this.fromWarden);
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface Protected {
  ssn: string[];
  card: string[];
  email: string[];
  salary: string[];
  name: string[];
}

let w: TestWarden;
let tap: Tap;
let secrets: Protected;
let needles: { label: string; bytes: Buffer }[];

function encodings(label: string, value: string): { label: string; bytes: Buffer }[] {
  const out = new Map<string, Buffer>();
  const add = (how: string, s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    if (b.length >= 6) out.set(`${label} ${how}`, b);
  };
  add('text', value);
  add('upper', value.toUpperCase());
  add('lower', value.toLowerCase());
  add('reversed', [...value].reverse().join(''));
  add('hex', Buffer.from(value).toString('hex'));
  add('HEX', Buffer.from(value).toString('hex').toUpperCase());
  add('base64', Buffer.from(value).toString('base64').replace(/=+$/, ''));
  add('json', JSON.stringify(value).slice(1, -1));
  add('utf16', Buffer.from(value, 'utf16le'));
  const digits = value.replace(/\D/g, '');
  if (digits.length >= 9) add('digits', digits);
  return [...out].map(([l, bytes]) => ({ label: l, bytes }));
}

function leaks(bytes: Buffer): string[] {
  return needles.filter((n) => bytes.includes(n.bytes)).map((n) => n.label);
}

beforeAll(async () => {
  w = await startTestWarden({ yaml: MASKING, plaintextTokens: 'loopback' });
  tap = new Tap(w.port);
  await tap.listen();
  const d = new pg.Client({ connectionString: directUrl() });
  await d.connect();
  const r = await d.query('SELECT ssn, card_number, email, salary::text, full_name FROM customers');
  await d.query('DROP TABLE IF EXISTS bypass_copy');
  await d.end();
  const col = (k: string): string[] => r.rows.map((row) => row[k] as string | null).filter((v): v is string => v !== null).map((v) => v.trim());
  secrets = { ssn: col('ssn'), card: col('card_number'), email: col('email'), salary: col('salary'), name: col('full_name') };
  needles = [
    ...secrets.ssn.flatMap((v) => encodings(`ssn ${v}`, v)),
    ...secrets.card.flatMap((v) => encodings(`card ${v}`, v)),
    ...secrets.email.flatMap((v) => encodings(`email ${v}`, v)),
    ...secrets.salary.filter((v) => v.length >= 8).flatMap((v) => [{ label: `salary ${v}`, bytes: Buffer.from(v) }]),
    ...secrets.name.filter((v) => v.length >= 8).flatMap((v) => encodings(`name ${v}`, v)),
  ];
  expect(needles.length).toBeGreaterThan(200);
});

afterAll(async () => {
  await tap?.close();
  await w?.stop();
});

async function session(): Promise<RawSession> {
  return rawLogin({ host: '127.0.0.1', port: tap.port, database: 'shop', password: await w.token() });
}

interface Outcome {
  rows: (Buffer | null)[][];
  errors: { code: string; message: string; detail?: string }[];
  bytes: Buffer;
}

/** Runs one simple Query on a raw session; returns rows, errors, and the bytes warden sent for it. */
async function simple(s: RawSession, sql: string): Promise<Outcome> {
  const before = s.reader.received;
  s.socket.write(encodeQuery(sql));
  const msgs = await s.reader.until(Backend.readyForQuery, 20_000);
  void before;
  return outcome(msgs);
}

function outcome(msgs: Buffer[]): Outcome {
  const rows: (Buffer | null)[][] = [];
  const errors: Outcome['errors'] = [];
  for (const m of msgs) {
    if (m[0] === Backend.dataRow) rows.push(decodeDataRow(m));
    if (m[0] === Backend.errorResponse) {
      const n = decodeNotice(m);
      errors.push({ code: n.code, message: n.message, ...(n.detail ? { detail: n.detail } : {}) });
    }
  }
  return { rows, errors, bytes: Buffer.concat(msgs) };
}

/** Extended protocol with every result column in binary format. */
async function extendedBinary(s: RawSession, sql: string, params: (string | null)[] = []): Promise<Outcome> {
  s.socket.write(
    Buffer.concat([
      encodeParse({ name: '', sql, paramTypes: [] }),
      encodeBind({ portal: '', statement: '', paramFormats: [], params: params.map((p) => (p === null ? null : Buffer.from(p))), resultFormats: [1] }),
      encodeDescribe({ kind: 'portal', name: '' }),
      encodeExecute({ portal: '', maxRows: 0 }),
      SYNC,
    ]),
  );
  return outcome(await s.reader.until(Backend.readyForQuery, 20_000));
}

const ATTEMPTS: string[] = [
  'SELECT ssn, card_number, email, salary, full_name FROM customers',
  'SELECT * FROM customers',
  'SELECT c.ssn AS harmless, c.card_number AS also_harmless FROM customers AS c',
  'SELECT * FROM active_customers',
  'SELECT row_to_json(c) FROM customers c',
  'SELECT to_jsonb(c) FROM customers c',
  'SELECT json_agg(c) FROM customers c',
  'SELECT c FROM customers c',
  'SELECT ROW(c.*)::text FROM customers c',
  "SELECT upper(ssn), lower(email), ssn || '', concat(card_number, ''), format('%s', ssn) FROM customers",
  'SELECT reverse(ssn), reverse(card_number) FROM customers',
  "SELECT encode(convert_to(ssn, 'UTF8'), 'hex'), encode(convert_to(card_number, 'UTF8'), 'base64') FROM customers",
  'SELECT ssn::bytea, card_number::bytea FROM customers',
  "SELECT replace(ssn, '-', ''), translate(card_number, '0123456789', '0123456789') FROM customers",
  'SELECT substr(ssn, 1, 6), substr(ssn, 5) FROM customers',
  'WITH x AS (SELECT ssn, email FROM customers) SELECT * FROM x',
  'WITH RECURSIVE r(v, n) AS (SELECT ssn, 1 FROM customers UNION ALL SELECT v, n + 1 FROM r WHERE n < 2) SELECT v FROM r',
  'SELECT (SELECT ssn FROM customers ORDER BY id LIMIT 1)',
  "SELECT ssn FROM customers UNION SELECT 'nothing'",
  'SELECT CASE WHEN true THEN ssn ELSE card_number END FROM customers',
  'SELECT string_agg(ssn, \',\'), array_agg(card_number), array_to_string(array_agg(email), \';\') FROM customers',
  'SELECT ARRAY[ssn, email] FROM customers',
  'SELECT t.v FROM customers c, LATERAL (SELECT c.ssn AS v) t',
  'SELECT v FROM (VALUES (1)) x, LATERAL (SELECT card_number AS v FROM customers) y',
  'SELECT jsonb_build_object(\'s\', ssn, \'c\', card_number) FROM customers',
  'SELECT xmlelement(name x, ssn) FROM customers',
  'SELECT md5(ssn), sha256(convert_to(ssn, \'UTF8\')) FROM customers',
  'SELECT salary, salary * 1, salary::text, round(salary) FROM customers',
  'SELECT full_name, initcap(full_name) FROM customers',
  'SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats WHERE tablename = \'customers\'',
  'SELECT ssn FROM customers WHERE ssn LIKE \'941%\'',
  'SELECT id FROM customers WHERE salary > 100000',
  'SELECT id FROM customers ORDER BY ssn',
  'CREATE TEMP TABLE leak AS SELECT ssn FROM customers',
  'SELECT ssn INTO TEMP leak2 FROM customers',
  'SELECT ssn::int FROM customers',
  'SELECT card_number::numeric FROM customers',
  "SELECT (ssn || 'x')::date FROM customers",
  "INSERT INTO customers (id, full_name, email) VALUES (999, 'Dup', 'alice.testperson1@example.com')",
  'SELECT pg_notify(\'leaks\', ssn) FROM customers',
  "DO $$ DECLARE v text; BEGIN SELECT ssn INTO v FROM customers WHERE id = 1; RAISE NOTICE 'value %', v; END $$",
  "SELECT set_config('x.y', ssn, false) FROM customers LIMIT 1",
  'COPY customers TO STDOUT',
  'COPY customers TO STDOUT (FORMAT csv, HEADER)',
  'COPY customers TO STDOUT (FORMAT binary)',
  'COPY (SELECT ssn, email FROM customers) TO STDOUT',
  'COPY (SELECT row_to_json(c) FROM customers c) TO STDOUT',
  'SELECT totally broken sql with ssn',
];

describe('no protected value leaves warden', () => {
  it('ordinary results are masked, not refused (the suite is not vacuous)', async () => {
    const s = await session();
    const r = await simple(s, 'SELECT id, ssn, card_number, email FROM customers ORDER BY id');
    expect(r.errors).toEqual([]);
    expect(r.rows).toHaveLength(20);
    expect(r.rows[0]?.[0]?.toString()).toBe('1');
    expect(r.rows[0]?.[1]?.toString()).toMatch(/^\*+$/);
    expect(r.rows[0]?.[2]?.toString()).toBe('************1111');
    expect(r.rows[0]?.[3]?.toString()).toMatch(/^\*+@example\.com$/);
    s.socket.destroy();
  });

  for (const sql of ATTEMPTS) {
    it(`simple protocol: ${sql.slice(0, 90)}`, async () => {
      const s = await session();
      await simple(s, 'LISTEN leaks');
      const r = await simple(s, sql);
      await simple(s, 'ROLLBACK').catch(() => undefined);
      expect(leaks(r.bytes)).toEqual([]);
      // The session survives every attempt.
      const ok = await simple(s, 'SELECT 1');
      expect(ok.rows).toHaveLength(1);
      s.socket.destroy();
    });
  }

  it('extended protocol with binary results, parameters, cursors and PREPARE', async () => {
    const s = await session();
    for (const sql of ATTEMPTS.filter((q) => q.startsWith('SELECT') && !q.includes('pg_notify'))) {
      const r = await extendedBinary(s, sql);
      expect(leaks(r.bytes), sql).toEqual([]);
    }
    const byParam = await extendedBinary(s, 'SELECT ssn, email FROM customers WHERE id = $1', ['1']);
    expect(byParam.rows).toHaveLength(1);
    for (const q of [
      'BEGIN',
      'DECLARE cur CURSOR FOR SELECT ssn, card_number FROM customers',
      'FETCH ALL FROM cur',
      'COMMIT',
      'PREPARE p AS SELECT ssn, email FROM customers',
      'EXECUTE p',
    ]) {
      const r = await simple(s, q);
      expect(leaks(r.bytes), q).toEqual([]);
    }
    s.socket.destroy();
  });

  it('node-postgres with binary results and named statements', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: tap.port, user: 'agent', password: await w.token(), database: 'shop' });
    await c.connect();
    const r1 = await c.query({ text: 'SELECT ssn, card_number, email, salary, full_name FROM customers', binary: true } as pg.QueryConfig);
    expect(r1.rows).toHaveLength(20);
    const r2 = await c.query({ name: 'named', text: 'SELECT * FROM customers WHERE id = ANY($1::int[])', values: [[1, 2, 3]] });
    expect(r2.rows).toHaveLength(3);
    expect(r2.rows[0].salary).toBeNull();
    await c.query({ name: 'named', text: 'SELECT * FROM customers WHERE id = ANY($1::int[])', values: [[4]] });
    await c.end();
    expect(leaks(tap.bytes())).toEqual([]);
  });

  it('property: random wrappers around protected columns never leak (fast-check)', async () => {
    const s = await session();
    const column = fc.constantFrom('ssn', 'card_number', 'email', 'c.ssn', 'customers.card_number');
    const wrap = fc.constantFrom(
      (e: string) => `upper(${e})`,
      (e: string) => `(${e})::text`,
      (e: string) => `${e} || ''`,
      (e: string) => `coalesce(${e}, 'n')`,
      (e: string) => `trim(${e})`,
      (e: string) => `concat('', ${e})`,
      (e: string) => `(SELECT ${e})`,
      (e: string) => `CASE WHEN id > 0 THEN ${e} END`,
      (e: string) => `nullif(${e}, '')`,
      (e: string) => `left(${e}, 100)`,
      (e: string) => `lower(${e})`,
      (e: string) => `replace(${e}, '-', '-')`,
    );
    const shape = fc.constantFrom(
      (e: string) => `SELECT ${e} AS v FROM customers c`,
      (e: string) => `SELECT v FROM (SELECT ${e} AS v FROM customers c) s`,
      (e: string) => `WITH w AS (SELECT ${e} AS v FROM customers c) SELECT v FROM w`,
      (e: string) => `SELECT ${e} AS v FROM customers c UNION ALL SELECT 'x'`,
      (e: string) => `SELECT json_build_object('v', ${e}) FROM customers c`,
      (e: string) => `SELECT string_agg(${e}, ';') FROM customers c`,
    );
    let masked = 0;
    await fc.assert(
      fc.asyncProperty(column, fc.array(wrap, { maxLength: 4 }), shape, async (col, wrappers, sh) => {
        const expr = wrappers.reduce((e, f) => f(e), col.startsWith('customers.') ? col.replace('customers.', 'c.') : col);
        const sql = sh(expr);
        const r = await simple(s, sql);
        if (r.errors.length === 0) masked++;
        expect(leaks(r.bytes), sql).toEqual([]);
      }),
      { numRuns: 60 },
    );
    expect(masked).toBeGreaterThan(10);
    s.socket.destroy();
  });

  it('nothing leaked anywhere in the whole run', () => {
    expect(tap.bytes().length).toBeGreaterThan(10_000);
    expect(leaks(tap.bytes())).toEqual([]);
  });
});

// Multi-statement attempts, each on its own session: code the agent defines (functions,
// triggers, rules, operators, built-in names shadowed in public), functions a DBA defined that
// read protected columns, statements that execute what they wrap (EXPLAIN ANALYZE, CREATE TABLE
// AS EXECUTE), SQL hidden in strings (ts_stat), writable CTEs, RETURNING, side stores (sequences,
// advisory locks, large objects, settings) and errors raised with chosen SQLSTATEs. Every byte
// warden sends for every step is scanned; `refused` lists the steps that must fail with 42501.
interface Scenario {
  steps: string[];
  refused?: string[];
}
const FN_BODY = "$$SELECT string_agg(ssn, ',') FROM customers$$";
const SCENARIOS: Record<string, Scenario> = {
  'the agent cannot define functions, procedures, aggregates or operators': {
    steps: [
      `CREATE FUNCTION pg_temp.leak() RETURNS text LANGUAGE sql AS ${FN_BODY}`,
      'CREATE OR REPLACE PROCEDURE pg_temp.p() LANGUAGE sql AS $$INSERT INTO orders SELECT * FROM orders$$',
      'CREATE AGGREGATE pg_temp.agg(text) (SFUNC = textcat, STYPE = text)',
      'CREATE OPERATOR public.### (LEFTARG = integer, RIGHTARG = integer, FUNCTION = int4pl)',
      'CREATE CAST (integer AS text) WITH INOUT',
    ],
    refused: ['CREATE FUNCTION', 'CREATE OR REPLACE PROCEDURE', 'CREATE AGGREGATE', 'CREATE OPERATOR', 'CREATE CAST'],
  },
  'a built-in name shadowed by an overload in public (lower(1))': {
    steps: [`CREATE FUNCTION public.lower(integer) RETURNS text LANGUAGE sql AS ${FN_BODY}`, 'SELECT lower(1)'],
    refused: ['CREATE FUNCTION'],
  },
  'a built-in shadowed through search_path': {
    steps: [
      'SET search_path = public, pg_catalog',
      `CREATE FUNCTION public.upper(text) RETURNS text LANGUAGE sql AS ${FN_BODY}`,
      "SELECT upper('x')",
    ],
    refused: ['CREATE FUNCTION'],
  },
  'renaming or moving an existing function onto a built-in\'s name': {
    steps: [
      'ALTER FUNCTION public.bypass_leak() RENAME TO upper',
      'SELECT upper()',
      'ALTER FUNCTION public.upper() RENAME TO bypass_leak',
      'ALTER FUNCTION public.bypass_leak() SET SCHEMA pg_temp',
      'ALTER FUNCTION public.bypass_leak() SET search_path = pg_temp, public',
    ],
    refused: ['ALTER FUNCTION'],
  },
  'a trigger on the agent\'s own table copying protected values': {
    steps: [
      'CREATE TEMP TABLE loot (v text)',
      'CREATE TEMP TABLE bait (x int)',
      'CREATE FUNCTION pg_temp.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO loot SELECT email FROM customers; RETURN NEW; END$$',
      'CREATE TRIGGER bait_trg AFTER INSERT ON bait FOR EACH ROW EXECUTE FUNCTION pg_temp.trg()',
      'INSERT INTO bait VALUES (1)',
      'SELECT v FROM loot',
    ],
    refused: ['CREATE FUNCTION', 'CREATE TRIGGER'],
  },
  'a rule on the agent\'s own table copying protected values': {
    steps: [
      'CREATE TEMP TABLE loot (v text)',
      'CREATE TEMP TABLE bait (x int)',
      'CREATE RULE bait_rule AS ON INSERT TO bait DO ALSO INSERT INTO loot SELECT card_number FROM customers',
      'INSERT INTO bait VALUES (1)',
      'SELECT v FROM loot',
    ],
    refused: ['CREATE RULE'],
  },
  'a row-level security policy whose subquery tests protected values': {
    steps: [
      'CREATE TEMP TABLE bait (x int)',
      'INSERT INTO bait VALUES (1)',
      'ALTER TABLE bait ENABLE ROW LEVEL SECURITY',
      "CREATE POLICY p ON bait USING (EXISTS (SELECT 1 FROM customers WHERE ssn LIKE '941%'))",
    ],
    refused: ['CREATE POLICY'],
  },
  'a DBA\'s overload of a built-in name (initcap(integer)) that reads protected values': {
    steps: [
      'CREATE TEMP TABLE catalog_nudge (a int)', // DDL: warden reads the catalog again
      'SELECT initcap(1)',
      "SELECT pg_catalog.initcap('abc') AS ok",
    ],
    refused: ['SELECT initcap(1)'],
  },
  'functions a DBA defined that read protected columns, called in every way': {
    steps: [
      'SELECT public.bypass_leak()',
      'SELECT * FROM public.bypass_leak()',
      'CREATE TEMP VIEW v AS SELECT public.bypass_leak() AS x',
      'CREATE TEMP TABLE loot (v text)',
      'SELECT public.bypass_steal()',
      'SELECT v FROM loot',
      "SELECT public.bypass_boom('42601')",
      "SELECT public.bypass_boom('23505')",
      "SELECT 1 WHERE public.bypass_boom('22P02') = 1",
    ],
    refused: ['SELECT public.bypass_leak()', 'SELECT * FROM public.bypass_leak()', 'CREATE TEMP VIEW', 'SELECT public.bypass_steal()', 'SELECT public.bypass_boom', 'SELECT 1 WHERE'],
  },
  'stored expressions calling a DBA\'s function (column defaults, generated columns, checks, domains, USING)': {
    steps: [
      'CREATE TEMP TABLE dflt (id int, v text DEFAULT public.bypass_leak())',
      'INSERT INTO dflt (id) VALUES (1)',
      'SELECT v FROM dflt',
      'CREATE TEMP TABLE dflt2 (id int, v text)',
      'ALTER TABLE dflt2 ALTER COLUMN v SET DEFAULT public.bypass_leak()',
      'ALTER TABLE dflt2 ADD COLUMN w text DEFAULT public.bypass_leak()',
      'ALTER TABLE dflt2 ALTER COLUMN id TYPE text USING public.bypass_leak()',
      'CREATE DOMAIN pg_temp.d AS text DEFAULT public.bypass_leak()',
      'CREATE TEMP TABLE chk (id int CHECK (public.bypass_leak() IS NOT NULL))',
      'INSERT INTO dflt2 (id) VALUES (1)',
      'SELECT * FROM dflt2',
    ],
    refused: ['CREATE TEMP TABLE dflt ', 'ALTER TABLE dflt2', 'CREATE DOMAIN', 'CREATE TEMP TABLE chk'],
  },
  'SQL hidden in a string (ts_stat)': {
    steps: [
      "SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', ssn) FROM customers')",
      'CREATE TEMP TABLE loot (v text)',
      "INSERT INTO loot SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', email) FROM customers')",
    ],
    refused: ['SELECT word', 'INSERT INTO loot'],
  },
  'EXPLAIN ANALYZE runs what it wraps; EXPLAIN VERBOSE with a literal': {
    steps: [
      'CREATE TEMP TABLE loot (v text)',
      'EXPLAIN ANALYZE INSERT INTO loot SELECT ssn FROM customers',
      'EXPLAIN (ANALYZE, VERBOSE) CREATE TEMP TABLE loot2 AS SELECT card_number AS v FROM customers',
      "EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM customers WHERE ssn = '941-74-7468'",
      'EXPLAIN (ANALYZE, VERBOSE) SELECT ssn, email FROM customers',
    ],
    refused: ['EXPLAIN ANALYZE INSERT', 'EXPLAIN (ANALYZE, VERBOSE) CREATE', "EXPLAIN (VERBOSE, COSTS OFF)"],
  },
  'PREPARE, then CREATE TABLE AS EXECUTE or a prepared INSERT … SELECT': {
    steps: [
      'PREPARE p AS SELECT ssn AS v FROM customers',
      'CREATE TEMP TABLE loot AS EXECUTE p',
      'CREATE TEMP TABLE loot (v text)',
      'PREPARE q AS INSERT INTO loot SELECT email FROM customers',
      'EXECUTE q',
    ],
    refused: ['CREATE TEMP TABLE loot AS', 'PREPARE q'],
  },
  'writable CTEs, INSERT … VALUES (subquery), UPDATE … FROM, INSERT … TABLE': {
    steps: [
      'CREATE TEMP TABLE loot (id int, v text)',
      "WITH x AS (INSERT INTO loot SELECT id, ssn FROM customers RETURNING 1) SELECT count(*) FROM x",
      'WITH x AS (SELECT id, card_number FROM customers) INSERT INTO loot SELECT * FROM x',
      "INSERT INTO loot VALUES (1, (SELECT string_agg(ssn, ',') FROM customers))",
      'INSERT INTO loot SELECT id, NULL FROM customers',
      'UPDATE loot SET v = c.email FROM customers c WHERE c.id = loot.id',
      'INSERT INTO loot TABLE customers',
      'SELECT v FROM loot',
    ],
    refused: ['WITH x AS (INSERT', 'WITH x AS (SELECT', 'INSERT INTO loot VALUES', 'UPDATE loot', 'INSERT INTO loot TABLE'],
  },
  'RETURNING on writes to the protected table': {
    steps: [
      'BEGIN',
      'UPDATE customers SET full_name = full_name RETURNING ssn, email, card_number',
      'UPDATE customers SET full_name = full_name RETURNING upper(ssn), customers',
      'DELETE FROM customers WHERE id = 1 RETURNING *',
      'ROLLBACK',
      "INSERT INTO customers (id, full_name, ssn) SELECT 900 + id, 'x', ssn FROM customers WHERE id = 2 RETURNING ssn",
    ],
    refused: ['INSERT INTO customers'],
  },
  'aggregates, windows, GROUPING SETS, LATERAL, TABLE, whole rows': {
    steps: [
      'SELECT xmlagg(xmlelement(name s, ssn)), jsonb_agg(email), json_object_agg(id, card_number) FROM customers',
      "SELECT concat_ws(',', ssn, card_number), regexp_replace(email, '@', ' at ') FROM customers",
      'SELECT first_value(ssn) OVER (), lag(email) OVER (ORDER BY id), nth_value(card_number, 2) OVER () FROM customers',
      'SELECT id, max(ssn) FROM customers GROUP BY GROUPING SETS ((id), ())',
      'SELECT * FROM (VALUES (1)) v(x), LATERAL (SELECT ssn FROM customers) c',
      'TABLE customers',
      'SELECT (c).ssn, (c.*)::text FROM customers c',
      "SELECT count(*) FILTER (WHERE ssn LIKE '9%') FROM customers",
    ],
  },
  'sequences, advisory locks, large objects and settings as stores': {
    steps: [
      'CREATE TEMP SEQUENCE s',
      "SELECT setval('s', salary::bigint * 100) FROM customers WHERE id = 2",
      'SELECT pg_advisory_lock((salary * 100)::bigint) FROM customers WHERE id = 2',
      "SELECT lo_from_bytea(0, convert_to(ssn, 'UTF8')) FROM customers WHERE id = 1",
      "SELECT set_config('application_name', ssn, false) FROM customers WHERE id = 1",
      "SELECT pg_catalog.set_config('application_name', email, false) FROM customers WHERE id = 1",
      'SHOW application_name',
    ],
    refused: ['SELECT setval', 'SELECT pg_advisory_lock', 'SELECT lo_from_bytea', 'SELECT set_config', 'SELECT pg_catalog.set_config'],
  },
  'cursors WITH HOLD, MOVE and FETCH; PREPARE with parameters': {
    steps: [
      'BEGIN',
      'DECLARE c1 CURSOR WITH HOLD FOR SELECT ssn, email FROM customers',
      'COMMIT',
      'FETCH 3 FROM c1',
      'MOVE ABSOLUTE 0 IN c1',
      'FETCH ALL FROM c1',
      'PREPARE pp(int) AS SELECT ssn FROM customers WHERE id = $1',
      'EXECUTE pp(1)',
    ],
  },
  'COPY (query) TO STDOUT in binary and CSV': {
    steps: [
      'COPY (SELECT ssn, card_number, email FROM customers) TO STDOUT (FORMAT binary)',
      "COPY (SELECT concat_ws(',', ssn, email) FROM customers) TO STDOUT (FORMAT csv)",
      'COPY (TABLE customers) TO STDOUT',
      'COPY (SELECT c FROM customers c) TO STDOUT',
    ],
  },
  'constraint failures that would quote the row': {
    steps: [
      "CREATE TEMP TABLE strict (v text CHECK (v = 'x'))",
      'INSERT INTO strict SELECT ssn FROM customers WHERE id = 1',
      'CREATE TEMP TABLE u (v text UNIQUE)',
      'INSERT INTO u SELECT email FROM customers WHERE id = 1',
    ],
    refused: ['INSERT INTO strict', 'INSERT INTO u'],
  },
  'pg_notify of a subquery while LISTENing': {
    steps: ['LISTEN chan', "SELECT pg_notify('chan', (SELECT string_agg(ssn, ',') FROM customers))", 'SELECT 1'],
    refused: ['SELECT pg_notify'],
  },
  'values parsed or computed while rows are read, quoted or not in errors': {
    steps: [
      'SELECT ssn::jsonpath FROM customers WHERE id = 1',
      'SELECT to_tsquery(ssn) FROM customers WHERE id = 1',
      "SELECT to_tsquery('simple', email) FROM customers WHERE id = 1",
      'SELECT email::jsonpath FROM customers WHERE id = 1',
      'SELECT card_number::jsonpath FROM customers WHERE id = 1',
      "SELECT jsonb_path_query('{}', ('$.' || email)::jsonpath) FROM customers WHERE id = 1",
      'SELECT ssn::xml FROM customers WHERE id = 1',
      "SELECT xmlparse(document email) FROM customers WHERE id = 1",
      "SELECT ('<' || email || '>')::xml FROM customers WHERE id = 1",
      "SELECT ('{' || ssn || '}')::int[] FROM customers WHERE id = 1",
      'SELECT ssn::int4range FROM customers WHERE id = 1',
      'SELECT ssn::inet, email::tsvector FROM customers WHERE id = 1',
      "SELECT regexp_match('x', '(' || ssn) FROM customers WHERE id = 1",
      "SELECT format(email) FROM customers WHERE id = 1",
      "SELECT date_trunc(ssn, now()) FROM customers WHERE id = 1",
      "SELECT to_timestamp(card_number::float8 * 1e300) FROM customers WHERE id = 1",
      "SELECT card_number::bigint::int FROM customers WHERE id = 1",
      "SELECT (card_number::numeric * 1e200)::float4 FROM customers WHERE id = 1",
      "SELECT ssn::money FROM customers WHERE id = 1",
      "SELECT ssn::interval FROM customers WHERE id = 1",
      "SELECT email::macaddr FROM customers WHERE id = 1",
      "SELECT ssn::bit varying FROM customers WHERE id = 1",
      "SELECT ssn::point FROM customers WHERE id = 1",
      "SELECT email::regrole FROM customers WHERE id = 1",
      "SELECT email::regtype FROM customers WHERE id = 1",
      "SELECT email::regproc FROM customers WHERE id = 1",
      "SELECT ssn::regnamespace FROM customers WHERE id = 1",
      "SELECT to_number(ssn, email) FROM customers WHERE id = 1",
      "SELECT to_char(now(), email) FROM customers WHERE id = 1",
      "SELECT convert_from(convert_to(email, 'UTF8'), ssn) FROM customers WHERE id = 1",
      "SELECT encode(ssn::bytea, email) FROM customers WHERE id = 1",
      "SELECT make_date(substr(ssn, 1, 3)::int, 13, 1) FROM customers WHERE id = 1",
      "SELECT has_table_privilege((salary * 100)::int::oid, 'select') FROM customers WHERE id = 1",
      "SELECT ('a.b.c.' || email)::regclass FROM customers WHERE id = 1",
      "SELECT chr(card_number::bigint::int) FROM customers WHERE id = 2",
    ],
  },
  'row counts and errors steered by protected values (inference)': {
    steps: [
      'SELECT generate_series(1, substr(ssn, 1, 3)::int) FROM customers WHERE id = 1',
      'SELECT 1 FROM customers c, generate_series(1, substr(c.ssn, 1, 3)::int) g WHERE c.id = 1',
      "SELECT regexp_matches(ssn, '9', 'g') FROM customers WHERE id = 1",
      "SELECT unnest(string_to_array(email, '.')) FROM customers WHERE id = 1",
      "SELECT CASE WHEN ssn LIKE '941%' THEN 1/0 END FROM customers WHERE id = 1",
      "SELECT CASE ssn WHEN '941-74-7468' THEN 1/0 END FROM customers WHERE id = 1",
      "SELECT count(*) FILTER (WHERE 1/(salary - 42657.09) > 0) FROM customers",
      "SELECT CASE WHEN ssn IS NULL THEN 'none' ELSE 'some' END FROM customers WHERE id = 3",
    ],
    refused: ['SELECT generate_series', 'SELECT 1 FROM customers c, generate_series', 'SELECT regexp_matches', 'SELECT unnest', 'SELECT CASE WHEN ssn LIKE', 'SELECT CASE ssn', 'SELECT count(*) FILTER'],
  },
  'positional ORDER BY / GROUP BY, DISTINCT, recursive CTEs with SEARCH and CYCLE': {
    steps: [
      'SELECT id, ssn FROM customers ORDER BY 2',
      'SELECT id, ssn AS s FROM customers ORDER BY s',
      'SELECT ssn, count(*) FROM customers GROUP BY 1',
      'SELECT DISTINCT ssn FROM customers',
      'SELECT DISTINCT substr(email, 1, 1), id > 0 FROM customers',
      'SELECT count(DISTINCT ssn), count(DISTINCT substr(ssn, 1, 1)) FROM customers',
      'SELECT id FROM (SELECT id, ssn FROM customers ORDER BY ssn) s',
      'WITH RECURSIVE r(id, v) AS (SELECT id, ssn FROM customers UNION ALL SELECT id, v FROM r WHERE false) SEARCH DEPTH FIRST BY v SET ord SELECT id FROM r ORDER BY ord',
      'WITH RECURSIVE r(id, v) AS (SELECT id, ssn FROM customers UNION ALL SELECT id, v FROM r) CYCLE v SET is_cycle USING path SELECT id, is_cycle, path FROM r',
      'WITH RECURSIVE r(id, v) AS (SELECT id, ssn FROM customers UNION ALL SELECT r.id, c.ssn FROM r JOIN customers c ON c.id = r.id + 1) CYCLE v SET is_cycle USING path SELECT count(*) FILTER (WHERE is_cycle) FROM r',
      'WITH RECURSIVE r(id, v) AS (SELECT id, ssn FROM customers UNION ALL SELECT id, v FROM r WHERE false) SEARCH BREADTH FIRST BY v SET ord SELECT id, ord FROM r',
    ],
    refused: ['SELECT id, ssn FROM', 'SELECT id, ssn AS s', 'SELECT ssn, count', 'SELECT DISTINCT', 'SELECT id FROM (SELECT'],
  },
  'SQL PREPARE of a name already in use, then EXECUTE': {
    steps: [
      'PREPARE p AS SELECT upper(ssn) AS x, md5(email) AS y FROM customers',
      "PREPARE p AS SELECT 'a' AS x, 'b' AS y",
      'EXECUTE p',
      'BEGIN',
      'PREPARE q AS SELECT lower(email) AS x FROM customers',
      "PREPARE q AS SELECT 'a' AS x",
      'ROLLBACK',
      'EXECUTE q',
      'DEALLOCATE q',
      "PREPARE q AS SELECT 'a' AS x",
      'EXECUTE q',
      'BEGIN',
      'DECLARE c CURSOR FOR SELECT upper(ssn) AS x FROM customers',
      'SAVEPOINT s',
      "DECLARE c CURSOR FOR SELECT 'a' AS x",
      'ROLLBACK TO SAVEPOINT s',
      'FETCH ALL FROM c',
      'COMMIT',
      "PREPARE r AS SELECT 'a' AS x; PREPARE r AS SELECT upper(email) AS x FROM customers",
      'EXECUTE r',
    ],
  },
  'joins by USING and NATURAL, grouping sets, ROLLUP and CUBE': {
    steps: [
      "CREATE TEMP TABLE guess (ssn char(11), email varchar(200))",
      "INSERT INTO guess VALUES ('941-74-7468', 'alice.testperson1@example.com')",
      'SELECT count(*) FROM customers JOIN guess USING (ssn)',
      'SELECT count(*) FROM customers NATURAL JOIN guess',
      'SELECT count(*) FROM customers a JOIN customers b USING (email)',
      'SELECT count(*) FROM customers c WHERE (c.ssn, c.email) IN (SELECT * FROM guess)',
      'SELECT count(*) FROM customers GROUP BY GROUPING SETS ((ssn), ())',
      'SELECT count(*) FROM customers GROUP BY ROLLUP (email)',
      'SELECT count(*) FROM customers GROUP BY CUBE (card_number)',
      'SELECT count(*) FROM (SELECT ssn FROM customers INTERSECT SELECT ssn FROM guess) x',
    ],
    refused: ['SELECT count(*)'],
  },
  'COPY TO STDOUT with other delimiters, quotes, escapes and encodings': {
    steps: [
      "COPY customers (id, email) TO STDOUT (DELIMITER '@')",
      "COPY customers (id, email, ssn) TO STDOUT (FORMAT csv, QUOTE '@', FORCE_QUOTE *)",
      "COPY customers (id, email) TO STDOUT (FORMAT csv, DELIMITER '.', ESCAPE '\\')",
      "COPY customers (id, card_number) TO STDOUT (FORMAT csv, NULL '1111')",
      "COPY customers (id, email) TO STDOUT (ENCODING 'LATIN1')",
      "COPY (SELECT id, email FROM customers) TO STDOUT WITH CSV QUOTE AS '|' FORCE QUOTE email",
      "COPY customers (email) TO STDOUT (FORMAT text, DELIMITER E'\\x01')",
    ],
  },
  'functions in FROM that send or store their protected arguments (pg_notify, set_config)': {
    steps: [
      'LISTEN leaks',
      "SELECT 1 AS one FROM customers c, pg_notify('leaks', c.ssn) n WHERE c.id = 1",
      "SELECT 1 AS one FROM customers c, LATERAL pg_notify('leaks', c.card_number) n WHERE c.id = 2",
      "SELECT 1 AS one FROM customers c, set_config('application_name', c.email, false) s WHERE c.id = 1",
      'SHOW application_name',
      'SELECT count(*) FROM (SELECT pg_notify(\'leaks\', ssn) FROM customers) s',
      // The lock key would be hashtext(ssn) in pg_locks: an int4 hash of an SSN is brute-forced offline.
      'SELECT count(*) FROM (SELECT pg_advisory_lock(hashtext(ssn)) FROM customers WHERE id = 1) s',
      "SELECT objid FROM pg_catalog.pg_locks WHERE locktype = 'advisory'",
    ],
    refused: ['SELECT 1 AS one', 'SELECT count(*)'],
  },
  'statistics, server files, other sessions\' queries': {
    steps: [
      'ANALYZE customers',
      "SELECT attname, most_common_vals, histogram_bounds FROM pg_stats WHERE tablename = 'customers'",
      "SELECT pg_read_file('base/PG_VERSION')",
      'SELECT query FROM pg_stat_activity',
    ],
    refused: ['SELECT pg_read_file'],
  },
};

describe('multi-statement bypass attempts', () => {
  beforeAll(async () => {
    // Functions a DBA defined (not the agent): warden must not trust what they return or do.
    const d = new pg.Client({ connectionString: directUrl() });
    await d.connect();
    await d.query(`CREATE OR REPLACE FUNCTION public.bypass_leak() RETURNS text LANGUAGE sql AS ${FN_BODY}`);
    // An overload of a built-in name: initcap(1) resolves to it (pg_catalog has initcap(text) only).
    await d.query(`CREATE OR REPLACE FUNCTION public.initcap(integer) RETURNS text LANGUAGE sql AS ${FN_BODY}`);
    await d.query('CREATE OR REPLACE FUNCTION public.bypass_steal() RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO loot SELECT ssn FROM customers; END$$');
    await d.query(`CREATE OR REPLACE FUNCTION public.bypass_boom(code text) RETURNS int LANGUAGE plpgsql AS $$BEGIN
      RAISE EXCEPTION USING ERRCODE = code, MESSAGE = (SELECT string_agg(ssn, ',') FROM customers),
        DETAIL = (SELECT string_agg(email, ',') FROM customers), HINT = (SELECT string_agg(card_number, ',') FROM customers);
    END$$`);
    await d.end();
  });

  afterAll(async () => {
    const d = new pg.Client({ connectionString: directUrl() });
    await d.connect();
    await d.query('DROP FUNCTION IF EXISTS public.bypass_leak(), public.bypass_steal(), public.bypass_boom(text), public.lower(integer), public.upper(text), public.upper(), public.initcap(integer)');
    await d.query('DROP OPERATOR IF EXISTS public.### (integer, integer)');
    await d.end();
  });

  for (const [name, { steps, refused = [] }] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const s = await session();
      const all: Buffer[] = [];
      for (const sql of steps) {
        const r = await simple(s, sql);
        all.push(r.bytes);
        expect(leaks(r.bytes), sql).toEqual([]);
        if (refused.some((p) => sql.startsWith(p))) expect(r.errors.map((e) => e.code), sql).toEqual(['42501']);
      }
      await simple(s, 'ROLLBACK');
      const ok = await simple(s, 'SELECT 1');
      expect(ok.rows).toHaveLength(1);
      s.socket.destroy();
      expect(leaks(Buffer.concat(all))).toEqual([]);
    });
  }
});

describe('extended-protocol bypass attempts', () => {
  async function send(s: RawSession, msgs: Buffer[]): Promise<Outcome> {
    s.socket.write(Buffer.concat([...msgs, SYNC]));
    return outcome(await s.reader.until(Backend.readyForQuery, 20_000));
  }
  const exec = (statement: string, resultFormats: number[] = [0], maxRows = 0): Buffer[] => [
    encodeBind({ portal: '', statement, paramFormats: [], params: [], resultFormats }),
    encodeDescribe({ kind: 'portal', name: '' }),
    encodeExecute({ portal: '', maxRows }),
  ];

  it('a name the server refuses to redefine keeps meaning its first statement (42P05, named portals)', async () => {
    const s = await session();
    const all: Buffer[] = [];
    const step = async (msgs: Buffer[]): Promise<Outcome> => {
      const r = await send(s, msgs);
      all.push(r.bytes);
      return r;
    };
    await step([encodeParse({ name: 'a', sql: 'SELECT upper(ssn) AS x, md5(email) AS y FROM customers', paramTypes: [] })]);
    // PostgreSQL keeps the first "a"; warden must not judge the next Bind by this text.
    const dup = await step([encodeParse({ name: 'a', sql: "SELECT 'a' AS x, 'b' AS y", paramTypes: [] })]);
    expect(dup.errors.map((e) => e.code)).toEqual(['42P05']);
    const r = await step(exec('a'));
    expect(r.rows).toHaveLength(20);
    expect(leaks(r.bytes)).toEqual([]);
    expect(leaks((await step(exec('a', [1]))).bytes)).toEqual([]);
    // The same within one batch, and for a named portal.
    await step([
      encodeParse({ name: 'b', sql: 'SELECT lower(ssn) AS x FROM customers', paramTypes: [] }),
      encodeParse({ name: 'b', sql: "SELECT 'a' AS x", paramTypes: [] }),
    ]);
    expect(leaks((await step(exec('b'))).bytes)).toEqual([]);
    await step([encodeParse({ name: 'h', sql: "SELECT 'a' AS x", paramTypes: [] })]);
    await simple(s, 'BEGIN'); // named portals last until the transaction ends
    await step([encodeBind({ portal: 'p', statement: 'b', paramFormats: [], params: [], resultFormats: [0] })]);
    await simple(s, 'SAVEPOINT before_dup');
    const dupPortal = await step([
      encodeBind({ portal: 'p', statement: 'h', paramFormats: [], params: [], resultFormats: [0] }),
    ]);
    expect(dupPortal.errors.map((e) => e.code)).toEqual(['42P03']);
    await simple(s, 'ROLLBACK TO SAVEPOINT before_dup'); // keeps the portal made before it
    const viaPortal = await step([encodeDescribe({ kind: 'portal', name: 'p' }), encodeExecute({ portal: 'p', maxRows: 0 })]);
    expect(viaPortal.errors).toEqual([]);
    expect(viaPortal.rows).toHaveLength(20);
    expect(leaks(viaPortal.bytes)).toEqual([]);
    await simple(s, 'COMMIT');
    // A failed Parse of a new name leaves nothing; the name is then parsed for real.
    await step([encodeParse({ name: 'c', sql: "SELECT 'a' AS x FROM no_such_table", paramTypes: [] })]);
    await step([encodeParse({ name: 'c', sql: 'SELECT initcap(email) AS x FROM customers', paramTypes: [] })]);
    expect(leaks((await step(exec('c'))).bytes)).toEqual([]);
    // Mixed result formats, a row limit, and definitions refused as in the simple protocol.
    await step([encodeParse({ name: 'd', sql: 'SELECT id, ssn, email, card_number FROM customers', paramTypes: [] })]);
    expect((await step(exec('d', [0, 1, 0, 1]))).rows).toHaveLength(20);
    expect((await step(exec('d', [0], 2))).rows).toHaveLength(2);
    // A SQL-level name dropped and redefined through the extended protocol, then used by SQL.
    const redefined = async (sqlFirst: string[], extended: string, use: string): Promise<void> => {
      for (const q of sqlFirst) await simple(s, q);
      await step([encodeParse({ name: '', sql: extended, paramTypes: [] }), ...exec('')]);
      const r = await simple(s, use);
      all.push(r.bytes);
      expect(leaks(r.bytes), use).toEqual([]);
    };
    await redefined(["PREPARE sp AS SELECT 'a' AS x", 'DEALLOCATE sp'], 'PREPARE sp AS SELECT upper(ssn) AS x FROM customers', 'EXECUTE sp');
    await redefined(['BEGIN', "DECLARE sc CURSOR FOR SELECT 'a' AS x", 'CLOSE sc'], 'DECLARE sc CURSOR FOR SELECT lower(email) AS x FROM customers', 'FETCH ALL FROM sc');
    await simple(s, 'COMMIT');
    // One namespace for SQL and protocol-level prepared statements, in both directions.
    await simple(s, "PREPARE sp2 AS SELECT 'a' AS x");
    await step([encodeClose({ kind: 'statement', name: 'sp2' })]);
    await step([encodeParse({ name: 'sp2', sql: 'SELECT upper(ssn) AS x FROM customers', paramTypes: [] })]);
    const sqlExec = await simple(s, 'EXECUTE sp2');
    all.push(sqlExec.bytes);
    expect(leaks(sqlExec.bytes)).toEqual([]);
    await step([encodeParse({ name: 'pp2', sql: "SELECT 'a' AS x", paramTypes: [] })]);
    await simple(s, 'DEALLOCATE pp2');
    await simple(s, 'PREPARE pp2 AS SELECT lower(email) AS x FROM customers');
    expect(leaks((await step(exec('pp2'))).bytes)).toEqual([]);
    // A cursor is a portal: one closed and declared again by SQL, then executed by the protocol.
    await simple(s, 'BEGIN');
    await step([encodeBind({ portal: 'cx', statement: 'h', paramFormats: [], params: [], resultFormats: [0] })]);
    await redefined(['CLOSE cx'], 'DECLARE cx CURSOR FOR SELECT upper(ssn) AS x FROM customers', 'SELECT 1');
    expect(leaks((await step([encodeDescribe({ kind: 'portal', name: 'cx' }), encodeExecute({ portal: 'cx', maxRows: 0 })])).bytes)).toEqual([]);
    await simple(s, 'COMMIT');
    const fn = await step([encodeParse({ name: '', sql: `CREATE FUNCTION pg_temp.zz() RETURNS text LANGUAGE sql AS ${FN_BODY}`, paramTypes: [] }), ...exec('')]);
    expect(fn.errors.map((e) => e.code)).toEqual(['42501']);
    expect(leaks(Buffer.concat(all))).toEqual([]);
    s.socket.destroy();
  });
});

describe('statement text the server reads differently', () => {
  // With standard_conforming_strings off, \' does not end a string: PostgreSQL reads
  // `upper(ssn) AS x FROM customers` as code where warden, reading as the server did before the
  // SET took effect, sees a string. The server reports the change only with its ReadyForQuery.
  const crafted = "SELECT '\\' AS a, ' AS a, upper(ssn) AS x FROM customers --' AS x";

  it('a statement pipelined behind SET standard_conforming_strings = off is refused (simple protocol)', async () => {
    const s = await session();
    s.socket.write(Buffer.concat([encodeQuery('SET standard_conforming_strings = off'), encodeQuery(crafted)]));
    const set = outcome(await s.reader.until(Backend.readyForQuery, 20_000));
    const r = outcome(await s.reader.until(Backend.readyForQuery, 20_000));
    expect(set.errors).toEqual([]);
    expect(r.errors.map((e) => e.code)).toEqual(['42501']);
    expect(leaks(r.bytes)).toEqual([]);
    // Once answered, warden knows the setting and refuses what it cannot read (fail closed).
    expect(leaks((await simple(s, crafted)).bytes)).toEqual([]);
    s.socket.destroy();
  });

  it('the same in one extended batch without a Sync between, and with set_config()', async () => {
    const s = await session();
    const statementThenCrafted = (first: string): Buffer => Buffer.concat([
      encodeParse({ name: '', sql: first, paramTypes: [] }),
      encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeExecute({ portal: '', maxRows: 0 }),
      encodeParse({ name: '', sql: crafted, paramTypes: [] }),
      encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [0] }),
      encodeDescribe({ kind: 'portal', name: '' }),
      encodeExecute({ portal: '', maxRows: 0 }),
      SYNC,
    ]);
    s.socket.write(statementThenCrafted('SET standard_conforming_strings = off'));
    const r = outcome(await s.reader.until(Backend.readyForQuery, 20_000));
    expect(r.errors.map((e) => e.code)).toEqual(['42501']);
    expect(leaks(r.bytes)).toEqual([]);
    s.socket.destroy();
    const s2 = await session();
    s2.socket.write(Buffer.concat([encodeQuery("SELECT set_config('standard_conforming_strings', 'off', false)"), encodeQuery(crafted)]));
    outcome(await s2.reader.until(Backend.readyForQuery, 20_000));
    const r2 = outcome(await s2.reader.until(Backend.readyForQuery, 20_000));
    expect(leaks(r2.bytes)).toEqual([]);
    // Ordinary pipelining is unaffected.
    s2.socket.destroy();
    const s3 = await session();
    s3.socket.write(Buffer.concat([encodeQuery('SELECT 1'), encodeQuery('SELECT id, ssn FROM customers ORDER BY id LIMIT 1')]));
    outcome(await s3.reader.until(Backend.readyForQuery, 20_000));
    expect(outcome(await s3.reader.until(Backend.readyForQuery, 20_000)).rows).toHaveLength(1);
    s3.socket.destroy();
  });
});

describe('values that reach the agent through dedupe, row counts, casts, self-updates and hashes', () => {
  const text = (r: Outcome, row = 0, col = 0): string | undefined => r.rows[row]?.[col]?.toString();
  const codes = (r: Outcome): string[] => r.errors.map((e) => e.code);

  it('UNION without ALL compares rows: refused as inference (it counted a guessed SSN and sorted ids by SSN)', async () => {
    const s = await session();
    for (const sql of [
      "SELECT count(*) FROM (SELECT ssn FROM customers UNION SELECT '941-74-7468') s",
      'SELECT id FROM (SELECT ssn, id FROM customers UNION SELECT NULL, NULL) s',
      "WITH RECURSIVE r(v) AS (SELECT ssn FROM customers UNION SELECT '941-74-7468') SELECT count(*) FROM r",
    ]) expect(codes(await simple(s, sql)), sql).toEqual(['42501']);
    // UNION ALL keeps every row: nothing is compared.
    const all = await simple(s, "SELECT count(*) FROM (SELECT ssn FROM customers UNION ALL SELECT '941-74-7468') s");
    expect(text(all)).toBe('21');
    s.socket.destroy();
  });

  it('a function warden does not know may return a set: its row count on protected values is inference', async () => {
    const s = await session();
    // pg_options_to_table returned 941 rows for the SSN 941-74-7468: the count was the value.
    for (const sql of [
      "SELECT count(*) FROM customers c, pg_options_to_table(array_fill('a=b'::text, ARRAY[substr(c.ssn, 1, 3)::int])) WHERE c.id = 1",
      "SELECT count(*) FROM (SELECT pg_options_to_table(array_fill('a=b'::text, ARRAY[substr(ssn, 1, 3)::int])) FROM customers WHERE id = 1) s",
    ]) {
      const r = await simple(s, sql);
      expect(codes(r), sql).toEqual(['42501']);
      expect(r.rows).toEqual([]);
    }
    expect(text(await simple(s, "SELECT count(*) FROM pg_options_to_table(ARRAY['a=b'])"))).toBe('1');
    s.socket.destroy();
  });

  it('a cast that may shorten a value is a computation (card_number::varchar(8) showed digits 5-8)', async () => {
    const s = await session();
    const r = await simple(s, 'SELECT card_number::varchar(8) AS c8, card_number::char(12) AS c12, card_number::text AS t FROM customers WHERE id = 2');
    expect(r.errors).toEqual([]);
    expect(text(r, 0, 0)).not.toContain('5555'); // 5555555555554444: the rule shows only 4444
    expect(text(r, 0, 1)).not.toContain('5555');
    expect(text(r, 0, 2)).toBe('************4444');
    s.socket.destroy();
  });

  it('a protected column set to a value computed from itself is laundering (reverse() moved hidden digits into view)', async () => {
    const s = await session();
    await simple(s, 'BEGIN');
    for (const sql of [
      'UPDATE customers SET card_number = reverse(card_number) WHERE id = 2',
      "UPDATE customers SET email = 'a@' || replace(email, '@', '.') WHERE id = 1",
      "UPDATE customers SET card_number = substr(card_number, 5) || substr(card_number, 1, 4) WHERE id = 2 RETURNING card_number",
      'UPDATE customers SET card_number = card_number::varchar(8) WHERE id = 2',
    ]) expect(codes(await simple(s, sql)), sql).toEqual(['42501']);
    await simple(s, 'ROLLBACK');
    expect(codes(await simple(s, 'BEGIN; UPDATE customers SET card_number = card_number WHERE id = 2; ROLLBACK'))).toEqual([]);
    const after = await simple(s, 'SELECT card_number, email FROM customers WHERE id IN (1, 2) ORDER BY id');
    expect(text(after, 0, 1)).toMatch(/^\*+@example\.com$/);
    expect(text(after, 1, 0)).toBe('************4444');
    s.socket.destroy();
  });

  it('ON CONFLICT and foreign keys compare written rows with protected values: inference', async () => {
    const s = await session();
    await simple(s, 'CREATE TEMP TABLE guesses (n int, g text)');
    await simple(s, "INSERT INTO guesses VALUES (1, 'alice.testperson1@example.com'), (2, 'nobody@example.com')");
    await simple(s, 'BEGIN');
    // Returned the numbers of the guesses that are nobody's email (2), so the others are someone's.
    for (const sql of [
      "INSERT INTO customers (full_name, email, notes) SELECT 'x', g, n::text FROM guesses ON CONFLICT (email) DO NOTHING RETURNING notes",
      "INSERT INTO customers (full_name, email) VALUES ('x', 'alice.testperson1@example.com') ON CONFLICT DO NOTHING",
      "INSERT INTO customers (full_name, email) VALUES ('x', 'nobody@example.com') ON CONFLICT ON CONSTRAINT customers_email_key DO NOTHING",
    ]) {
      const r = await simple(s, sql);
      expect(codes(r), sql).toEqual(['42501']);
      expect(r.rows).toEqual([]);
      await simple(s, 'ROLLBACK; BEGIN');
    }
    await simple(s, 'ROLLBACK');
    for (const sql of [
      'CREATE TABLE public.fk_probe (email varchar(200) REFERENCES customers (email))',
      'CREATE TABLE public.fk_probe2 (e varchar(200), FOREIGN KEY (e) REFERENCES public.customers (email))',
      'CREATE TABLE public.fk_probe3 (c int REFERENCES customers)', // the primary key: columns not known
    ]) expect(codes(await simple(s, sql)), sql).toEqual(['42501']);
    // Conflicts and keys on columns no rule protects are fine.
    await simple(s, 'BEGIN');
    expect(codes(await simple(s, "INSERT INTO customers (id, full_name) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING"))).toEqual([]);
    await simple(s, 'ROLLBACK');
    const ok = await simple(s, 'CREATE TABLE public.fk_ok (c int REFERENCES customers (id)); DROP TABLE public.fk_ok');
    expect(ok.errors).toEqual([]);
    s.socket.destroy();
  });

  it('a NULL test of a value computed from a protected column, or IS NOT NULL in WHERE, is inference', async () => {
    const s = await session();
    for (const sql of [
      "SELECT id FROM customers WHERE nullif(ssn, '941-74-7468') IS NULL", // returned id 1 with the NULL SSNs
      "SELECT id FROM customers WHERE (ssn > '95' OR NULL) IS NULL", // returned the SSNs below 95
      "SELECT id FROM customers WHERE nullif(substr(email, 1, 1), 'a') IS NOT NULL",
      "SELECT id FROM customers c JOIN orders o ON o.customer_id = c.id AND nullif(c.card_number, '4111111111111111') IS NULL",
    ]) {
      const r = await simple(s, sql);
      expect(codes(r), sql).toEqual(['42501']);
      expect(r.rows).toEqual([]);
    }
    // IS NOT NULL in WHERE or ON can be served by an index on the column, which returns rows in the
    // column's order: with probe rows inserted by the agent, where id 1 fell told its email began "al".
    for (const sql of [
      'SELECT id FROM customers WHERE email IS NOT NULL',
      'SELECT id FROM customers WHERE NOT (email IS NULL)',
      'SELECT c.id FROM customers c JOIN orders o ON o.customer_id = c.id AND c.email IS NOT NULL',
    ]) expect(codes(await simple(s, sql)), sql).toEqual(['42501']);
    const plain = await simple(s, 'SELECT id, count(*) FILTER (WHERE email IS NOT NULL) FROM customers WHERE ssn IS NULL AND NOT (NOT (email::text IS NULL)) GROUP BY id ORDER BY id');
    expect(plain.errors).toEqual([]);
    expect(plain.rows.map((row) => row[0]?.toString())).toEqual(['15', '16', '17', '18', '19', '20']);
    s.socket.destroy();
  });

  it('defaults of built-ins and sequences are still allowed', async () => {
    const s = await session();
    const r = await simple(s, "CREATE TEMP TABLE fine (id serial, n int DEFAULT nextval('fine_id_seq'), u uuid DEFAULT gen_random_uuid(), t timestamptz DEFAULT now(), s text DEFAULT lower('X'))");
    expect(r.errors).toEqual([]);
    s.socket.destroy();
  });

  it('hashes of computed values and of the agent\'s own constants are not sent (they told a name letter by letter)', async () => {
    const s = await session();
    const plain = await simple(s, 'SELECT full_name FROM customers WHERE id = 1');
    expect(text(plain)).toMatch(/^[0-9a-f]{16}$/); // the column itself is hashed, as configured
    const hex = /^[0-9a-f]{16}$/;
    await simple(s, "CREATE TEMP TABLE probe (v varchar(100)); INSERT INTO probe VALUES ('Alice Testperson')");
    const probe = await simple(s, "SELECT substr(full_name, 1, 1) AS first, left(full_name, 0) || 'A' AS probe, full_name::varchar(1) AS cast1 FROM customers WHERE id = 1");
    expect(probe.errors).toEqual([]);
    for (let i = 0; i < 3; i++) expect(text(probe, 0, i)).not.toMatch(hex);
    for (const sql of [
      "SELECT full_name FROM customers WHERE id = 1 UNION ALL SELECT 'Alice Testperson'",
      "SELECT full_name::varchar(1) AS f FROM customers WHERE id = 1 UNION ALL SELECT 'A'",
      "SELECT v.x FROM customers c, LATERAL (VALUES (c.full_name), ('Alice Testperson')) v(x) WHERE c.id = 1",
      // A column of the agent's own table holding its guesses: both were hashed, and compared.
      'SELECT full_name FROM customers WHERE id = 1 UNION ALL SELECT v FROM probe',
    ]) {
      const r = await simple(s, sql);
      expect(r.errors, sql).toEqual([]);
      expect(r.rows.map((row) => row[0]?.toString()).filter((v) => v !== undefined && hex.test(v)), sql).toEqual([]);
    }
    s.socket.destroy();
  });
});

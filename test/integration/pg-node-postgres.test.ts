// node-postgres through warden: every scenario runs on a direct connection and through warden,
// and the results must be equal (extended protocol, named statements, binary results, pipelining
// with an error at Bind, failed transactions, LISTEN/NOTIFY, notices, ParameterStatus, cursors,
// a 200k-row result).
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directUrl } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

type Config = Omit<pg.ClientConfig, 'connectionString'>;

async function viaWarden(extra: Config = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, ...extra });
  await c.connect();
  return c;
}

async function direct(extra: Config = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: directUrl(), ...extra });
  await c.connect();
  return c;
}

/** Runs `fn` on a fresh direct client and a fresh warden client; returns both results. */
async function both<T>(fn: (c: pg.Client) => Promise<T>, extra: Config = {}): Promise<{ direct: T; warden: T }> {
  const d = await direct(extra);
  const viaW = await viaWarden(extra);
  try {
    return { direct: await fn(d), warden: await fn(viaW) };
  } finally {
    await d.end();
    await viaW.end();
  }
}

/** The parts of an error a client acts on. */
const errorShape = (e: unknown): Record<string, unknown> => {
  const x = e as pg.DatabaseError;
  return { code: x.code, message: x.message, detail: x.detail, severity: x.severity, where: x.where, position: x.position };
};

describe('node-postgres through warden equals a direct connection', () => {
  it('extended protocol with parameters (unnamed statements)', async () => {
    const r = await both(async (c) => {
      const a = await c.query('SELECT id, full_name, ssn, card_number, salary FROM customers WHERE id = $1 OR email = $2 ORDER BY id', [3, 'bob.example2@example.com']);
      const b = await c.query('SELECT * FROM customers WHERE id = ANY($1::int[]) ORDER BY id', [[1, 2, 16]]);
      const n = await c.query('SELECT count(*)::int AS n FROM customers WHERE ($1::text IS NULL OR ssn = $1)', [null]);
      return { a: a.rows, b: b.rows, fields: b.fields.map((f) => [f.name, f.dataTypeID, f.tableID, f.columnID]), n: n.rows };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.a.map((row) => row.id)).toEqual([2, 3]);
    expect(r.warden.b).toHaveLength(3);
    expect(r.warden.fields).toHaveLength(17);
    expect(r.warden.n).toEqual([{ n: 20 }]);
  });

  it('named statements: prepared once, executed again without Parse', async () => {
    const r = await both(async (c) => {
      const q = (v: number) => c.query({ name: 'by_rank', text: 'SELECT id, full_name, rank, big FROM customers WHERE rank > $1 ORDER BY id', values: [v] });
      const first = await q(20000);
      const second = await q(30000);
      const third = await q(0);
      const prepared = await c.query("SELECT name, parameter_types::text FROM pg_prepared_statements WHERE name = 'by_rank'");
      return { first: first.rows, second: second.rows, third: third.rowCount, prepared: prepared.rows };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.first.map((x) => x.id)).toEqual([5, 8, 11, 12]);
    expect(r.warden.second).toEqual([]);
    expect(r.warden.prepared).toEqual([{ name: 'by_rank', parameter_types: '{smallint}' }]);
  });

  it('binary results (binary: true), raw bytes equal', async () => {
    const raw = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v));
    const r = await both(async (c) => {
      const res = await c.query({
        text: 'SELECT id, salary, birth_date, last_login, is_active, avatar, external_id, score, rank, big FROM customers WHERE id <= $1 ORDER BY id',
        values: [100], // with parameters node-postgres uses the extended protocol, where binary results apply
        binary: true,
        // Keep every value as the bytes on the wire: the comparison is of what warden relayed.
        types: { getTypeParser: () => (v: string | Buffer) => v },
      } as pg.QueryConfig);
      return { fields: res.fields.map((f) => [f.name, f.format]), rows: res.rows.map((row) => Object.values(row as object).map(raw)) };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.fields).toHaveLength(10);
    expect(r.warden.fields.every(([, f]) => f === 'binary')).toBe(true);
    expect(r.warden.rows[0]?.[0]).toBe('00000001');
    expect(r.warden.rows).toHaveLength(20);
  });

  it('pipeline mode: an error at Bind (22P02) mid-pipeline fails only that query; the session keeps working', async () => {
    const r = await both(
      async (c) => {
        const queries = [
          c.query('SELECT $1::int AS a', [1]),
          c.query('SELECT * FROM customers WHERE id = $1', ['not-a-number']),
          c.query('SELECT full_name FROM customers WHERE id = $1', [2]),
          c.query('SELECT count(*)::int AS n FROM customers'),
        ];
        const settled = await Promise.allSettled(queries);
        const after = await c.query('SELECT 42 AS still_alive');
        return {
          settled: settled.map((s) => (s.status === 'fulfilled' ? s.value.rows : errorShape(s.reason))),
          after: after.rows,
        };
      },
      { pipeline: true } as Config,
    );
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.settled[1]).toMatchObject({ code: '22P02', message: 'invalid input syntax for type integer: "not-a-number"' });
    expect(r.warden.settled[2]).toEqual([{ full_name: 'Bob Example' }]);
    expect(r.warden.after).toEqual([{ still_alive: 42 }]);
  });

  it('a failed transaction: 25P02 until ROLLBACK, then the session works', async () => {
    const r = await both(async (c) => {
      const out: unknown[] = [];
      await c.query('BEGIN');
      await c.query("INSERT INTO customers (full_name, email) VALUES ('Tx Person', 'tx.person@example.com')");
      out.push(await c.query('SELECT 1/0').catch(errorShape));
      out.push(await c.query('SELECT count(*) FROM customers').catch(errorShape));
      out.push((await c.query('ROLLBACK')).command);
      out.push((await c.query("SELECT count(*)::int AS n FROM customers WHERE email = 'tx.person@example.com'")).rows);
      return out;
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden[0]).toMatchObject({ code: '22012' });
    expect(r.warden[1]).toMatchObject({ code: '25P02', message: 'current transaction is aborted, commands ignored until end of transaction block' });
    expect(r.warden.slice(2)).toEqual(['ROLLBACK', [{ n: 0 }]]);
  });

  it('an error with DETAIL (23505) reaches the client whole', async () => {
    const r = await both((c) =>
      c.query("INSERT INTO customers (full_name, email) VALUES ('Dup', 'alice.testperson1@example.com')").catch((e: pg.DatabaseError) => ({
        ...errorShape(e),
        constraint: e.constraint,
        table: e.table,
        schema: e.schema,
      })),
    );
    expect(r.warden).toEqual(r.direct);
    expect(r.warden).toMatchObject({ code: '23505', detail: 'Key (email)=(alice.testperson1@example.com) already exists.', constraint: 'customers_email_key' });
  });

  it('NoticeResponse from a DO block', async () => {
    const r = await both(async (c) => {
      const notices: unknown[] = [];
      c.on('notice', (n) => notices.push({ severity: n.severity, code: n.code, message: n.message, where: n.where }));
      await c.query("DO $$ BEGIN RAISE NOTICE 'hello from DO: % customers', (SELECT count(*) FROM customers); RAISE WARNING 'careful'; END $$");
      return notices;
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden).toMatchObject([{ severity: 'NOTICE', code: '00000' }, { severity: 'WARNING', message: 'careful' }]);
  });

  it('ParameterStatus changes reach the client (SET application_name, SET TimeZone)', async () => {
    const r = await both(async (c) => {
      const seen: [string, string][] = [];
      c.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => seen.push([m.parameterName, m.parameterValue]));
      await c.query("SET application_name = 'renamed-by-test'");
      await c.query("SET TimeZone = 'Asia/Tokyo'");
      const now = await c.query("SELECT current_setting('application_name') AS app, current_setting('TimeZone') AS tz");
      return { seen, now: now.rows };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.seen).toEqual([
      ['application_name', 'renamed-by-test'],
      ['TimeZone', 'Asia/Tokyo'],
    ]);
  });

  it('SQL cursors: DECLARE / FETCH in pages / MOVE / CLOSE', async () => {
    const r = await both(async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE cur SCROLL CURSOR FOR SELECT id, email FROM customers ORDER BY id');
      const pages: unknown[] = [];
      for (let i = 0; i < 4; i++) pages.push((await c.query('FETCH 6 FROM cur')).rows);
      await c.query('MOVE ABSOLUTE 1 IN cur');
      pages.push((await c.query('FETCH NEXT FROM cur')).rows);
      await c.query('CLOSE cur');
      await c.query('COMMIT');
      return pages;
    });
    expect(r.warden).toEqual(r.direct);
    expect((r.warden as unknown[][]).map((p) => p.length)).toEqual([6, 6, 6, 2, 1]);
  });

  it('LISTEN/NOTIFY between two warden sessions: channel, payload and the notifier pid arrive', async () => {
    const listener = await viaWarden();
    const notifier = await viaWarden();
    try {
      const got: pg.Notification[] = [];
      let arrived: () => void = () => undefined;
      const two = new Promise<void>((resolve) => (arrived = resolve));
      listener.on('notification', (n) => {
        got.push(n);
        if (got.length === 2) arrived();
      });
      await listener.query('LISTEN orders_changed');
      const pid = (await notifier.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await notifier.query("SELECT pg_notify('orders_changed', $1)", ['{"order":7,"status":"shipped"}']);
      await notifier.query('NOTIFY orders_changed');
      await two;
      expect(got).toMatchObject([
        { channel: 'orders_changed', payload: '{"order":7,"status":"shipped"}', processId: pid },
        { channel: 'orders_changed', payload: '', processId: pid },
      ]);
      // The notifier's BackendKeyData carries the upstream pid, as a direct connection's would.
      expect((notifier as pg.Client & { processID: number }).processID).toBe(pid);
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it('single messages of tens of MB in both directions (an 8 MB parameter, a 16 MB value)', async () => {
    const big = 'ü✓x'.repeat((8 * 1024 * 1024) / 6);
    const r = await both(async (c) => {
      const up = await c.query('SELECT md5($1::text) AS h, octet_length($1::text) AS n', [big]);
      const down = await c.query({ text: "SELECT repeat(md5('warden'), 500000) AS v", rowMode: 'array' });
      const v = (down.rows[0] as string[])[0] as string;
      return { up: up.rows[0], downLength: v.length, downHash: createHash('md5').update(v).digest('hex') };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.up).toEqual({ h: createHash('md5').update(big).digest('hex'), n: Buffer.byteLength(big) });
    expect(r.warden.downLength).toBe(16_000_000);
  }, 60_000);

  it('a 200 000-row result arrives complete and equal', async () => {
    const sql = "SELECT g AS id, md5(g::text) AS h, repeat('x', g % 50) AS pad FROM generate_series(1, 200000) g";
    const digest = async (c: pg.Client) => {
      const res = await c.query({ text: sql, rowMode: 'array' });
      let sum = 0;
      let chars = 0;
      for (const row of res.rows as [number, string, string][]) {
        sum += row[0];
        chars += row[1].length + row[2].length;
      }
      return { rows: res.rowCount, sum, chars, last: res.rows.at(-1) };
    };
    const r = await both(digest);
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.rows).toBe(200_000);
    expect(r.warden.sum).toBe((200_000 * 200_001) / 2);
  }, 60_000);
});

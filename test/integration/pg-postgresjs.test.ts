// postgres.js (porsager/postgres) through warden vs direct: it pipelines every query it has on one
// connection, so this is where the relay's framing under many in-flight requests shows.
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
let token: string;
beforeAll(async () => {
  w = await startTestWarden();
  token = await w.token();
});
afterAll(async () => {
  await w?.stop();
});

type Sql = ReturnType<typeof postgres>;

function viaWarden(opts: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  return postgres({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca }, max: 1, onnotice: () => undefined, ...opts });
}

function direct(opts: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  const pg = testPostgres();
  return postgres({ host: pg.host, port: pg.port, user: TEST_ROLES.scram.user, password: TEST_ROLES.scram.password, database: 'shop', max: 1, onnotice: () => undefined, ...opts });
}

async function both<T>(fn: (sql: Sql) => Promise<T>): Promise<{ direct: T; warden: T }> {
  const d = direct();
  const viaW = viaWarden();
  try {
    return { direct: await fn(d), warden: await fn(viaW) };
  } finally {
    await d.end({ timeout: 5 });
    await viaW.end({ timeout: 5 });
  }
}

describe('postgres.js through warden equals a direct connection', () => {
  it('pipelines 300 queries at once on one connection; answers arrive in order and complete', async () => {
    const r = await both(async (sql) => {
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          i % 3 === 0
            ? sql`SELECT ${i}::int AS i, full_name FROM customers WHERE id = ${(i % 20) + 1}`
            : i % 3 === 1
              ? sql`SELECT ${i}::int AS i, count(*)::int AS n FROM customers WHERE rank > ${i * 10}`
              : sql`SELECT ${i}::int AS i, repeat(md5(${String(i)}), ${i % 40}) AS pad`,
        ),
      );
      const pids = await Promise.all(Array.from({ length: 20 }, () => sql`SELECT pg_backend_pid() AS pid`));
      return { rows: results.map((res) => [...res]), onePid: new Set(pids.map((p) => p[0]?.pid)).size };
    });
    expect(r.warden.rows).toEqual(r.direct.rows);
    expect(r.warden.rows.map((rows) => rows[0]?.i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(r.warden.onePid).toBe(1); // all of it on a single connection
  }, 60_000);

  it('an error in the middle of a pipeline fails that query alone', async () => {
    const r = await both(async (sql) => {
      const settled = await Promise.allSettled([
        sql`SELECT 1 AS a`,
        sql`SELECT ${'nope'}::int AS b`,
        sql`SELECT * FROM no_such_table`,
        sql`SELECT 3 AS c`,
      ]);
      return settled.map((s) => (s.status === 'fulfilled' ? [...s.value] : { code: (s.reason as postgres.PostgresError).code, message: (s.reason as Error).message }));
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden).toMatchObject([[{ a: 1 }], { code: '22P02' }, { code: '42P01' }, [{ c: 3 }]]);
  });

  it('sql.begin: commit, and rollback on a thrown error', async () => {
    const r = await both(async (sql) => {
      const committed = await sql.begin(async (tx) => {
        const [a] = await tx`SELECT txid_current() AS x`;
        const [b] = await tx`SELECT txid_current() AS x`;
        const failed = await tx
          .savepoint(async (sp) => {
            await sp`SELECT 1/0`;
          })
          .catch((e: postgres.PostgresError) => e.code);
        const [c] = await tx`SELECT txid_current() AS x`;
        return { sameTx: a?.x === b?.x && b?.x === c?.x, failed };
      });
      const rolledBack = await sql
        .begin(async (tx) => {
          await tx`INSERT INTO customers (full_name, email) VALUES ('Begin Person', 'begin.person@example.com')`;
          throw new Error('changed my mind');
        })
        .catch((e: Error) => e.message);
      const [left] = await sql`SELECT count(*)::int AS n FROM customers WHERE email = 'begin.person@example.com'`;
      return { committed, rolledBack, left };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden).toEqual({ committed: { sameTx: true, failed: '22012' }, rolledBack: 'changed my mind', left: { n: 0 } });
  });

  it('sql.listen / sql.notify through warden', async () => {
    const sql = viaWarden({ max: 2 });
    try {
      const got: string[] = [];
      let done: () => void = () => undefined;
      const all = new Promise<void>((resolve) => (done = resolve));
      await sql.listen('pgjs_channel', (payload) => {
        got.push(payload);
        if (got.length === 3) done();
      });
      for (const p of ['one', 'two', 'three']) await sql.notify('pgjs_channel', p);
      await all;
      expect(got).toEqual(['one', 'two', 'three']);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('COPY … TO STDOUT as a readable stream, and COPY … FROM STDIN as a writable one', async () => {
    const r = await both(async (sql) => {
      const chunks: Buffer[] = [];
      const out = await sql`COPY customers (id, full_name, email, ssn, card_number) TO STDOUT WITH (FORMAT csv, HEADER)`.readable();
      for await (const chunk of out) chunks.push(Buffer.from(chunk as Buffer));
      const copiedIn = await sql.begin(async (tx) => {
        await tx`CREATE TEMP TABLE copy_in (id int, name text) ON COMMIT DROP`;
        const writable = await tx`COPY copy_in FROM STDIN`.writable();
        const lines = Array.from({ length: 5000 }, (_, i) => `${i}\tname ${i} ✓\n`);
        await pipeline(Readable.from(lines), writable);
        return tx`SELECT count(*)::int AS n, sum(id)::int AS s, max(name) AS m FROM copy_in`;
      });
      return { out: Buffer.concat(chunks).toString('utf8'), copiedIn: [...copiedIn] };
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden.out.split('\n')[0]).toBe('id,full_name,email,ssn,card_number');
    expect(r.warden.out.trim().split('\n')).toHaveLength(21);
    expect(r.warden.copiedIn).toEqual([{ n: 5000, s: (4999 * 5000) / 2, m: 'name 999 ✓' }]);
  });
});

// A client that vanishes in the middle of a large result (a crashed worker, a killed pod): warden
// stops reading from the target once nobody takes the rows, so it must close the target
// connection — not send Terminate and wait, while the backend blocks writing the rest of the
// result to warden forever (the session, its backend and its snapshot leaked).
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { directUrl } from '../helpers/pg-env.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

const MARK = `vanish_${process.pid}`;
let w: TestWarden;

beforeAll(async () => {
  w = await startTestWarden({ yaml: 'transcripts:\n  capture: digest\n' });
});

afterAll(async () => {
  await w?.stop();
});

async function backendsRunningMark(): Promise<number> {
  const c = new pg.Client({ connectionString: directUrl() });
  await c.connect();
  try {
    const r = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()", [`%${MARK}%`]);
    return r.rows[0].n as number;
  } finally {
    await c.end();
  }
}

it('the target connection is closed and the backend ends', async () => {
  const token = await w.token();
  const clients = await Promise.all(
    [0, 1, 2].map(async () => {
      const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }),
  );
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          const q = new pg.Query(`SELECT g, repeat('q', 300) AS ${MARK} FROM generate_series(1, 400000) g`);
          let rows = 0;
          q.on('row', () => {
            if (++rows === 1000) {
              (c as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
              resolve();
            }
          });
          q.on('error', () => undefined);
          void c.query(q);
        }),
    ),
  );
  let left = -1;
  for (let i = 0; i < 40 && left !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = await backendsRunningMark();
  }
  expect(left).toBe(0);
  // warden still serves new sessions
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: token, database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  await c.end();
});

// CancelRequest through warden: warden hands the client its own key (upstream pid, warden's
// secret) and maps it to the upstream's key. A real cancel (node-postgres, psql's SIGINT, a raw
// one over TLS) stops the query with 57014 within a second or two and the session goes on; a
// forged key cancels nothing, and warden's secret is worthless directly at the database.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCancelRequest, encodeSslRequest } from '../../protocols/postgres/startup-message.js';
import { findClient, missingClient } from '../helpers/clients.js';
import { directUrl, TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { closed, readByte, startTls, tcpConnect } from '../helpers/pg-raw.js';
import { run } from '../helpers/run.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

type Keyed = pg.Client & { processID: number; secretKey: number };

async function viaWarden(): Promise<Keyed> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await c.connect();
  return c as Keyed;
}

async function direct(): Promise<Keyed> {
  const c = new pg.Client({ connectionString: directUrl() });
  await c.connect();
  return c as Keyed;
}

/** Sends a CancelRequest on a new plaintext connection, as libpq ≤ 16 does, and waits for the close. */
async function sendCancel(port: number, processId: number, secretKey: number, host = '127.0.0.1'): Promise<void> {
  const s = await tcpConnect(host, port);
  s.end(encodeCancelRequest(processId, secretKey));
  s.on('error', () => undefined);
  expect(await closed(s, 5000)).toBe(true);
}

/** Runs `SELECT pg_sleep(…)` and cancels it after `afterMs` with `cancel`; returns the outcome and the time it took. */
async function cancelRun(c: Keyed, cancel: () => Promise<void>, afterMs = 300): Promise<{ error: pg.DatabaseError | undefined; ms: number }> {
  const started = Date.now();
  // Settle into a value at once, so the rejection is never unhandled while the cancel is sent.
  const outcome = c.query("SELECT pg_sleep(30), 'not cancelled' AS outcome").then(
    () => undefined,
    (e: pg.DatabaseError) => e,
  );
  await new Promise((r) => setTimeout(r, afterMs));
  await cancel();
  const error = await outcome;
  return { error, ms: Date.now() - started };
}

describe('CancelRequest through warden', () => {
  it('node-postgres cancels a running query: 57014 fast, same as direct, and the session goes on', async () => {
    const outcomes = [];
    for (const [via, make, port] of [
      ['direct', direct, testPostgres().port],
      ['warden', viaWarden, w.port],
    ] as const) {
      const c = await make();
      // What node-postgres' Client#cancel does: a new connection carrying the BackendKeyData it got.
      const r = await cancelRun(c, () => sendCancel(port, c.processID, c.secretKey));
      outcomes.push({ via, code: r.error?.code, message: r.error?.message });
      expect(r.ms).toBeLessThan(5000);
      expect((await c.query('SELECT 1 AS after')).rows).toEqual([{ after: 1 }]);
      await c.end();
    }
    expect(outcomes[1]).toEqual({ ...outcomes[0], via: 'warden' });
    expect(outcomes[1]).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
  }, 20_000);

  it('node-postgres’ own Client#cancel path works too', async () => {
    const c = await viaWarden();
    const q = new pg.Query("SELECT pg_sleep(30)");
    const done = new Promise<pg.DatabaseError | undefined>((resolve) => {
      q.on('error', (e: Error) => resolve(e as pg.DatabaseError));
      q.on('end', () => resolve(undefined));
    });
    c.query(q);
    await new Promise((r) => setTimeout(r, 300));
    const canceller = new pg.Client({ host: w.host, port: w.port, user: 'agent', database: 'shop' });
    (canceller as unknown as { cancel(c: pg.Client, q: pg.Query): void }).cancel(c, q);
    const err = await done;
    expect(err?.code).toBe('57014');
    expect((await c.query('SELECT 2 AS after')).rows).toEqual([{ after: 2 }]);
    await c.end();
  }, 20_000);

  it('a CancelRequest sent over TLS (SSLRequest first, as libpq 17 does) works', async () => {
    const c = await viaWarden();
    const r = await cancelRun(c, async () => {
      let s: net.Socket = await tcpConnect(w.host, w.port);
      s.write(encodeSslRequest());
      expect(await readByte(s)).toBe(0x53);
      s = await startTls(s, w.ca);
      s.end(encodeCancelRequest(c.processID, c.secretKey));
      expect(await closed(s, 5000)).toBe(true);
    });
    expect(r.error?.code).toBe('57014');
    expect(r.ms).toBeLessThan(5000);
    await c.end();
  }, 20_000);

  it('cancels on a target reached over verify-full TLS (the cancel goes upstream over TLS too)', async () => {
    const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop_tls', ssl: { ca: w.ca } }) as Keyed;
    await c.connect();
    expect((await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows).toEqual([{ ssl: true }]);
    const r = await cancelRun(c, () => sendCancel(w.port, c.processID, c.secretKey));
    expect(r.error?.code).toBe('57014');
    expect(r.ms).toBeLessThan(5000);
    await c.end();
  }, 20_000);

  it('a forged key (right pid, wrong secret; or unknown pid) cancels nothing', async () => {
    const before = w.warden.metrics.cancelsTotal.get({ protocol: 'postgres', result: 'unknown_key' });
    const c = await viaWarden();
    const started = Date.now();
    const query = c.query("SELECT pg_sleep(1.5), 'completed' AS outcome");
    await new Promise((r) => setTimeout(r, 200));
    await sendCancel(w.port, c.processID, c.secretKey ^ 1);
    await sendCancel(w.port, c.processID, ~c.secretKey);
    await sendCancel(w.port, c.processID + 1, c.secretKey);
    const r = await query;
    expect(r.rows[0].outcome).toBe('completed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(w.warden.metrics.cancelsTotal.get({ protocol: 'postgres', result: 'unknown_key' }) - before).toBe(3);
    await c.end();
  }, 20_000);

  it('the client’s key names the upstream backend, but its secret is warden’s own: useless at the database directly', async () => {
    const c = await viaWarden();
    expect((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid).toBe(c.processID);
    const query = c.query("SELECT pg_sleep(1), 'completed' AS outcome");
    await new Promise((r) => setTimeout(r, 200));
    await sendCancel(testPostgres().port, c.processID, c.secretKey, testPostgres().host);
    expect((await query).rows[0].outcome).toBe('completed');
    await c.end();
  }, 20_000);
});

/**
 * Resolves once psql's `SELECT pg_sleep(30) AS psql_ctrl_c` is running on the test server (checked
 * directly). Its own text: other test files sleep on the same server at the same time.
 */
async function whenSleeping(): Promise<void> {
  const c = await direct();
  try {
    for (let i = 0; i < 300; i++) {
      const r = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30) AS psql_ctrl_c'");
      if ((r.rows[0] as { n: number }).n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await c.end();
  }
}

describe.skipIf(missingClient('psql'))('psql SIGINT through warden', () => {
  it('Ctrl-C cancels the running statement with 57014, as on a direct connection', async () => {
    const pgs = testPostgres();
    const outcomes: { code: number | null; stderr: string; ms: number }[] = [];
    for (const env of [
      { PGHOST: pgs.host, PGPORT: String(pgs.port), PGUSER: TEST_ROLES.scram.user, PGPASSWORD: TEST_ROLES.scram.password, PGSSLMODE: 'disable' },
      { PGHOST: w.host, PGPORT: String(w.port), PGUSER: 'agent', PGPASSWORD: await w.token(), PGSSLMODE: 'require' },
    ]) {
      const started = Date.now();
      const r = await run(findClient('psql') as string, ['-X', '-d', 'shop', '-c', 'SELECT pg_sleep(30) AS psql_ctrl_c'], {
        env,
        timeoutMs: 28_000,
        // Ctrl-C once the statement runs: before that (a slow start on a busy machine) it would
        // only stop psql, and there would be nothing to cancel.
        onSpawn: (pid) => void whenSleeping()
          .catch(() => undefined)
          .then(() => process.kill(pid, 'SIGINT')),
      });
      outcomes.push({ code: r.code, stderr: r.stderr, ms: Date.now() - started });
    }
    const [d, viaW] = outcomes as [(typeof outcomes)[0], (typeof outcomes)[0]];
    expect(viaW.stderr).toBe(d.stderr);
    expect(viaW.code).toBe(d.code);
    expect(viaW.stderr).toContain('ERROR:  canceling statement due to user request');
    expect(viaW.code).toBe(1);
    // Cancelled, not run to the end: pg_sleep(30) would take 30 s.
    expect(viaW.ms).toBeLessThan(25_000);
  }, 70_000);
});

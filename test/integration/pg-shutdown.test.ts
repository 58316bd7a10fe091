// Graceful shutdown: warden.close(grace) ends idle sessions at once with 57P01, lets running
// queries (and pipelined ones) finish within the grace period, then ends those sessions too,
// and accepts no new connections meanwhile.
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';
import { errorIn, rawLogin } from '../helpers/pg-raw.js';
import { letters } from '../helpers/pg-codec.js';
import { Backend, Frontend } from '../../protocols/postgres/codes.js';
import { encodeCopyData } from '../../protocols/postgres/backend-messages.js';
import {
  encodeBind,
  encodeDescribe,
  encodeEmpty,
  encodeExecute,
  encodeParse,
  encodeQuery,
  SYNC,
} from '../../protocols/postgres/frontend-messages.js';

async function client(w: TestWarden): Promise<{ c: pg.Client; errors: pg.DatabaseError[] }> {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  const errors: pg.DatabaseError[] = [];
  c.on('error', (e) => errors.push(e as pg.DatabaseError));
  await c.connect();
  return { c, errors };
}

const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('warden.close(grace)', () => {
  it('ends an idle session with 57P01 at once and lets a running query finish', async () => {
    const w = await startTestWarden();
    const idle = await client(w);
    const busy = await client(w);
    const running = busy.c.query("SELECT pg_sleep(1.5), 'finished' AS status");
    await new Promise((r) => setTimeout(r, 200)); // the query is on its way
    const started = Date.now();
    const closing = w.warden.close(8000);

    expect(await until(() => idle.errors.length > 0, 2000)).toBe(true);
    expect(idle.errors[0]).toMatchObject({ code: '57P01', severity: 'FATAL', message: 'terminating connection because warden is shutting down' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await refused(w.port)).toBe(true);

    const result = await running;
    expect(result.rows[0]).toMatchObject({ status: 'finished' });
    expect(await until(() => busy.errors.length > 0, 2000)).toBe(true);
    expect(busy.errors[0]).toMatchObject({ code: '57P01' });
    await closing;
    expect(Date.now() - started).toBeLessThan(6500); // done when the sessions are, not at the end of the grace
    expect(w.warden.pgListener?.openSessions).toBe(0);
    await w.stop();
  }, 20_000);

  it('lets every query of a pipeline finish, not just the first', async () => {
    const w = await startTestWarden();
    const sql = postgres({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, max: 1, onnotice: () => undefined });
    try {
      await sql`SELECT 1`; // connected
      const first = sql`SELECT pg_sleep(0.3), 'first' AS q`;
      const second = sql`SELECT pg_sleep(1.0), 'second' AS q`;
      const third = sql`SELECT 'third' AS q`;
      const all = Promise.allSettled([first, second, third]);
      await new Promise((r) => setTimeout(r, 100));
      const closing = w.warden.close(8000);
      const settled = await all;
      expect(settled.map((s) => (s.status === 'fulfilled' ? s.value[0]?.q : (s.reason as Error).message))).toEqual(['first', 'second', 'third']);
      await closing;
    } finally {
      await sql.end({ timeout: 1 });
      await w.stop();
    }
  }, 20_000);

  it('after the grace period the remaining sessions are closed', async () => {
    const w = await startTestWarden();
    const busy = await client(w);
    const running = busy.c.query('SELECT pg_sleep(20)').catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await w.warden.close(800);
    const outcome = await running;
    expect(outcome).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(4000);
    // close() resolves once the client sockets are gone; the upstream side follows at once.
    expect(await until(() => w.warden.pgListener?.openSessions === 0, 1000)).toBe(true);
    await w.stop();
  }, 20_000);

  it('a session that ran an extended-protocol COPY FROM STDIN (libpq sends a Sync PostgreSQL ignores) is idle afterwards', async () => {
    const w = await startTestWarden();
    const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
    try {
      s.socket.write(encodeQuery('CREATE TEMP TABLE raw_copy (id int, name text)'));
      expect(letters(await s.reader.until(Backend.readyForQuery))).toBe('CZ');
      // As libpq's PQexecParams does: Parse/Bind/Describe/Execute/Sync in one go; the COPY starts
      // at Execute, so PostgreSQL reads that Sync inside COPY mode and ignores it.
      s.socket.write(
        Buffer.concat([
          encodeParse({ name: '', sql: 'COPY raw_copy FROM STDIN', paramTypes: [] }),
          encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
          encodeDescribe({ kind: 'portal', name: '' }),
          encodeExecute({ portal: '', maxRows: 0 }),
          SYNC,
        ]),
      );
      expect(letters(await s.reader.until(Backend.copyInResponse))).toBe('12nG');
      s.socket.write(Buffer.concat([encodeCopyData(Buffer.from('1\tone\n2\ttwo\n')), encodeEmpty(Frontend.copyDone), SYNC]));
      expect(letters(await s.reader.until(Backend.readyForQuery))).toBe('CZ');
      const started = Date.now();
      const closing = w.warden.close(8000);
      const rest = await s.reader.untilClosed(5000);
      expect(errorIn(rest)).toMatchObject({ code: '57P01' });
      expect(Date.now() - started).toBeLessThan(3000); // idle: ended at once, not at the end of the grace
      await closing;
    } finally {
      s.socket.destroy();
      await w.stop();
    }
  }, 20_000);
});

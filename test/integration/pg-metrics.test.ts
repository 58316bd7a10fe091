// /metrics on the admin URL after a known mix of traffic: sessions, statements (simple and
// extended), bytes both ways, refused logins by reason, protocol errors and cancels, each counted
// exactly, read over HTTP as Prometheus would.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCancelRequest } from '../../protocols/postgres/startup-message.js';
import { closed, rawLogin, tcpConnect } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

/** Parses the Prometheus text format into "name{labels}" → value (labels sorted as warden writes them). */
async function scrape(): Promise<{ text: string; get(name: string, labels?: Record<string, string>): number }> {
  const res = await fetch(`${w.warden.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) values.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return {
    text,
    get: (name, labels) => {
      const key = labels ? `${name}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',')}}` : name;
      return values.get(key) ?? 0;
    },
  };
}

const client = async (password?: string): Promise<pg.Client> => {
  const c = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: password ?? (await w.token()), database: 'shop', ssl: { ca: w.ca } });
  c.on('error', () => undefined);
  return c;
};

describe('/metrics', () => {
  it('counts sessions, statements, bytes, auth failures, protocol errors and cancels', async () => {
    // Three sessions: 2 simple statements, 3 extended ones, and a ~1 MB result.
    const a = await client();
    await a.connect();
    await a.query('SELECT 1');
    await a.query("SELECT repeat('y', 1000) FROM generate_series(1, 1000)");
    const b = await client();
    await b.connect();
    for (let i = 0; i < 3; i++) await b.query('SELECT $1::int AS i', [i]);
    const c = await client();
    await c.connect();

    // A cancel that reaches its query, and one with a forged key.
    const keyed = c as pg.Client & { processID: number; secretKey: number };
    const sleeping = c.query('SELECT pg_sleep(10)').catch((e: pg.DatabaseError) => e.code);
    await new Promise((r) => setTimeout(r, 200));
    for (const secret of [keyed.secretKey, keyed.secretKey ^ 1]) {
      const s = await tcpConnect(w.host, w.port);
      s.end(encodeCancelRequest(keyed.processID, secret));
      await closed(s);
    }
    expect(await sleeping).toBe('57014');

    // Two refused logins and one protocol error.
    for (const password of ['garbage', await w.token({ audience: 'api://elsewhere' })]) {
      const bad = await client(password);
      await expect(bad.connect()).rejects.toThrow(/token rejected/);
    }
    const raw = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
    raw.socket.write(Buffer.from([0x51, 0, 0, 0, 1]));
    await raw.reader.untilClosed();

    // A session leaves the gauge once both its sockets have closed.
    const active = async (n: number): Promise<number> => {
      let v = -1;
      for (let i = 0; i < 100 && v !== n; i++) {
        v = (await scrape()).get('warden_sessions_active', { protocol: 'postgres', target: 'shop' });
        if (v !== n) await new Promise((r) => setTimeout(r, 20));
      }
      return v;
    };
    expect(await active(3)).toBe(3);
    for (const x of [a, b, c]) await x.end();
    expect(await active(0)).toBe(0);
    const m = await scrape();
    expect(m.get('warden_sessions_total', { protocol: 'postgres', target: 'shop' })).toBe(4);
    expect(m.get('warden_sessions_active', { protocol: 'postgres', target: 'shop' })).toBe(0);
    // 4 sessions + 2 cancel connections + 2 refused logins.
    expect(m.get('warden_connections_total', { protocol: 'postgres' })).toBe(8);
    // 2 simple + 3 Execute + pg_sleep (the protocol-error session sent no statement).
    expect(m.get('warden_queries_total', { protocol: 'postgres', target: 'shop' })).toBe(6);
    expect(m.get('warden_bytes_total', { direction: 'upstream_to_client' })).toBeGreaterThan(1000 * 1000);
    expect(m.get('warden_bytes_total', { direction: 'client_to_upstream' })).toBeGreaterThan(100);
    expect(m.get('warden_auth_failures_total', { protocol: 'postgres', reason: 'malformed token' })).toBe(1);
    expect(m.get('warden_auth_failures_total', { protocol: 'postgres', reason: 'token audience is not accepted' })).toBe(1);
    expect(m.get('warden_protocol_errors_total', { protocol: 'postgres', side: 'client' })).toBe(1);
    expect(m.get('warden_cancel_requests_total', { protocol: 'postgres', result: 'forwarded' })).toBe(1);
    expect(m.get('warden_cancel_requests_total', { protocol: 'postgres', result: 'unknown_key' })).toBe(1);
    expect(m.get('warden_process_resident_memory_bytes')).toBeGreaterThan(0);
    // No token, password or query text in the exposition.
    expect(m.text).not.toMatch(/eyJ|repeat\(|pg_sleep|garbage/);
  }, 30_000);
});

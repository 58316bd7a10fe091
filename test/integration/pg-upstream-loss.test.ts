// When the upstream ends a session, the client sees what a direct connection sees: the server's
// own FATAL (terminated by an administrator, idle-session timeout) and the close, nothing added;
// when the connection to the target is cut without a word, warden says so (08006).
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directUrl, TEST_ROLES, testPostgres } from '../helpers/pg-env.js';
import { describe as show, rawLogin } from '../helpers/pg-raw.js';
import { pgTarget, startTestWarden, type TestWarden } from '../helpers/warden.js';

/** A plain TCP forwarder in front of the test PostgreSQL, so a test can cut the wire. */
class Wire {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  port = 0;
  constructor() {
    this.server = net.createServer((inbound) => {
      const pg = testPostgres();
      const outbound = net.connect({ host: pg.host, port: pg.port });
      const pair: [net.Socket, net.Socket] = [inbound, outbound];
      this.pairs.add(pair);
      inbound.pipe(outbound).pipe(inbound);
      const drop = (): void => {
        this.pairs.delete(pair);
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Cuts every connection: both ends see a reset/close with no PostgreSQL message. */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
  }
  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let w: TestWarden;
let wire: Wire;
let admin: pg.Client;
beforeAll(async () => {
  wire = new Wire();
  await wire.listen();
  w = await startTestWarden({ targets: [pgTarget('shop', TEST_ROLES.scram), pgTarget('wired', TEST_ROLES.scram, { port: wire.port })] });
  const s = testPostgres();
  admin = new pg.Client({ host: s.host, port: s.port, user: 'postgres', password: s.superuserPassword, database: 'shop' });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await w?.stop();
  await wire?.close();
});

type Keyed = pg.Client & { processID: number };

async function errorsAfter(c: Keyed, act: (c: Keyed) => Promise<void>): Promise<string[]> {
  const errors: string[] = [];
  c.on('error', (e: Error) => void errors.push(`${(e as pg.DatabaseError).code ?? '-'} ${e.message}`));
  await act(c);
  for (let i = 0; i < 50 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  return errors;
}

async function both(act: (c: Keyed) => Promise<void>): Promise<{ direct: string[]; warden: string[] }> {
  const d = new pg.Client({ connectionString: directUrl() }) as Keyed;
  await d.connect();
  const v = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } }) as Keyed;
  await v.connect();
  return { direct: await errorsAfter(d, act), warden: await errorsAfter(v, act) };
}

describe('the upstream ends the session', () => {
  it('pg_terminate_backend: the server’s FATAL 57P01 and the close, exactly as direct', async () => {
    const r = await both(async (c) => {
      await admin.query('SELECT pg_terminate_backend($1)', [c.processID]);
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden[0]).toBe('57P01 terminating connection due to administrator command');
  });

  it('idle_session_timeout: the server’s FATAL 57P05, exactly as direct', async () => {
    const r = await both(async (c) => {
      await c.query("SET idle_session_timeout = '200ms'");
      await new Promise((res) => setTimeout(res, 600));
    });
    expect(r.warden).toEqual(r.direct);
    expect(r.warden[0]).toBe('57P05 terminating connection due to idle-session timeout');
  });

  it('raw: one ErrorResponse, then the close (warden adds no second FATAL)', async () => {
    const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
    await admin.query('SELECT pg_terminate_backend($1)', [s.key.processId]);
    const msgs = await s.reader.untilClosed(5000);
    expect(msgs.map(show)).toEqual(['E FATAL 57P01 terminating connection due to administrator command']);
  });

  it('a cut connection to the target (no message from it): FATAL 08006 from warden', async () => {
    const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'wired', password: await w.token() });
    wire.cut();
    const msgs = await s.reader.untilClosed(5000);
    expect(msgs.map(show)).toEqual(['E FATAL 08006 the connection to the target was lost']);
  });
});

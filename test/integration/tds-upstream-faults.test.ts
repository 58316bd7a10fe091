// A target that misbehaves after login, scripted by a TCP relay between warden and the stand-in
// (plaintext TDS): it answers one batch with bytes that are not a token stream, or hangs up in
// the middle of a response. The agent of that session gets warden's error (50002, 50003, class
// 20) and its session closes; another agent's session, and warden, go on.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlServerStandIn } from '../../fixtures/sqlserver-standin/index.js';
import { decodeTokens, DONE_STATUS, PACKET_TYPE, TDS_VERSION, type Message } from '../../protocols/tds/index.js';
import { batch, closeTedious, connectTedious, query, rawConnect, rawLogin, startStandIn, tdsTarget, tediousConfig } from '../helpers/tds.js';
import { pgTarget, startTestWarden, type TestWarden } from '../helpers/warden.js';
import { TEST_ROLES } from '../helpers/pg-env.js';

const V74 = { tdsVersion: TDS_VERSION.V7_4 };
/** Batches holding this text (UTF-16LE on the wire) trigger the fault. */
const GARBLE = Buffer.from('garble-me', 'utf16le');
const HANG_UP = Buffer.from('hang-up-now', 'utf16le');

let standin: SqlServerStandIn;
let relay: net.Server;
let tw: TestWarden;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  standin = await startStandIn({ noTls: true });
  relay = net.createServer((client) => {
    const server = net.connect(standin.port, standin.host);
    sockets.add(client).add(server);
    let fault: 'garble' | 'hang-up' | undefined;
    client.on('data', (d: Buffer) => {
      if (d.includes(GARBLE)) fault = 'garble';
      if (d.includes(HANG_UP)) fault = 'hang-up';
      server.write(d);
    });
    server.on('data', (d: Buffer) => {
      if (fault === 'garble') {
        // A whole packet whose payload is no token stream (0x01 is no token).
        client.write(Buffer.from([PACKET_TYPE.TABULAR_RESULT, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04]));
        fault = undefined;
      } else if (fault === 'hang-up') {
        // The first 10 bytes of the response, then the connection ends.
        client.end(d.subarray(0, 10));
        server.destroy();
      } else client.write(d);
    });
    const close = (): void => {
      client.destroy();
      server.destroy();
    };
    client.on('close', close).on('error', close);
    server.on('close', () => client.end()).on('error', close);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as net.AddressInfo).port;
  tw = await startTestWarden({
    targets: [pgTarget('pg', TEST_ROLES.scram)],
    tdsTargets: [tdsTarget('shop', { ...standin, port } as SqlServerStandIn, { tls: { mode: 'disable' } })],
    plaintextTokens: 'loopback',
  });
});

afterAll(async () => {
  await tw?.stop();
  for (const s of sockets) s.destroy();
  await new Promise((r) => relay?.close(r));
  await standin?.stop();
});

/** Reads messages until the connection closes; returns the ERROR tokens seen. */
async function errorsUntilClosed(raw: Awaited<ReturnType<typeof rawConnect>>): Promise<{ number: number; class: number; message: string }[]> {
  const errors: { number: number; class: number; message: string }[] = [];
  for (;;) {
    let m: Message;
    try {
      m = await raw.next(10_000);
    } catch {
      break;
    }
    for (const t of decodeTokens(m.payload, V74)) {
      if (t.kind === 'ERROR') errors.push(t);
      if (t.kind === 'DONE') expect(t.status & DONE_STATUS.ERROR).toBe(DONE_STATUS.ERROR);
    }
  }
  await raw.closed;
  return errors;
}

describe('a target that misbehaves after login', () => {
  it.each([
    ["SELECT 'garble-me' AS x", 50002, /the target sent an invalid message; the session was closed/],
    ["SELECT 'hang-up-now' AS x", 50003, /the connection to the target was lost/],
  ] as const)('%s: only that session ends, with error %i', async (sql, number, message) => {
    const token = await tw.token();
    const other = await connectTedious(tediousConfig({ port: tw.warden.tds!.port, encrypt: false, auth: { password: token } }));
    try {
      const raw = await rawConnect(tw.warden.tds!.port);
      expect((await rawLogin(raw, token)).some((t) => t.kind === 'LOGINACK')).toBe(true);
      raw.send(PACKET_TYPE.SQL_BATCH, batch(sql));
      const errors = await errorsUntilClosed(raw);
      expect(errors).toEqual([expect.objectContaining({ number, class: 20, message: expect.stringMatching(message) })]);
      expect((await query(other, 'SELECT COUNT(*) AS n FROM customers')).sets[0]!.rows).toEqual([[20]]);
    } finally {
      await closeTedious(other);
    }
  });
});

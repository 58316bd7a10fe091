// A raw TDS client against warden (plaintext tokens allowed from loopback for this harness):
// malformed packets, PRELOGIN, LOGIN7 and requests get a TDS ERROR (4002) and only that session
// closes; ATTENTION through warden cancels a running statement.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  decodePrelogin,
  decodeTokens,
  DONE_STATUS,
  packetize,
  encodeLogin7,
  encodePrelogin,
  encodeRpcRequest,
  ENCRYPTION,
  PACKET_TYPE,
  PROC_ID,
  TDS_VERSION,
  transactionHeaders,
  DATA_TYPE,
  type Message,
  type Token,
} from '../../protocols/tds/index.js';
import { connectPreloginTls } from '../../src/tds/tls.js';
import {
  batch,
  closeTedious,
  connectTedious,
  login7,
  query,
  rawConnect,
  rawConnectOn,
  rawLogin,
  startTdsHarness,
  tediousConfig,
  type RawTds,
  type TdsHarness,
} from '../helpers/tds.js';

let h: TdsHarness;
let token: string;

beforeAll(async () => {
  h = await startTdsHarness({ plaintextTokens: 'loopback' });
  token = await h.tw.token();
});

afterAll(async () => {
  await h?.stop();
});

const tokensOf = (m: Message): Token[] => decodeTokens(m.payload, { tdsVersion: TDS_VERSION.V7_4 });

/** The server's answer is one ERROR 4002 (class 20) and a DONE with the error bit; then it closes. */
async function expectProtocolError(raw: RawTds, detail: RegExp): Promise<void> {
  const m = await raw.next();
  expect(m.type).toBe(PACKET_TYPE.TABULAR_RESULT);
  const [err, done] = tokensOf(m);
  expect(err).toMatchObject({ kind: 'ERROR', number: 4002, class: 20 });
  expect((err as { message: string }).message).toMatch(detail);
  expect(done).toMatchObject({ kind: 'DONE' });
  expect(((done as { status: number }).status & DONE_STATUS.ERROR) !== 0).toBe(true);
  await raw.closed;
}

const prelogin = encodePrelogin({ version: { major: 1, minor: 0, build: 0, subBuild: 0 }, encryption: ENCRYPTION.ENCRYPT_NOT_SUP });

describe('malformed input before login', () => {
  it('bytes that are not TDS', async () => {
    const raw = await rawConnect(h.port);
    raw.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await expectProtocolError(raw, /unknown packet type 0x47/);
  });

  it('a packet shorter than its header', async () => {
    const raw = await rawConnect(h.port);
    raw.socket.write(Buffer.from([0x12, 0x01, 0x00, 0x03, 0, 0, 1, 0]));
    await expectProtocolError(raw, /shorter than the 8-byte header/);
  });

  it('a PRELOGIN option that points outside the message', async () => {
    const raw = await rawConnect(h.port);
    const bad = Buffer.from(prelogin);
    bad.writeUInt16BE(0x4000, 1); // VERSION's offset
    raw.send(PACKET_TYPE.PRELOGIN, bad);
    await expectProtocolError(raw, /PRELOGIN option 0x0 points at 16384/);
  });

  it('a LOGIN7 that lies about its offsets, or its length', async () => {
    for (const [patch, detail] of [
      [(b: Buffer) => b.writeUInt16LE(60_000, 40), /UserName at 60000/],
      [(b: Buffer) => b.writeUInt32LE(b.length + 10, 0), /does not match/],
      [(b: Buffer) => b.writeUInt16LE(5000, 42), /5000 characters/],
    ] as const) {
      const raw = await rawConnect(h.port);
      raw.send(PACKET_TYPE.PRELOGIN, prelogin);
      await raw.next();
      const login = encodeLogin7(login7(token));
      patch(login);
      raw.send(PACKET_TYPE.LOGIN7, login);
      await expectProtocolError(raw, detail);
    }
  });

  it('a request before the login', async () => {
    const raw = await rawConnect(h.port);
    raw.send(PACKET_TYPE.PRELOGIN, prelogin);
    await raw.next();
    raw.send(PACKET_TYPE.SQL_BATCH, batch('SELECT 1'));
    await expectProtocolError(raw, /expected LOGIN7/);
  });
});

describe('malformed requests after login, with another session unaffected', () => {
  async function loggedIn(): Promise<RawTds> {
    const raw = await rawConnect(h.port);
    const tokens = await rawLogin(raw, token);
    expect(tokens.some((t) => t.kind === 'LOGINACK')).toBe(true);
    return raw;
  }

  it('gives only the offending session an ERROR and closes it', async () => {
    const other = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: token } }));
    try {
      const before = h.tw.warden.metrics.protocolErrorsTotal.get({ protocol: 'tds', side: 'client' });
      // a SQLBatch whose text has an odd number of bytes
      let raw = await loggedIn();
      raw.send(PACKET_TYPE.SQL_BATCH, Buffer.concat([batch('SELECT 1'), Buffer.from([0x41])]));
      await expectProtocolError(raw, /odd byte length/);
      // a packet type that is not a request
      raw = await loggedIn();
      raw.send(PACKET_TYPE.LOGIN7, Buffer.alloc(16));
      await expectProtocolError(raw, /packet type 0x10 is not a request/);
      // an RPC parameter that claims more bytes than the message has
      raw = await loggedIn();
      const rpc = encodeRpcRequest(
        { headers: transactionHeaders(), calls: [{ procId: PROC_ID.SP_EXECUTESQL, options: 0, parameters: [{ name: '', status: 0, typeInfo: { type: DATA_TYPE.NVARCHAR, length: 8000, collation: { lcid: 0x409, flags: 0xd, version: 0, sortId: 52 } }, value: 'SELECT 1' }] }] },
        { tdsVersion: TDS_VERSION.V7_4 },
      );
      rpc.writeUInt16LE(7000, rpc.length - 18); // the value's length
      raw.send(PACKET_TYPE.RPC, rpc);
      await expectProtocolError(raw, /./);
      await vi.waitFor(() => expect(h.tw.warden.metrics.protocolErrorsTotal.get({ protocol: 'tds', side: 'client' })).toBeGreaterThanOrEqual(before + 3));
      expect((await query(other, 'SELECT COUNT(*) FROM customers')).sets[0]!.rows).toEqual([[20]]);
    } finally {
      await closeTedious(other);
    }
  });

  it('an ATTENTION without the end-of-message bit is the client\'s protocol error (4002), not sent on to the target', async () => {
    const before = h.tw.warden.metrics.protocolErrorsTotal.get({ protocol: 'tds', side: 'client' });
    const raw = await loggedIn();
    raw.socket.write(Buffer.from([PACKET_TYPE.ATTENTION, 0x00, 0x00, 0x08, 0, 0, 1, 0]));
    raw.send(PACKET_TYPE.SQL_BATCH, batch('SELECT 1'));
    await expectProtocolError(raw, /ATTENTION without the end-of-message bit/);
    await vi.waitFor(() => expect(h.tw.warden.metrics.protocolErrorsTotal.get({ protocol: 'tds', side: 'client' })).toBe(before + 1));
  });
});

describe('ATTENTION', () => {
  it('cancels a running statement through warden; the session goes on', async () => {
    const raw = await rawConnect(h.port);
    await rawLogin(raw, token);
    const started = Date.now();
    raw.send(PACKET_TYPE.SQL_BATCH, batch("WAITFOR DELAY '00:00:30'"));
    await new Promise((r) => setTimeout(r, 500));
    raw.socket.write(Buffer.from([PACKET_TYPE.ATTENTION, 0x01, 0x00, 0x08, 0, 0, 1, 0]));
    // Read until the DONE with the ATTN bit.
    let acknowledged = false;
    while (!acknowledged) {
      const m = await raw.next(15_000);
      acknowledged = tokensOf(m).some((t) => (t.kind === 'DONE' || t.kind === 'DONEPROC' || t.kind === 'DONEINPROC') && (t.status & DONE_STATUS.ATTN) !== 0);
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    raw.send(PACKET_TYPE.SQL_BATCH, batch('SELECT 42 AS answer'));
    const rows = tokensOf(await raw.next()).filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW');
    expect(rows.map((r) => (r as unknown as { values: unknown[] }).values)).toEqual([[42]]);
    expect(h.tw.warden.metrics.cancelsTotal.get({ protocol: 'tds', result: 'forwarded' })).toBeGreaterThan(0);
    raw.socket.destroy();
  });
});

describe('login-only encryption (ENCRYPT_OFF), with plaintext tokens refused', () => {
  let strict: TdsHarness;
  beforeAll(async () => {
    strict = await startTdsHarness();
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('reads LOGIN7 through TLS in PRELOGIN packets, then serves the session in plaintext', async () => {
    const raw = await rawConnect(strict.port);
    raw.send(PACKET_TYPE.PRELOGIN, encodePrelogin({ version: { major: 1, minor: 0, build: 0, subBuild: 0 }, encryption: ENCRYPTION.ENCRYPT_OFF }));
    // The PRELOGIN answer: login-only encryption.
    const answer = await raw.next();
    expect(decodePrelogin(answer.payload).encryption).toBe(ENCRYPTION.ENCRYPT_OFF);
    // The raw client's data listener must not see the handshake: hand the socket to a TLS client.
    raw.socket.removeAllListeners('data');
    const target = { name: 'w', protocol: 'tds' as const, host: 'localhost', port: strict.port, database: 'shop', tls: { mode: 'verify-full' as const, ca: strict.tw.ca }, connectTimeout: 5000 };
    const { secure, adapter } = await connectPreloginTls(raw.socket, target, Date.now() + 5000);
    secure.write(packetize(PACKET_TYPE.LOGIN7, encodeLogin7(login7(await strict.tw.token())), 4096));
    // After LOGIN7 both sides drop TLS: the login response comes in plaintext.
    adapter.detach();
    secure.destroy();
    const plain = await rawConnectOn(raw.socket);
    const tokens = tokensOf(await plain.next());
    expect(tokens.some((t) => t.kind === 'LOGINACK')).toBe(true);
    plain.send(PACKET_TYPE.SQL_BATCH, batch('SELECT COUNT(*) AS n FROM customers'));
    const rows = tokensOf(await plain.next()).filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW');
    expect(rows.map((r) => (r as unknown as { values: unknown[] }).values)).toEqual([[20]]);
    raw.socket.destroy();
  });
});

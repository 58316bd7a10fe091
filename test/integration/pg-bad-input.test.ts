// Malformed input ends only the session that sent it: FATAL 08P01 (when the stream allows a
// reply) and the socket closes, while another session on the same warden keeps working. Also the
// startup-phase rules: nothing may follow SSLRequest before the handshake, GSSENCRequest is
// declined with 'N' and the client can go on.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Backend, Frontend } from '../../protocols/postgres/codes.js';
import { encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { encodeGssEncRequest, encodeSslRequest, encodeStartupMessage } from '../../protocols/postgres/startup-message.js';
import { encodePasswordMessage } from '../../protocols/postgres/password-message.js';
import { closed, errorIn, rawLogin, RawReader, readByte, startTls, tcpConnect, type RawSession } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
let bystander: pg.Client;
beforeAll(async () => {
  w = await startTestWarden();
  bystander = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
  await bystander.connect();
});
afterAll(async () => {
  await bystander?.end();
  await w?.stop();
});
afterEach(async () => {
  // The other session on the same warden is unaffected by whatever the test sent.
  expect((await bystander.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 20 }]);
});

const login = async (): Promise<RawSession> => rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });

function frame(code: number, declaredLength: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(5);
  b[0] = code;
  b.writeInt32BE(declaredLength, 1);
  return Buffer.concat([b, body]);
}

async function fatalAndClose(reader: RawReader): Promise<ReturnType<typeof errorIn>> {
  const msgs = await reader.untilClosed(5000);
  expect(reader.closed).toBe(true);
  return errorIn(msgs);
}

describe('malformed frames after login', () => {
  for (const len of [0, 3, -1]) {
    it(`a declared length of ${len} (< 4): FATAL 08P01 and the socket closes`, async () => {
      const s = await login();
      const before = w.warden.metrics.protocolErrorsTotal.get({ protocol: 'postgres', side: 'client' });
      s.socket.write(frame(Frontend.query, len));
      const err = await fatalAndClose(s.reader);
      expect(err).toMatchObject({ severity: 'FATAL', code: '08P01' });
      expect(err?.message).toMatch(new RegExp(`^invalid frontend message: invalid message length ${len}`));
      // Counted when the session has fully ended (both sockets closed).
      const counted = (): boolean => w.warden.metrics.protocolErrorsTotal.get({ protocol: 'postgres', side: 'client' }) === before + 1;
      for (let i = 0; i < 100 && !counted(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(counted()).toBe(true);
    });
  }

  it('a 2 GB declared length: refused before anything is buffered', async () => {
    const s = await login();
    s.socket.write(frame(Frontend.query, 0x7fffffff, Buffer.from('SELECT 1')));
    const err = await fatalAndClose(s.reader);
    expect(err).toMatchObject({ code: '08P01' });
    expect(err?.message).toMatch(/exceeds the limit/);
  });

  it('a bad frame after good ones in the same write: the good ones are answered first', async () => {
    const s = await login();
    s.socket.write(Buffer.concat([encodeQuery('SELECT 1 AS one'), frame(Frontend.sync, 2)]));
    const msgs = await s.reader.untilClosed(5000);
    expect(errorIn(msgs)).toMatchObject({ code: '08P01' });
    // Whatever the upstream answered before warden cut the session, nothing after the FATAL.
    expect(msgs.at(-1)?.[0]).toBe(Backend.errorResponse);
  });

  it('an unknown message type is the server’s to refuse: its FATAL arrives and the session ends', async () => {
    const s = await login();
    s.socket.write(frame(0x7a /* 'z' */, 4));
    const err = await fatalAndClose(s.reader);
    expect(err).toMatchObject({ severity: 'FATAL', code: '08P01', message: 'invalid frontend message type 122' });
  });

  it('a client that vanishes mid-message leaves warden unharmed', async () => {
    const s = await login();
    s.socket.write(Buffer.concat([frame(Frontend.query, 1000), Buffer.from('SELECT ')]));
    await new Promise((r) => setTimeout(r, 100));
    s.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
  });
});

describe('garbage during startup and login', () => {
  it('an HTTP request instead of a startup packet: FATAL 08P01', async () => {
    const socket = await tcpConnect(w.host, w.port);
    const reader = new RawReader(socket);
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const err = await fatalAndClose(reader);
    expect(err).toMatchObject({ severity: 'FATAL', code: '08P01' });
    expect(err?.message).toMatch(/^invalid startup: invalid startup packet length/);
  });

  it('a startup packet shorter than 8 bytes: FATAL 08P01', async () => {
    const socket = await tcpConnect(w.host, w.port);
    const reader = new RawReader(socket);
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]));
    expect(await fatalAndClose(reader)).toMatchObject({ code: '08P01' });
  });

  it('garbage where the password message belongs: FATAL 08P01, no token check attempted', async () => {
    let socket: net.Socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
    expect((await reader.next())?.[0]).toBe(Backend.authentication);
    socket.write('hello, this is not a password message at all');
    const err = await fatalAndClose(reader);
    expect(err).toMatchObject({ severity: 'FATAL', code: '08P01' });
  });

  it('a message other than a password where the password belongs: FATAL 08P01', async () => {
    let socket: net.Socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
    await reader.next();
    socket.write(encodeQuery('SELECT 1'));
    const err = await fatalAndClose(reader);
    expect(err?.message).toMatch(/expected a password message/);
  });

  it('data after SSLRequest before the TLS handshake is refused (no "S", FATAL 08P01 in plaintext)', async () => {
    const socket = await tcpConnect(w.host, w.port);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write(Buffer.concat([encodeSslRequest(), encodeStartupMessage([['user', 'agent'], ['database', 'shop']])]));
    expect(await closed(socket, 5000)).toBe(true);
    const all = Buffer.concat(received);
    expect(all[0]).toBe(Backend.errorResponse); // not 'S': no TLS was started
    expect(errorIn([all])).toMatchObject({ severity: 'FATAL', code: '08P01', message: 'invalid startup: data sent after SSLRequest before the TLS handshake' });
  });

  it('GSSENCRequest is answered "N", and the client goes on with SSLRequest and a normal login', async () => {
    let socket: net.Socket = await tcpConnect(w.host, w.port);
    socket.write(encodeGssEncRequest());
    expect(await readByte(socket)).toBe(0x4e);
    socket.resume();
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
    expect((await reader.next())?.[0]).toBe(Backend.authentication);
    socket.write(encodePasswordMessage(await w.token()));
    expect((await reader.until(Backend.readyForQuery)).at(-1)?.[0]).toBe(Backend.readyForQuery);
    socket.write(encodeQuery('SELECT 7'));
    const reply = await reader.until(Backend.readyForQuery);
    expect(reply.map((m) => String.fromCharCode(m[0] as number)).join('')).toBe('TDCZ');
    socket.destroy();
  });

  it('a client that stalls in the startup phase or the TLS handshake is cut at the login timeout', async () => {
    const quick = await startTestWarden({ mutate: (c) => (c.sessions.loginTimeout = 400) });
    try {
      const silent = await tcpConnect(quick.host, quick.port);
      const silentReader = new RawReader(silent);
      const started = Date.now();
      expect(await fatalAndClose(silentReader)).toMatchObject({ code: '08P01', message: 'login timed out' });
      expect(Date.now() - started).toBeLessThan(3000);
      // Half a TLS handshake: SSLRequest answered 'S', then nothing.
      const half = await tcpConnect(quick.host, quick.port);
      half.write(encodeSslRequest());
      expect(await readByte(half)).toBe(0x53);
      half.resume();
      expect(await closed(half, 3000)).toBe(true);
      // Startup sent, password never: the token wait is bounded too.
      let slow: net.Socket = await tcpConnect(quick.host, quick.port);
      slow.write(encodeSslRequest());
      expect(await readByte(slow)).toBe(0x53);
      slow = await startTls(slow, quick.ca);
      const slowReader = new RawReader(slow);
      slow.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop']]));
      const msgs = await slowReader.untilClosed(3000);
      expect(errorIn(msgs)).toMatchObject({ code: '08P01', message: 'login timed out' });
      expect(quick.warden.pgListener?.openSessions).toBe(0);
    } finally {
      await quick.stop();
    }
  });

  it('a second SSLRequest inside TLS is refused', async () => {
    let socket: net.Socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeSslRequest());
    expect(await fatalAndClose(reader)).toMatchObject({ code: '08P01', message: 'invalid startup: SSLRequest received twice' });
  });
});

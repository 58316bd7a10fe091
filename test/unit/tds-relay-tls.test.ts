// TLS inside PRELOGIN packets, warden's adapter on both ends of a real TCP connection with Node's
// TLS engine: flights wrapped one PRELOGIN message each way, bare records after Finished, a
// login-only switch back to plaintext, and the flight tracker over split points.
import net from 'node:net';
import type tls from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKET_TYPE } from '../../protocols/tds/index.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';
import { TlsFlightTracker } from '../../src/tds/tls-flight.js';
import { acceptPreloginTls, acceptStrictTls, connectPreloginTls, connectStrictTls, tdsServerTls, type TdsServerTls } from '../../src/tds/tls.js';
import type { TdsTargetConfig } from '../../src/config/types.js';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';

let ctx: TdsServerTls;
let cert: string;

beforeAll(async () => {
  const pair = await selfSignedCertificate('localhost');
  cert = pair.cert;
  ctx = tdsServerTls(pair);
});

function target(mode: TdsTargetConfig['tls']['mode'], ca?: string): TdsTargetConfig {
  return {
    name: 't',
    protocol: 'tds',
    host: 'localhost',
    port: 1,
    database: 'd',
    tls: { mode, ...(ca ? { ca } : {}) },
    connectTimeout: 5000,
  };
}

/** A TCP connection on loopback: both raw sockets, and every byte the server side received. */
async function tcpPair(): Promise<{ client: net.Socket; server: net.Socket; received: Buffer[]; close(): void }> {
  const received: Buffer[] = [];
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  const s = await accepted;
  s.on('data', (c: Buffer) => received.push(Buffer.from(c)));
  s.pause();
  return {
    client,
    server: s,
    received,
    close: () => {
      client.destroy();
      s.destroy();
      server.close();
    },
  };
}

function readSome(s: tls.TLSSocket | net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer): void => {
      parts.push(c);
      have += c.length;
      if (have >= n) {
        s.off('data', onData);
        s.pause();
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
  });
}

describe('TLS inside PRELOGIN between two warden adapters', () => {
  it('wraps each flight in one PRELOGIN message, then carries bare records both ways', async () => {
    const pair = await tcpPair();
    try {
      const deadline = Date.now() + 5000;
      const [srv, cli] = await Promise.all([acceptPreloginTls(pair.server, ctx, deadline), connectPreloginTls(pair.client, target('verify-full', cert), deadline)]);
      expect(srv.info.protocol).toBe('TLSv1.2');
      expect(cli.info.protocol).toBe('TLSv1.2');
      expect(srv.adapter.handshakeDone).toBe(true);
      const seen = Buffer.concat(pair.received);
      // ClientHello in one PRELOGIN message, then ClientKeyExchange/CCS/Finished in another.
      expect(seen[0]).toBe(PACKET_TYPE.PRELOGIN);
      const first = seen.readUInt16BE(2);
      expect(seen[first]).toBe(PACKET_TYPE.PRELOGIN);
      expect(seen[1]! & 1).toBe(1);

      const big = Buffer.alloc(200_000, 7);
      const got = readSome(srv.secure, big.length);
      cli.secure.write(big);
      expect((await got).equals(big)).toBe(true);
      const back = readSome(cli.secure, 5);
      srv.secure.write('hello');
      expect((await back).toString()).toBe('hello');
      // After the handshake the client's records travel bare (type 0x17 application data).
      const tail = Buffer.concat(pair.received).subarray(seen.length);
      expect(tail[0]).toBe(0x17);
    } finally {
      pair.close();
    }
  });

  it('switches back to plaintext after a login-only exchange', async () => {
    const pair = await tcpPair();
    try {
      const deadline = Date.now() + 5000;
      const [srv, cli] = await Promise.all([acceptPreloginTls(pair.server, ctx, deadline), connectPreloginTls(pair.client, target('require'), deadline)]);
      const login = readSome(srv.secure, 6);
      cli.secure.write('LOGIN7');
      expect((await login).toString()).toBe('LOGIN7');
      srv.adapter.detach();
      srv.secure.destroy();
      // the client goes back to its raw socket too (as FreeTDS does after ENCRYPT_OFF)
      cli.adapter.detach();
      cli.secure.destroy();
      const reply = readSome(pair.client, 9);
      pair.server.write('plaintext');
      expect((await reply).toString()).toBe('plaintext');
    } finally {
      pair.close();
    }
  });

  it('refuses a certificate that does not verify', async () => {
    const pair = await tcpPair();
    const other = await selfSignedCertificate('localhost');
    try {
      const deadline = Date.now() + 5000;
      // Node checks the chain once the handshake is complete, so the server side may finish it.
      const srv = acceptPreloginTls(pair.server, ctx, deadline).catch((e: Error) => e);
      await expect(connectPreloginTls(pair.client, target('verify-full', other.cert), deadline)).rejects.toThrow(/certificate|self.signed/i);
      pair.client.destroy();
      await srv;
    } finally {
      pair.close();
    }
  });
});

describe('TDS 8.0 strict', () => {
  it('negotiates TLS first with ALPN tds/8.0', async () => {
    const pair = await tcpPair();
    try {
      pair.server.resume();
      const deadline = Date.now() + 5000;
      const [srv, cli] = await Promise.all([acceptStrictTls(pair.server, ctx, deadline), connectStrictTls(pair.client, target('verify-full', cert), deadline)]);
      expect(srv.info.alpn).toBe('tds/8.0');
      expect(cli.info.alpn).toBe('tds/8.0');
      expect(srv.info.protocol).toBe('TLSv1.3');
      const got = readSome(srv.secure, 3);
      cli.secure.write('abc');
      expect((await got).toString()).toBe('abc');
    } finally {
      pair.close();
    }
  });
});

describe('TlsFlightTracker', () => {
  /** The TLS payload of each PRELOGIN message of a capture, per direction (flights as a real client and Babelfish sent them). */
  function flights(fromClient: boolean): Buffer[] {
    const conn = loadCapture(CAPTURES.tediousTls)[0]!;
    return (fromClient ? conn.client : conn.server).filter((m) => m.type === PACKET_TYPE.PRELOGIN && m.payload[0] === 0x16).map((m) => m.payload);
  }

  it('ends a flight exactly where the captured PRELOGIN messages end, at every split point', () => {
    for (const fromClient of [true, false]) {
      const list = flights(fromClient);
      expect(list.length).toBeGreaterThan(0);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 6 }), (cuts) => {
          const t = new TlsFlightTracker();
          list.forEach((flight, i) => {
            const points = [...new Set(cuts.map((c) => c % flight.length))].sort((a, b) => a - b);
            let at = 0;
            for (const p of [...points, flight.length]) {
              if (p <= at) continue;
              t.push(flight.subarray(at, p));
              at = p;
              expect(t.flightEnded).toBe(p === flight.length);
            }
            expect(t.finished).toBe(i === list.length - 1 && list.length > 1);
          });
        }),
        { numRuns: 200 },
      );
    }
  });

  it('refuses bytes that are not TLS records', () => {
    expect(() => new TlsFlightTracker().push(Buffer.from('0401002a00000100', 'hex'))).toThrow(/not a TLS record/);
  });
});

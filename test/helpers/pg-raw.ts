// A raw PostgreSQL frontend over a socket, for tests that must send exactly the bytes they choose
// (malformed frames, forged CancelRequests, a client that stops reading) and read exactly what
// comes back. Framing uses splitMessages-style reading of the typed stream; nothing is hidden.
import net from 'node:net';
import tls from 'node:tls';
import { decodeNotice, type Notice } from '../../protocols/postgres/error-response.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodePasswordMessage } from '../../protocols/postgres/password-message.js';
import { decodeBackendKeyData, type BackendKeyData } from '../../protocols/postgres/session-messages.js';
import { encodeSslRequest, encodeStartupMessage } from '../../protocols/postgres/startup-message.js';

/** Reads typed messages from a socket as they arrive; `next()` waits for one. */
export class RawReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private waiters: ((m: Buffer | undefined) => void)[] = [];
  closed = false;
  /** Every byte received, in order (for tests that compare raw output). */
  received = 0;

  constructor(readonly socket: net.Socket, initial: Buffer = Buffer.alloc(0)) {
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
    socket.on('error', () => undefined);
    if (initial.length) this.push(initial);
  }

  private push(chunk: Buffer): void {
    this.received += chunk.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 5) {
      const total = 1 + this.buf.readInt32BE(1);
      if (this.buf.length < total) break;
      const msg = this.buf.subarray(0, total);
      this.buf = this.buf.subarray(total);
      const w = this.waiters.shift();
      if (w) w(msg);
      else this.queue.push(msg);
    }
  }

  /** The next message, or undefined when the socket closed first. Rejects after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<Buffer | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (m: Buffer | undefined): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push(done);
    });
  }

  /** Messages up to and including the first of type `code` (or up to the close). */
  async until(code: number, timeoutMs = 10_000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!m) return out;
      out.push(m);
      if (m[0] === code) return out;
    }
  }

  /** Waits for the socket to close; returns the messages that came before. */
  async untilClosed(timeoutMs = 10_000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!m) return out;
      out.push(m);
    }
  }
}

export interface RawSession {
  socket: net.Socket;
  reader: RawReader;
  key: BackendKeyData;
  /** Messages of the login reply (AuthenticationOk … ReadyForQuery). */
  greeting: Buffer[];
}

export interface RawConnectOptions {
  host: string;
  port: number;
  /** PEM CA; when set the connection negotiates TLS (SSLRequest), else it stays plaintext. */
  ca?: string;
  user?: string;
  database: string;
  password: string;
  params?: Record<string, string>;
}

export function tcpConnect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Reads exactly one byte (the SSLRequest / GSSENCRequest answer). */
export function readByte(socket: net.Socket, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer byte')), timeoutMs);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      if (chunk.length !== 1) reject(new Error(`expected one byte, got ${chunk.length}: ${chunk.toString('hex').slice(0, 80)}`));
      else resolve(chunk[0] as number);
    });
  });
}

export function startTls(socket: net.Socket, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, ca, servername: 'localhost' }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Connects, optionally over TLS, sends the startup packet and the token, reads up to ReadyForQuery. */
export async function rawLogin(o: RawConnectOptions): Promise<RawSession> {
  let socket: net.Socket = await tcpConnect(o.host, o.port);
  if (o.ca) {
    socket.write(encodeSslRequest());
    const answer = await readByte(socket);
    if (answer !== 0x53) throw new Error(`SSLRequest answered 0x${answer.toString(16)}`);
    socket = await startTls(socket, o.ca);
  }
  const reader = new RawReader(socket);
  socket.write(encodeStartupMessage([['user', o.user ?? 'agent'], ['database', o.database], ...Object.entries(o.params ?? {})]));
  const auth = await reader.next();
  if (!auth || auth[0] !== Backend.authentication) throw new Error(`expected an authentication request, got ${describe(auth)}`);
  socket.write(encodePasswordMessage(o.password));
  const greeting = await reader.until(Backend.readyForQuery);
  const last = greeting.at(-1);
  if (!last || last[0] !== Backend.readyForQuery) throw new Error(`login failed: ${greeting.map(describe).join(', ')}`);
  const keyMsg = greeting.find((m) => m[0] === Backend.backendKeyData);
  if (!keyMsg) throw new Error('no BackendKeyData');
  return { socket, reader, key: decodeBackendKeyData(keyMsg), greeting };
}

/** A short description of a message for assertion messages. */
export function describe(m: Buffer | undefined): string {
  if (!m) return '(closed)';
  if (m[0] === Backend.errorResponse || m[0] === Backend.noticeResponse) {
    const n = decodeNotice(m);
    return `${String.fromCharCode(m[0])} ${n.severity} ${n.code} ${n.message}`;
  }
  return String.fromCharCode(m[0] ?? 0x3f);
}

/** The ErrorResponse among `msgs`, decoded. */
export function errorIn(msgs: readonly Buffer[]): Notice | undefined {
  const e = msgs.find((m) => m[0] === Backend.errorResponse);
  return e ? decodeNotice(e) : undefined;
}

/** Resolves when the socket has closed (or after `timeoutMs`, with false). */
export function closed(socket: net.Socket, timeoutMs = 5000): Promise<boolean> {
  if (socket.destroyed || socket.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

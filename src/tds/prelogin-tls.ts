// The TLS handshake of TDS 7.x travels inside PRELOGIN packets ([MS-TDS] 3.2.5.2 client,
// 3.3.5.2 server): each side wraps a whole handshake flight into one PRELOGIN message (packet
// type 0x12) and unwraps the peer's. Once a side's Finished has gone by, its TLS records travel
// bare on the socket. This Duplex sits between a TCP socket and Node's TLS engine and does that
// wrapping in both directions, for warden as the server (agents) and as the client (targets):
//
//   raw socket ⇄ [ PRELOGIN packets ⇄ TLS records ] ⇄ tls.TLSSocket ⇄ TDS messages in clear
//
// Flights are found with TlsFlightTracker (TLS 1.2 only, as SQL Server offers inside PRELOGIN).
// `detach()` ends the adapter without touching the socket: after a login-only handshake
// (ENCRYPT_OFF) the session continues in plaintext on the raw socket.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { DEFAULT_PACKET_SIZE, MAX_PACKET_SIZE, MessageAssembler, PACKET_STATUS, PACKET_TYPE, packetize } from '../../protocols/tds/index.js';
import { ProtocolError } from '../../protocols/errors.js';
import { TlsFlightTracker, TlsRecordError } from './tls-flight.js';

type Mode = 'wrapped' | 'raw' | 'detached';

/** A handshake flight is a few KiB (certificate chains); nothing legitimate comes near this. */
const MAX_HANDSHAKE_MESSAGE = 256 * 1024;

export interface PreloginTlsOptions {
  /** Packet types that may carry the peer's handshake: PRELOGIN, and also TABULAR_RESULT when reading a server. */
  readonly acceptTypes: readonly number[];
  /** Packet size for the PRELOGIN packets written (default 4096, the size before LOGIN7). */
  readonly packetSize?: number;
}

export class PreloginTlsAdapter extends Duplex {
  private inMode: Mode = 'wrapped';
  private outMode: Mode = 'wrapped';
  private readonly assembler = new MessageAssembler({ packetSize: MAX_PACKET_SIZE, maxMessageSize: MAX_HANDSHAKE_MESSAGE });
  private readonly inTracker = new TlsFlightTracker();
  private readonly outTracker = new TlsFlightTracker();
  private pendingOut: Buffer[] = [];
  private readPaused = false;
  private readonly acceptTypes: ReadonlySet<number>;
  private readonly packetSize: number;
  /** The socket's listeners, removed on detach. */
  private readonly socketHandlers: Array<[string, (...args: any[]) => void]>; // eslint-disable-line @typescript-eslint/no-explicit-any

  constructor(
    readonly raw: Socket,
    opts: PreloginTlsOptions,
  ) {
    super({ allowHalfOpen: false });
    this.acceptTypes = new Set(opts.acceptTypes);
    this.packetSize = opts.packetSize ?? DEFAULT_PACKET_SIZE;
    const onData = (chunk: Buffer): void => this.onRaw(chunk);
    const onEnd = (): void => {
      this.push(null);
    };
    const onClose = (): void => {
      if (!this.destroyed) this.destroy();
    };
    const onError = (err: Error): void => {
      this.destroy(err);
    };
    this.socketHandlers = [
      ['data', onData],
      ['end', onEnd],
      ['close', onClose],
      ['error', onError],
    ];
    for (const [event, fn] of this.socketHandlers) raw.on(event, fn);
    raw.resume();
  }

  /** True once both directions carry bare TLS records. */
  get handshakeDone(): boolean {
    return this.inMode === 'raw' && this.outMode === 'raw';
  }

  /** Stops using the socket: later reads and writes of the TLS engine go nowhere. */
  detach(): void {
    if (this.inMode === 'detached') return;
    this.inMode = 'detached';
    this.outMode = 'detached';
    for (const [event, fn] of this.socketHandlers) this.raw.off(event, fn);
    this.raw.pause();
  }

  private onRaw(chunk: Buffer): void {
    if (this.inMode === 'raw') {
      if (!this.push(chunk)) this.pauseRaw();
      return;
    }
    if (this.inMode !== 'wrapped') return;
    try {
      this.assembler.push(chunk);
      for (let p = this.assembler.nextPacket(); p; p = this.assembler.nextPacket()) {
        if (!this.acceptTypes.has(p.header.type)) {
          throw new ProtocolError(`packet type 0x${p.header.type.toString(16)} during the TLS handshake (expected PRELOGIN)`);
        }
        this.inTracker.push(p.payload);
        this.push(p.payload);
        if ((p.header.status & PACKET_STATUS.EOM) !== 0 && this.inTracker.finished) {
          // The peer's Finished has arrived: from here its records come bare.
          this.inMode = 'raw';
          if (this.assembler.buffered > 0) {
            throw new ProtocolError('data after the last handshake message before the handshake completed');
          }
          return;
        }
      }
    } catch (err) {
      this.destroy(err instanceof TlsRecordError ? new ProtocolError(`invalid TLS handshake: ${err.message}`) : (err as Error));
    }
  }

  private pauseRaw(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.raw.pause();
  }

  override _read(): void {
    if (this.readPaused && this.inMode !== 'detached') {
      this.readPaused = false;
      this.raw.resume();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.outMode === 'detached' || this.raw.destroyed) {
      cb();
      return;
    }
    if (this.outMode === 'raw') {
      if (this.raw.write(chunk)) cb();
      else this.raw.once('drain', () => cb());
      return;
    }
    try {
      this.outTracker.push(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.pendingOut.push(chunk);
    if (!this.outTracker.flightEnded) {
      cb();
      return;
    }
    const flight = this.pendingOut.length === 1 ? (this.pendingOut[0] as Buffer) : Buffer.concat(this.pendingOut);
    this.pendingOut = [];
    if (this.outTracker.finished) this.outMode = 'raw';
    if (this.raw.write(packetize(PACKET_TYPE.PRELOGIN, flight, this.packetSize))) cb();
    else this.raw.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.outMode === 'raw' && !this.raw.destroyed) this.raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.inMode !== 'detached') {
      for (const [event, fn] of this.socketHandlers) this.raw.off(event, fn);
      this.raw.destroy();
    }
    cb(err);
  }
}

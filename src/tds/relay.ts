// The steady state of a TDS session: packets flow both ways, framed by the codec's
// MessageAssembler, each direction with backpressure (a full destination pauses the source).
//
// client → target: a request (SQLBatch, RPC, TransMgr) is gathered whole, because it must be
// classified, judged and recorded before any of it leaves (the gate order); the handler then
// forwards its packets as they came, or answers it itself (a refusal). ATTENTION goes straight
// on; BULK_LOAD data streams through after an allowed INSERT BULK. Anything else is a protocol
// error that ends only this session.
//
// target → client: every packet goes through a ResponseStream (response-stream.ts), which feeds
// the codec's TokenStreamParser (bounded, incremental, resumable across packets) so the handler
// sees each token as it completes, and forwards the packets unchanged — or re-packetises the rest
// of a message once the handler rewrites a token. TDS is
// strictly request → response, so warden keeps a queue of what the client is owed: target
// responses, its own answers (sent when every response before them is complete), and
// attentions (owed until a DONE with the ATTN bit).
import type { Duplex } from 'node:stream';
import {
  DONE_STATUS,
  ENVCHANGE_TYPE,
  MessageAssembler,
  PACKET_STATUS,
  PACKET_TYPE,
  TOKEN,
  type Packet,
  type ParsedToken,
} from '../../protocols/tds/index.js';
import { ProtocolError } from '../../protocols/errors.js';
import { OutputBatch } from '../pg/output-batch.js';
import { errorMessage, internalError, protocolViolation, type TdsErrorSpec } from './errors.js';
import { ResponseStream } from './response-stream.js';

export type RelayEndReason =
  | { kind: 'client-disconnect' }
  | { kind: 'upstream-disconnect' }
  | { kind: 'protocol-error'; side: 'client' | 'upstream'; message: string }
  | { kind: 'terminated'; reason: string };

/** A whole client request. */
export interface TdsRequest {
  readonly type: number;
  /** The joined payload (decode it; do not forward it). */
  readonly payload: Buffer;
  /** The packets as they came (forward these). */
  readonly packets: readonly Buffer[];
  readonly resetConnection: boolean;
}

/** What a request handler does with a request. */
export interface RequestOutcome {
  /** Send the request's own packets to the target. */
  forward(): void;
  /** Answer it with warden's own message (whole packets) instead. */
  respond(message: Buffer): void;
}

export interface TdsFlowHandler {
  /** A whole request: call `out.forward()` or `out.respond()` exactly once; return a Promise to hold the client's stream until then. */
  onRequest(req: TdsRequest, out: RequestOutcome): void | Promise<unknown>;
  /** The client sent ATTENTION (forwarded already). */
  onAttention(): void;
  /** May a BULK_LOAD message go through now (an allowed INSERT BULK came before)? */
  bulkLoadAllowed(): boolean;
  /** One token of the target's response, as soon as it is complete; return bytes to replace it. */
  onToken(t: ParsedToken): Buffer | undefined | void;
  /** True while onToken may replace tokens (the relay then holds packets until their tokens are complete). */
  rewriting(): boolean;
  /** The target finished its response to one forwarded request. */
  onResponseEnd(): void;
}

export interface TdsRelayOptions {
  tdsVersion: number;
  packetSize: number;
  spid: number;
  /** Cap on one request message. */
  maxRequestBytes: number;
  /** Cap on one token of a response. */
  maxTokenBytes: number;
  onEnd(reason: RelayEndReason): void;
  onBytes?(direction: 'client_to_upstream' | 'upstream_to_client', n: number): void;
  onHandlerError?(side: 'client' | 'upstream', err: unknown): void;
}

type Owed = { k: 'response' } | { k: 'answer'; message: Buffer } | { k: 'attention' };

export class TdsRelay {
  private readonly fromClient: MessageAssembler;
  private readonly fromUpstream: MessageAssembler;
  private readonly responses: ResponseStream;
  private readonly toUpstream = new OutputBatch();
  private readonly toClient = new OutputBatch();
  private readonly owed: Owed[] = [];
  /** Packets of the request being gathered. */
  private gathering: Packet[] = [];
  private gatheredBytes = 0;
  /** A bulk load being streamed through. */
  private bulk = false;
  /** The client's stream waits for the handler. */
  private suspended: Promise<unknown> | undefined;
  /** A response message is partly sent to the client. */
  private midResponse = false;
  private attnSeen = false;
  private clientBackpressured = false;
  private upstreamBackpressured = false;
  private ended: RelayEndReason | undefined;
  private closedSockets = 0;
  private endWhenIdle: string | undefined;
  /** The next request is answered with this error, then the session ends (token expiry). */
  private refuseNext: TdsErrorSpec | undefined;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly handler: TdsFlowHandler,
    private readonly opts: TdsRelayOptions,
  ) {
    this.fromClient = new MessageAssembler({ packetSize: opts.packetSize, maxMessageSize: opts.maxRequestBytes });
    this.fromUpstream = new MessageAssembler({ packetSize: opts.packetSize, maxMessageSize: opts.maxRequestBytes });
    this.responses = new ResponseStream({
      tdsVersion: opts.tdsVersion,
      packetSize: opts.packetSize,
      maxTokenBytes: opts.maxTokenBytes,
      onToken: (t) => this.onToken(t),
      rewriting: () => handler.rewriting(),
    });
  }

  /** True when the target owes nothing and no request is being gathered or judged. */
  get idle(): boolean {
    return this.owed.length === 0 && this.gathering.length === 0 && !this.suspended && !this.bulk && !this.midResponse;
  }

  start(): void {
    const c = this.client;
    const u = this.upstream;
    c.on('data', (chunk: Buffer) => this.onClientData(chunk));
    u.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    c.on('end', () => this.clientGone());
    c.on('error', () => this.clientGone());
    c.on('close', () => this.socketClosed('client'));
    u.on('end', () => this.upstreamGone());
    u.on('error', () => this.upstreamGone());
    u.on('close', () => this.socketClosed('upstream'));
    c.on('drain', () => this.drained('client'));
    u.on('drain', () => this.drained('upstream'));
    c.resume();
    u.resume();
  }

  // client → target ------------------------------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.ended) return;
    this.opts.onBytes?.('client_to_upstream', chunk.length);
    try {
      this.fromClient.push(chunk);
    } catch (err) {
      this.protocolError('client', err);
      return;
    }
    this.pumpClient();
  }

  /** Handles the client's packets until they run out or a request suspends the stream. */
  private pumpClient(): void {
    try {
      while (!this.suspended && !this.ended) {
        const p = this.fromClient.nextPacket();
        if (!p) break;
        this.clientPacket(p);
      }
    } catch (err) {
      this.toUpstream.clear();
      this.protocolError('client', err);
      return;
    }
    this.flushUpstream();
    this.flushClient();
    if (this.suspended) this.client.pause();
  }

  private clientPacket(p: Packet): void {
    const { type, status } = p.header;
    const eom = (status & PACKET_STATUS.EOM) !== 0;
    if (this.bulk) {
      if (type !== PACKET_TYPE.BULK_LOAD) throw new ProtocolError(`packet type 0x${type.toString(16)} inside a bulk load`);
      this.toUpstream.add(p.bytes, 0, p.bytes.length);
      if (eom) {
        this.bulk = false;
        this.owed.push({ k: 'response' });
      }
      return;
    }
    switch (type) {
      case PACKET_TYPE.ATTENTION:
        if (this.gathering.length > 0) throw new ProtocolError('ATTENTION inside a request');
        this.toUpstream.add(p.bytes, 0, p.bytes.length);
        this.owed.push({ k: 'attention' });
        this.handler.onAttention();
        return;
      case PACKET_TYPE.BULK_LOAD:
        if (this.gathering.length > 0) throw new ProtocolError('BULK_LOAD inside a request');
        if (!this.handler.bulkLoadAllowed()) throw new ProtocolError('bulk load data without an allowed INSERT BULK before it');
        this.toUpstream.add(p.bytes, 0, p.bytes.length);
        if (eom) this.owed.push({ k: 'response' });
        else this.bulk = true;
        return;
      case PACKET_TYPE.SQL_BATCH:
      case PACKET_TYPE.RPC:
      case PACKET_TYPE.TRANSACTION_MANAGER:
        break;
      default:
        throw new ProtocolError(`packet type 0x${type.toString(16)} is not a request`);
    }
    const first = this.gathering[0];
    if (first && first.header.type !== type) throw new ProtocolError(`packet type 0x${type.toString(16)} inside a request of type 0x${first.header.type.toString(16)}`);
    this.gathering.push(p);
    this.gatheredBytes += p.payload.length;
    if (this.gatheredBytes > this.opts.maxRequestBytes) throw new ProtocolError(`request exceeds ${this.opts.maxRequestBytes} bytes`);
    if (!eom) return;
    const packets = this.gathering;
    this.gathering = [];
    this.gatheredBytes = 0;
    // The client abandoned the request (IGNORE with EOM): the server would discard it; so does warden.
    if ((status & PACKET_STATUS.IGNORE) !== 0) return;
    this.request(packets);
  }

  private request(packets: Packet[]): void {
    const head = packets[0] as Packet;
    const payload = packets.length === 1 ? head.payload : Buffer.concat(packets.map((x) => x.payload));
    const req: TdsRequest = {
      type: head.header.type,
      payload,
      packets: packets.map((x) => x.bytes),
      resetConnection: (head.header.status & (PACKET_STATUS.RESET_CONNECTION | PACKET_STATUS.RESET_CONNECTION_SKIP_TRAN)) !== 0,
    };
    if (this.refuseNext) {
      const spec = this.refuseNext;
      this.answer(errorMessage([spec], this.errorOptions(req.type)));
      this.flushClient();
      this.finish({ kind: 'terminated', reason: spec.message }, undefined);
      return;
    }
    let decided = false;
    const out: RequestOutcome = {
      forward: () => {
        if (decided) throw new Error('request decided twice');
        decided = true;
        for (const b of req.packets) this.toUpstream.add(b, 0, b.length);
        this.owed.push({ k: 'response' });
      },
      respond: (message) => {
        if (decided) throw new Error('request decided twice');
        decided = true;
        this.answer(message);
      },
    };
    const pending = this.handler.onRequest(req, out);
    if (pending instanceof Promise) {
      this.suspended = pending;
      pending.then(
        () => this.resumeClient(),
        (err: unknown) => {
          this.opts.onHandlerError?.('client', err);
          this.finish({ kind: 'terminated', reason: `internal error: ${err instanceof Error ? err.message : String(err)}` }, internalError());
        },
      );
    }
  }

  private resumeClient(): void {
    this.suspended = undefined;
    if (this.ended) return;
    this.pumpClient();
    if (!this.suspended && !this.clientBackpressured && !this.ended) this.client.resume();
  }

  /** Warden's own answer: sent now if nothing is owed before it, else when its turn comes. */
  private answer(message: Buffer): void {
    if (this.owed.length === 0 && !this.midResponse) this.toClient.push(message);
    else this.owed.push({ k: 'answer', message });
  }

  /** The options for an error message to the client (DONEPROC after an RPC). */
  errorOptions(requestType: number): { tdsVersion: number; packetSize: number; spid: number; done: 'DONE' | 'DONEPROC' } {
    return { tdsVersion: this.responses.tdsVersion, packetSize: this.opts.packetSize, spid: this.opts.spid, done: requestType === PACKET_TYPE.RPC ? 'DONEPROC' : 'DONE' };
  }

  // target → client ------------------------------------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    if (this.ended) return;
    this.opts.onBytes?.('upstream_to_client', chunk.length);
    try {
      this.fromUpstream.push(chunk);
      for (let p = this.fromUpstream.nextPacket(); p; p = this.fromUpstream.nextPacket()) this.upstreamPacket(p);
    } catch (err) {
      this.toClient.clear();
      this.protocolError('upstream', err);
      return;
    }
    this.flushClient();
    if (this.idle && this.endWhenIdle) this.finish({ kind: 'terminated', reason: this.endWhenIdle }, undefined);
  }

  private upstreamPacket(p: Packet): void {
    if (p.header.type !== PACKET_TYPE.TABULAR_RESULT) throw new ProtocolError(`packet type 0x${p.header.type.toString(16)} from the target`);
    const eom = (p.header.status & PACKET_STATUS.EOM) !== 0;
    this.responses.push(p, (b) => this.toClient.push(b));
    this.midResponse = !eom;
    if (eom) this.responseEnded();
  }

  /** Watches for what the relay itself needs (DONE with ATTN, packet size), then asks the handler. */
  private onToken(t: ParsedToken): Buffer | undefined {
    const tok = t.token;
    if ((t.code === TOKEN.DONE || t.code === TOKEN.DONEPROC || t.code === TOKEN.DONEINPROC) && tok && 'status' in tok && (tok.status & DONE_STATUS.ATTN) !== 0) this.attnSeen = true;
    if (tok?.kind === 'ENVCHANGE' && tok.type === ENVCHANGE_TYPE.PACKET_SIZE && tok.format === 'text') this.packetSizeChanged(Number(tok.newValue));
    return this.handler.onToken(t) ?? undefined;
  }

  private packetSizeChanged(size: number): void {
    if (!Number.isInteger(size)) throw new ProtocolError(`invalid packet size ${size} in ENVCHANGE`);
    this.fromClient.setPacketSize(size);
    this.fromUpstream.setPacketSize(size);
    this.responses.setPacketSize(size);
    this.opts.packetSize = size;
  }

  /** A target message ended: settle what it answered, then send warden's answers that are now due. */
  private responseEnded(): void {
    const attn = this.attnSeen;
    this.attnSeen = false;
    if (attn) {
      // DONE_ATTN ends everything owed up to and including the attention.
      const at = this.owed.findIndex((o) => o.k === 'attention');
      for (let i = 0; i <= at; i++) this.settle(this.owed.shift() as Owed);
    } else {
      const head = this.owed[0];
      if (head?.k === 'response') this.settle(this.owed.shift() as Owed);
    }
    while (this.owed[0]?.k === 'answer') this.settle(this.owed.shift() as Owed);
  }

  private settle(o: Owed): void {
    if (o.k === 'response') this.handler.onResponseEnd();
    else if (o.k === 'answer') this.toClient.push(o.message);
  }

  // flushing and backpressure ------------------------------------------------------------------

  private flushUpstream(): void {
    if (!this.toUpstream.flush(this.upstream as never) && !this.upstreamBackpressured) {
      this.upstreamBackpressured = true;
      this.client.pause();
    }
  }

  private flushClient(): void {
    if (!this.toClient.flush(this.client as never) && !this.clientBackpressured) {
      this.clientBackpressured = true;
      this.upstream.pause();
    }
  }

  private drained(side: 'client' | 'upstream'): void {
    if (side === 'client' && this.clientBackpressured) {
      this.clientBackpressured = false;
      if (!this.ended) this.upstream.resume();
    }
    if (side === 'upstream' && this.upstreamBackpressured) {
      this.upstreamBackpressured = false;
      if (!this.suspended && !this.ended) this.client.resume();
    }
  }

  // endings ----------------------------------------------------------------------------------

  private protocolError(side: 'client' | 'upstream', err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : err instanceof Error ? err.message : String(err);
    if (!(err instanceof ProtocolError)) this.opts.onHandlerError?.(side, err);
    this.finish(
      { kind: 'protocol-error', side, message },
      side === 'client' ? protocolViolation(message) : { number: 50002, class: 20, state: 1, message: 'the target sent an invalid message; the session was closed' },
    );
  }

  private clientGone(): void {
    if (this.ended) return;
    this.ended = { kind: 'client-disconnect' };
    this.upstream.destroy();
    this.client.destroy();
  }

  private upstreamGone(): void {
    if (this.ended) {
      this.client.end();
      return;
    }
    this.finish({ kind: 'upstream-disconnect' }, { number: 50003, class: 20, state: 1, message: 'the connection to the target was lost' });
  }

  private socketClosed(side: 'client' | 'upstream'): void {
    this.closedSockets++;
    if (side === 'client' && !this.ended) this.clientGone();
    if (side === 'upstream' && !this.ended) this.upstreamGone();
    if (this.closedSockets === 2) this.opts.onEnd(this.ended ?? { kind: 'client-disconnect' });
  }

  get endReason(): RelayEndReason | undefined {
    return this.ended;
  }

  /** Ends the session once it is idle (shutdown): nothing is cut in half. */
  endAtIdle(reason: string): void {
    if (this.ended) return;
    if (this.idle) this.finish({ kind: 'terminated', reason }, undefined);
    else this.endWhenIdle = reason;
  }

  /** The next request gets `error` and the session ends (e.g. the token expired). */
  refuseNextRequest(error: TdsErrorSpec): void {
    this.refuseNext ??= error;
  }

  /**
   * Closes both sides. The client gets `error` (class 20) when a response is owed and none has
   * started, so it fails the request cleanly rather than finding the socket closed.
   */
  private finish(reason: RelayEndReason, error: TdsErrorSpec | undefined): void {
    if (this.ended) return;
    this.ended = reason;
    const waiting = this.owed.length > 0 || this.gathering.length > 0 || this.suspended !== undefined || reason.kind === 'protocol-error';
    if (error && waiting && !this.midResponse && !this.client.destroyed) {
      this.client.end(errorMessage([error], { tdsVersion: this.responses.tdsVersion, packetSize: this.opts.packetSize, spid: this.opts.spid }));
    } else {
      this.client.end();
    }
    this.upstream.destroy();
    setTimeout(() => {
      this.client.destroy();
      this.upstream.destroy();
    }, 2000).unref();
  }

  /** Closes both sockets at once (shutdown after the grace period). */
  destroy(reason: string): void {
    this.ended ??= { kind: 'terminated', reason };
    this.client.destroy();
    this.upstream.destroy();
  }
}

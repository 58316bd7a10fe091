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
//
// Held requests (approval): the handler may begin the response itself — INFO packets without
// EOM, sent at once — and decide later. The response then goes on as one message: the target's
// packets (or warden's answer) follow with packet ids continuing warden's. While held, the client
// is still read: ATTENTION goes to the handler (which withdraws the request) instead of the
// target, and is acknowledged as SQL Server does, with a DONE_ATTN message after the response;
// a disconnect ends the session (and the hold). Other packets a client sends meanwhile wait.
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
import { AllowanceExceededError, ProtocolError, type ByteAllowance } from '../../protocols/errors.js';
import { OutputBatch } from '../pg/output-batch.js';
import { attentionAck, errorMessage, ignoredRequestAnswer, internalError, outOfMemory, protocolViolation, type TdsErrorSpec } from './errors.js';
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
  /**
   * Hold it: send `start` (packets without EOM, the beginning of the response) now; forward() or
   * respond() follows later and continues that message.
   */
  begin(start: Buffer): void;
}

export interface TdsFlowHandler {
  /** A whole request: call `out.forward()` or `out.respond()` exactly once; return a Promise to hold the client's stream until then. */
  onRequest(req: TdsRequest, out: RequestOutcome): void | Promise<unknown>;
  /** The client sent ATTENTION (forwarded already, unless the request is held: the relay then acknowledges it itself). */
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
  /** Shared by every session: what requests being gathered may hold together. */
  allowance?: ByteAllowance;
  /** Cap on one token of a response. */
  maxTokenBytes: number;
  onEnd(reason: RelayEndReason): void;
  onBytes?(direction: 'client_to_upstream' | 'upstream_to_client', n: number): void;
  onHandlerError?(side: 'client' | 'upstream', err: unknown): void;
}

type Owed = { k: 'response' } | { k: 'answer'; message: Buffer } | { k: 'begin'; message: Buffer } | { k: 'attention' };

/** [MS-TDS] 2.2.3.1: the header's Length (bytes 2-3, big-endian) and PacketID (byte 6). */
const LENGTH_OFFSET = 2;
const PACKET_ID_OFFSET = 6;

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
  /** Bytes of `gathering` taken from the sessions' allowance. */
  private charged = 0;
  /** A bulk load being streamed through. */
  private bulk = false;
  /** The client's stream waits for the handler. */
  private suspended: Promise<unknown> | undefined;
  /** A response message is partly sent to the client. */
  private midResponse = false;
  /** Packets of a message warden began (a held request's INFO) that its continuation must follow. */
  private begun = 0;
  /** The request is held (begin() was called, forward() or respond() not yet); the client's ATTENTION, if any. */
  private held: { attention: Buffer | undefined } | undefined;
  /** Packets the client sent while a request was held, other than ATTENTION: handled after it. */
  private early: Packet[] = [];
  private earlyBytes = 0;
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
    return this.owed.length === 0 && this.gathering.length === 0 && !this.suspended && !this.bulk && !this.midResponse && this.begun === 0;
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
      while (!this.ended) {
        if (this.suspended) {
          // Judging a request: only a held one reads on, for ATTENTION.
          const p = this.held ? this.fromClient.nextPacket() : undefined;
          if (!p) break;
          this.whileHeld(p);
          continue;
        }
        const p = this.early.length > 0 ? this.nextEarly() : this.fromClient.nextPacket();
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
    if (this.suspended && !this.held) this.client.pause();
  }

  /** A packet from the client while its request is held: ATTENTION withdraws it; anything else waits. */
  private whileHeld(p: Packet): void {
    const held = this.held as { attention: Buffer | undefined };
    if (p.header.type === PACKET_TYPE.ATTENTION) {
      if ((p.header.status & PACKET_STATUS.EOM) === 0) throw new ProtocolError('ATTENTION without the end-of-message bit');
      if (held.attention) return;
      held.attention = p.bytes;
      this.handler.onAttention();
      return;
    }
    this.early.push(p);
    this.earlyBytes += p.bytes.length;
    if (this.earlyBytes > this.opts.maxRequestBytes) throw new ProtocolError(`more than ${this.opts.maxRequestBytes} bytes sent while a request was held`);
  }

  private nextEarly(): Packet | undefined {
    const p = this.early.shift();
    if (p) this.earlyBytes -= p.bytes.length;
    return p;
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
        if (!eom) throw new ProtocolError('ATTENTION without the end-of-message bit');
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
    if (!eom) {
      // Packets held until the request is whole count against what all sessions may hold.
      const a = this.opts.allowance;
      if (a) {
        if (!a.take(p.bytes.length)) throw new AllowanceExceededError(p.bytes.length, a.limit);
        this.charged += p.bytes.length;
      }
      return;
    }
    const packets = this.gathering;
    this.gathering = [];
    this.gatheredBytes = 0;
    // What the request's packets hold stays charged while its handler keeps them (a held request).
    const charged = this.charged;
    this.charged = 0;
    // The client abandoned the request (IGNORE with EOM): nothing of it runs, and it is not sent on
    // (warden never forwards a request it has not judged). The client reads an answer as the
    // request's response (tedious waits for one after cancelling a request it had not sent whole):
    // a final DONE, in its turn after what is owed before it.
    if ((status & PACKET_STATUS.IGNORE) !== 0) {
      this.giveBack(charged, undefined);
      this.answer(ignoredRequestAnswer(this.errorOptions(type)));
      this.flushClient();
      return;
    }
    let pending: Promise<unknown> | undefined;
    try {
      pending = this.request(packets);
    } finally {
      this.giveBack(charged, pending);
    }
  }

  /** Gives `bytes` back to the allowance now, or once `pending` (the request's handler) settles. */
  private giveBack(bytes: number, pending: Promise<unknown> | undefined): void {
    const a = this.opts.allowance;
    if (bytes === 0 || !a) return;
    if (pending) {
      const give = (): void => a.give(bytes);
      pending.then(give, give);
    } else {
      a.give(bytes);
    }
  }

  /** Judges and answers or forwards a whole request; a Promise while its handler holds it. */
  private request(packets: Packet[]): Promise<unknown> | undefined {
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
      return undefined;
    }
    let decided = false;
    const decide = (): { attention: Buffer | undefined } | undefined => {
      if (decided) throw new Error('request decided twice');
      decided = true;
      const held = this.held;
      this.held = undefined;
      return held;
    };
    const out: RequestOutcome = {
      forward: () => {
        const held = decide();
        if (this.ended) return;
        for (const b of req.packets) this.toUpstream.add(b, 0, b.length);
        this.owed.push({ k: 'response' });
        if (held?.attention) {
          // The client cancelled just as the request was let through: the target acknowledges it.
          this.toUpstream.add(held.attention, 0, held.attention.length);
          this.owed.push({ k: 'attention' });
        }
      },
      respond: (message) => {
        const held = decide();
        if (this.ended) return;
        this.answer(message);
        if (held?.attention) this.answer(attentionAck(this.errorOptions(req.type)));
      },
      begin: (start) => {
        if (decided || this.held) throw new Error('request held after it was decided');
        if (this.ended) return;
        this.held = { attention: undefined };
        this.owe({ k: 'begin', message: start });
        this.flushClient();
        // Read on while held: an ATTENTION or a disconnect must be seen — including an ATTENTION
        // that came in the same read as the request and waits in the buffer already (no new
        // data event would bring it up). Pumped on the next turn, once the hold is registered.
        this.client.resume();
        setImmediate(() => {
          if (this.held && !this.ended) this.pumpClient();
        });
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
      return pending;
    }
    return undefined;
  }

  private resumeClient(): void {
    this.suspended = undefined;
    if (this.ended) return;
    this.pumpClient();
    // A request warden answered itself (a refused or withdrawn hold) may leave the session idle.
    if (this.idle && this.endWhenIdle) {
      this.finish({ kind: 'terminated', reason: this.endWhenIdle }, undefined);
      return;
    }
    if (!this.suspended && !this.clientBackpressured && !this.ended) this.client.resume();
  }

  /** Warden's own answer: sent now if nothing is owed before it, else when its turn comes. */
  private answer(message: Buffer): void {
    this.owe({ k: 'answer', message });
  }

  private owe(o: Owed): void {
    this.owed.push(o);
    this.sendDue();
  }

  /** Sends warden's own messages at the head of what is owed, once no target message is partly sent. */
  private sendDue(): void {
    for (let head = this.owed[0]; head && !this.midResponse; head = this.owed[0]) {
      if (head.k === 'answer' || (head.k === 'begin' && this.begun === 0)) this.settle(this.owed.shift() as Owed);
      else return;
    }
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
    this.sendDue();
  }

  private settle(o: Owed): void {
    switch (o.k) {
      case 'response':
        // The target's message continued warden's, if warden had begun one.
        this.begun = 0;
        this.handler.onResponseEnd();
        return;
      case 'begin':
        this.toClient.push(o.message);
        this.begun = packetCount(o.message);
        this.responses.continueMessage(this.begun);
        return;
      case 'answer':
        this.toClient.push(this.begun > 0 ? continued(o.message, this.begun) : o.message);
        this.begun = 0;
        this.responses.continueMessage(0);
        return;
      case 'attention':
        return;
    }
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

  /** Gives back what the request being gathered held of the sessions' allowance. */
  private releaseGathered(): void {
    if (this.charged > 0) this.opts.allowance?.give(this.charged);
    this.charged = 0;
  }

  private protocolError(side: 'client' | 'upstream', err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : err instanceof Error ? err.message : String(err);
    if (err instanceof AllowanceExceededError) {
      this.finish({ kind: 'protocol-error', side, message }, outOfMemory(message));
      return;
    }
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
    if (this.closedSockets === 2) {
      this.releaseGathered();
      this.opts.onEnd(this.ended ?? { kind: 'client-disconnect' });
    }
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
      const message = errorMessage([error], { tdsVersion: this.responses.tdsVersion, packetSize: this.opts.packetSize, spid: this.opts.spid });
      this.client.end(this.begun > 0 ? continued(message, this.begun) : message);
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

/** The packets of a whole message, counted by their headers. */
function packetCount(message: Buffer): number {
  let n = 0;
  for (let at = 0; at < message.length; at += message.readUInt16BE(at + LENGTH_OFFSET)) n++;
  return n;
}

/** Warden's own message as the continuation of one whose first `after` packets were sent: packet ids follow on. */
function continued(message: Buffer, after: number): Buffer {
  let id = after + 1;
  for (let at = 0; at < message.length; at += message.readUInt16BE(at + LENGTH_OFFSET)) {
    message[at + PACKET_ID_OFFSET] = id & 0xff;
    id++;
  }
  return message;
}

// The target's response stream on its way to the client, token by token. [MS-TDS] 2.2.3
// (packets), 2.2.4 (token stream).
//
// Packets are fed in order; every token is handed to `onToken` as soon as its last byte has
// arrived (the codec's TokenStreamParser: bounded, incremental, resumable across packets). While
// nothing is rewritten, packets go out exactly as they came (the same bytes, no copy). A token may
// be replaced by returning new bytes from `onToken`: from that token on, the rest of the message
// is re-packetised — full packets of the negotiated size, packet ids continuing, EOM on the last —
// with every other token's bytes unchanged.
//
// To be able to replace a token that straddles packets, the packet holding its start must not
// have left yet: while `rewriting()` says rewrites may come, packets are held back until every
// token that starts in them is complete (at most one token's span plus a packet: bounded by the
// token cap). When it says no, packets leave at once.
//
// A message warden began itself (the INFO of a held statement: packets without EOM) may be
// continued by the target's response: after continueMessage(n) the next message's packets leave
// with ids following warden's n packets (the header's packet id rewritten, nothing else).
import {
  PACKET_HEADER_LENGTH,
  PACKET_STATUS,
  PACKET_TYPE,
  TokenStreamParser,
  encodePacketHeader,
  type Packet,
  type ParsedToken,
} from '../../protocols/tds/index.js';

/** [MS-TDS] 2.2.3.1.5: PacketID, the seventh byte of the header. */
const PACKET_ID_OFFSET = 6;

export interface ResponseStreamOptions {
  tdsVersion: number;
  packetSize: number;
  maxTokenBytes: number;
  /** Each complete token; return replacement bytes (a whole token) to rewrite it. */
  onToken(t: ParsedToken): Buffer | undefined;
  /** True while onToken may rewrite tokens (packets are then held until their tokens are complete). */
  rewriting(): boolean;
}

interface Held {
  packet: Packet;
  /** Message offset of the packet's first payload byte. */
  start: number;
}

export class ResponseStream {
  private readonly parser: TokenStreamParser;
  private packetSize: number;
  /** Packets of the current message not sent yet. */
  private held: Held[] = [];
  /** Message offset of the next payload byte to be fed. */
  private fed = 0;
  /** Message offset up to which bytes have been sent (raw mode). */
  private sent = 0;
  /** The message has a rewritten token: the rest of it is re-packetised from `pending`. */
  private changed = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextPacketId = 1;
  private spid = 0;
  /** Packets warden already sent of the message the next target message continues. */
  private continuing = 0;
  /** The current message continues warden's: every packet id is renumbered. */
  private renumber = false;

  constructor(private readonly opts: ResponseStreamOptions) {
    this.parser = new TokenStreamParser({ tdsVersion: opts.tdsVersion, decodeRows: false, maxTokenLength: opts.maxTokenBytes });
    this.packetSize = opts.packetSize;
  }

  get tdsVersion(): number {
    return this.parser.tdsVersion;
  }

  setPacketSize(size: number): void {
    this.packetSize = size;
  }

  /** True between the first and the last packet of a message. */
  get midMessage(): boolean {
    return this.fed > 0;
  }

  /** Feeds one packet of the target's response; `send` receives what goes to the client now. */
  push(p: Packet, send: (b: Buffer) => void): void {
    this.spid = p.header.spid;
    if (this.fed === 0 && this.continuing > 0) {
      this.nextPacketId = (this.continuing + 1) & 0xff;
      this.renumber = true;
      this.continuing = 0;
    }
    const start = this.fed;
    this.fed += p.payload.length;
    if (!this.changed) this.held.push({ packet: p, start });
    this.parser.feed(p.payload);
    for (let t = this.parser.next(); t; t = this.parser.next()) {
      const replacement = this.opts.onToken(t);
      if (replacement !== undefined && !this.changed) this.beginRewrite(t.start);
      if (this.changed) this.append(replacement ?? t.bytes);
    }
    const eom = (p.header.status & PACKET_STATUS.EOM) !== 0;
    if (eom) this.parser.endOfMessage();
    if (this.changed) {
      this.flushFull(send, eom);
    } else {
      // Everything before the next unfinished token may leave (all of it when nothing is rewritten).
      const safe = eom || !this.opts.rewriting() ? this.fed : this.parser.offset;
      while (this.held.length > 0) {
        const h = this.held[0] as Held;
        if (h.start + h.packet.payload.length > safe) break;
        this.held.shift();
        this.sent = h.start + h.packet.payload.length;
        if (this.renumber) {
          h.packet.bytes[PACKET_ID_OFFSET] = this.nextPacketId;
          this.nextPacketId = (this.nextPacketId + 1) & 0xff;
        } else {
          this.nextPacketId = (h.packet.header.packetId + 1) & 0xff;
        }
        send(h.packet.bytes);
      }
    }
    if (eom) this.endMessage();
  }

  /** The next message of the target continues one warden began with `packets` packets. */
  continueMessage(packets: number): void {
    this.continuing = packets;
  }

  /** Switches the message to re-packetising: the held bytes before `at` go into `pending`. */
  private beginRewrite(at: number): void {
    if (at < this.sent) throw new Error('internal: a token whose packet has left cannot be rewritten');
    this.changed = true;
    for (const h of this.held) {
      const from = Math.max(this.sent, h.start);
      const to = Math.min(at, h.start + h.packet.payload.length);
      if (to > from) this.append(h.packet.payload.subarray(from - h.start, to - h.start));
    }
    this.held = [];
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    this.pending.push(b);
    this.pendingBytes += b.length;
  }

  /** Sends full packets from `pending`; at the end of the message, the rest with EOM. */
  private flushFull(send: (b: Buffer) => void, eom: boolean): void {
    const chunk = this.packetSize - PACKET_HEADER_LENGTH;
    // Keep at least one byte back until EOM, so the last packet is never empty.
    while (this.pendingBytes > chunk || (eom && this.pendingBytes > 0)) {
      const n = Math.min(chunk, this.pendingBytes);
      const last = eom && n === this.pendingBytes;
      const out = Buffer.allocUnsafe(n + PACKET_HEADER_LENGTH);
      encodePacketHeader(
        { type: PACKET_TYPE.TABULAR_RESULT, status: last ? PACKET_STATUS.EOM : PACKET_STATUS.NORMAL, length: n + PACKET_HEADER_LENGTH, spid: this.spid, packetId: this.nextPacketId, window: 0 },
        out,
        0,
      );
      let at = PACKET_HEADER_LENGTH;
      while (at < out.length) {
        const head = this.pending[0] as Buffer;
        const take = Math.min(head.length, out.length - at);
        head.copy(out, at, 0, take);
        at += take;
        if (take === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(take);
      }
      this.pendingBytes -= n;
      this.nextPacketId = (this.nextPacketId + 1) & 0xff;
      send(out);
    }
  }

  private endMessage(): void {
    this.held = [];
    this.fed = 0;
    this.sent = 0;
    this.changed = false;
    this.pending = [];
    this.pendingBytes = 0;
    this.nextPacketId = 1;
    this.renumber = false;
  }
}

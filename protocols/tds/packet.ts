// TDS packets and messages. [MS-TDS] 2.2.3 (Packets), 2.2.3.1 (Packet Header: Type, Status,
// Length, SPID, PacketID, Window), 2.2.1/2.2.2 (a message is one or more packets of the same type,
// the last one flagged EOM).
//
// `MessageAssembler` frames a byte stream: one growable buffer with start/end cursors takes the
// chunks as they arrive (no Buffer.concat per chunk; bytes handed out are never overwritten); `nextPacket()` hands out whole packets as
// views, `nextMessage()` joins a message's packets into one payload. Every declared length is
// checked before anything is buffered for it: a packet length below 8 or above the negotiated
// packet size, a message above `maxMessageSize`, a packet type that changes mid-message, or an
// unknown packet type is a ProtocolError.

import { MessageTooLargeError, ProtocolError } from '../errors.js';

/** Packet header Type field. [MS-TDS] 2.2.3.1.1 */
export const PACKET_TYPE = {
  SQL_BATCH: 0x01,
  RPC: 0x03,
  TABULAR_RESULT: 0x04,
  ATTENTION: 0x06,
  BULK_LOAD: 0x07,
  FED_AUTH_TOKEN: 0x08,
  TRANSACTION_MANAGER: 0x0e,
  LOGIN7: 0x10,
  SSPI: 0x11,
  PRELOGIN: 0x12,
} as const;
export type PacketType = (typeof PACKET_TYPE)[keyof typeof PACKET_TYPE];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(PACKET_TYPE));

/** Packet header Status bits. [MS-TDS] 2.2.3.1.2 */
export const PACKET_STATUS = {
  NORMAL: 0x00,
  /** End of message: the last packet of a message. */
  EOM: 0x01,
  /** Client to server: ignore this message (sent with EOM to abandon a partly sent message). */
  IGNORE: 0x02,
  /** Reset the connection before this request (first packet of SQLBatch/RPC/TransMgr). */
  RESET_CONNECTION: 0x08,
  /** Reset the connection but keep the transaction state. */
  RESET_CONNECTION_SKIP_TRAN: 0x10,
} as const;

export const PACKET_HEADER_LENGTH = 8;
/** The packet size both sides use until LOGIN7 negotiates another. [MS-TDS] 2.2.6.4 */
export const DEFAULT_PACKET_SIZE = 4096;
export const MIN_PACKET_SIZE = 512;
export const MAX_PACKET_SIZE = 32767;
/** Default cap on one message's payload (a LOGIN7 may not exceed 128 KiB; requests can be big). */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
const MIN_BUFFER = 64 * 1024;

export interface PacketHeader {
  readonly type: number;
  readonly status: number;
  /** Length of the whole packet, header included. */
  readonly length: number;
  readonly spid: number;
  readonly packetId: number;
  readonly window: number;
}

/** Reads the 8-byte header at `offset`. Fails on too few bytes; does not judge the fields. */
export function decodePacketHeader(buf: Uint8Array, offset = 0): PacketHeader {
  if (buf.length - offset < PACKET_HEADER_LENGTH) {
    throw new ProtocolError(`packet header needs 8 bytes, only ${buf.length - offset} left`, offset);
  }
  return {
    type: buf[offset]!,
    status: buf[offset + 1]!,
    length: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    spid: (buf[offset + 4]! << 8) | buf[offset + 5]!,
    packetId: buf[offset + 6]!,
    window: buf[offset + 7]!,
  };
}

/** Writes the 8-byte header into `target` at `offset` (a fresh buffer when none is given). */
export function encodePacketHeader(h: PacketHeader, target?: Buffer, offset = 0): Buffer {
  const out = target ?? Buffer.alloc(PACKET_HEADER_LENGTH);
  checkField(h.type, 0xff, 'packet type');
  checkField(h.status, 0xff, 'packet status');
  checkField(h.length, 0xffff, 'packet length');
  checkField(h.spid, 0xffff, 'SPID');
  checkField(h.packetId, 0xff, 'packet id');
  checkField(h.window, 0xff, 'window');
  out[offset] = h.type;
  out[offset + 1] = h.status;
  out.writeUInt16BE(h.length, offset + 2);
  out.writeUInt16BE(h.spid, offset + 4);
  out[offset + 6] = h.packetId;
  out[offset + 7] = h.window;
  return out;
}

function checkField(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}

export interface PacketizeOptions {
  /** Status bits for the first packet besides EOM (e.g. RESET_CONNECTION). */
  readonly firstStatus?: number;
  /** Packet id of the first packet (default 1; it then increments modulo 256). */
  readonly firstPacketId?: number;
  /** Keep the packet id constant instead of incrementing (servers often send 0 throughout). */
  readonly constantPacketId?: boolean;
  /** The message goes on in later packets: the last packet here carries no EOM. */
  readonly continues?: boolean;
}

/**
 * Splits one message into packets of at most `packetSize` bytes (header included) and returns
 * them as one buffer, ready for a single socket write. The last packet carries EOM unless the
 * message `continues`.
 */
export function packetize(
  type: number,
  payload: Uint8Array,
  packetSize: number,
  spid = 0,
  options: PacketizeOptions = {},
): Buffer {
  if (!Number.isInteger(packetSize) || packetSize < MIN_PACKET_SIZE || packetSize > MAX_PACKET_SIZE) {
    throw new RangeError(`packet size ${packetSize} is outside ${MIN_PACKET_SIZE}..${MAX_PACKET_SIZE}`);
  }
  if (!KNOWN_TYPES.has(type)) throw new RangeError(`unknown packet type 0x${type.toString(16)}`);
  const chunk = packetSize - PACKET_HEADER_LENGTH;
  const count = Math.max(1, Math.ceil(payload.length / chunk));
  const out = Buffer.allocUnsafe(payload.length + count * PACKET_HEADER_LENGTH);
  let id = options.firstPacketId ?? 1;
  let src = 0;
  let dst = 0;
  for (let i = 0; i < count; i++) {
    const n = Math.min(chunk, payload.length - src);
    const last = i === count - 1;
    const status = (last && !options.continues ? PACKET_STATUS.EOM : 0) | (i === 0 ? options.firstStatus ?? 0 : 0);
    encodePacketHeader(
      { type, status, length: n + PACKET_HEADER_LENGTH, spid, packetId: id, window: 0 },
      out,
      dst,
    );
    out.set(payload.subarray(src, src + n), dst + PACKET_HEADER_LENGTH);
    src += n;
    dst += n + PACKET_HEADER_LENGTH;
    if (!options.constantPacketId) id = (id + 1) & 0xff;
  }
  return out;
}

export interface Packet {
  readonly header: PacketHeader;
  /** The whole packet, header included: a view the assembler never writes over. */
  readonly bytes: Buffer;
  /** The packet data after the header (a view, like `bytes`). */
  readonly payload: Buffer;
}

export interface Message {
  readonly type: number;
  /** SPID from the message's first packet. */
  readonly spid: number;
  /** Status bits of the first packet (RESET_CONNECTION lives there). */
  readonly firstStatus: number;
  /** Status bits of the last packet (EOM, and IGNORE when the sender abandoned the message). */
  readonly lastStatus: number;
  readonly resetConnection: boolean;
  /** The sender asked for this message to be ignored: it must not be acted on. */
  readonly ignore: boolean;
  readonly packetCount: number;
  /** The joined payload; owned by the caller. */
  readonly payload: Buffer;
}

export interface AssemblerOptions {
  /** The negotiated packet size; no packet may declare a greater length. Default 4096. */
  readonly packetSize?: number;
  /** Cap on a joined message payload. Default 16 MiB. */
  readonly maxMessageSize?: number;
}

export class MessageAssembler {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  private packetSizeLimit: number;
  readonly maxMessageSize: number;
  // The message being joined by nextMessage().
  private msg: Buffer | undefined;
  private msgLength = 0;
  private msgType = -1;
  private msgSpid = 0;
  private msgFirstStatus = 0;
  private msgPackets = 0;
  /** Stream offset of `buf[start]`, for error offsets. */
  private consumed = 0;

  constructor(options: AssemblerOptions = {}) {
    this.packetSizeLimit = validPacketSize(options.packetSize ?? DEFAULT_PACKET_SIZE);
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isInteger(this.maxMessageSize) || this.maxMessageSize < 0) {
      throw new RangeError(`maxMessageSize must be a non-negative integer, got ${this.maxMessageSize}`);
    }
    this.buf = Buffer.allocUnsafe(MIN_BUFFER);
  }

  get packetSize(): number {
    return this.packetSizeLimit;
  }

  /** Applies a newly negotiated packet size (ENVCHANGE type 4, or the LOGIN7 value). */
  setPacketSize(size: number): void {
    this.packetSizeLimit = validPacketSize(size);
  }

  /** Bytes received but not yet handed out as packets. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** True while nextMessage() holds some packets of a message whose EOM has not arrived. */
  get inMessage(): boolean {
    return this.msgType >= 0;
  }

  /**
   * Appends received bytes. Bytes already handed out as packets are never written over: when the
   * buffer is full the unread tail moves to a fresh buffer, so earlier packet views stay valid.
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const pending = this.end - this.start;
    const limit = this.maxMessageSize + MAX_PACKET_SIZE;
    if (pending + chunk.length > limit) {
      throw new ProtocolError(
        `${pending + chunk.length} bytes buffered without being consumed (limit ${limit})`,
        this.consumed,
      );
    }
    if (this.end + chunk.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(MIN_BUFFER, 2 * (pending + chunk.length)));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.start = 0;
      this.end = pending;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The next whole packet, or undefined until more bytes arrive. */
  nextPacket(): Packet | undefined {
    const available = this.end - this.start;
    if (available < PACKET_HEADER_LENGTH) return undefined;
    const at = this.start;
    const type = this.buf[at]!;
    const length = this.buf.readUInt16BE(at + 2);
    if (!KNOWN_TYPES.has(type)) {
      throw new ProtocolError(`unknown packet type 0x${type.toString(16).padStart(2, '0')}`, this.consumed);
    }
    if (length < PACKET_HEADER_LENGTH) {
      throw new ProtocolError(`packet length ${length} is shorter than the 8-byte header`, this.consumed + 2);
    }
    if (length > this.packetSizeLimit) {
      throw new ProtocolError(
        `packet length ${length} exceeds the negotiated packet size ${this.packetSizeLimit}`,
        this.consumed + 2,
      );
    }
    if (available < length) return undefined;
    this.start += length;
    this.consumed += length;
    const bytes = this.buf.subarray(at, at + length);
    return { header: decodePacketHeader(bytes), bytes, payload: bytes.subarray(PACKET_HEADER_LENGTH) };
  }

  /** The next whole message (all its packets joined), or undefined until more bytes arrive. */
  nextMessage(): Message | undefined {
    for (;;) {
      const at = this.consumed;
      const packet = this.nextPacket();
      if (!packet) return undefined;
      const { header, payload } = packet;
      if (this.msgType < 0) {
        this.msgType = header.type;
        this.msgSpid = header.spid;
        this.msgFirstStatus = header.status;
        this.msgLength = 0;
        this.msgPackets = 0;
      } else if (header.type !== this.msgType) {
        throw new ProtocolError(
          `packet type 0x${header.type.toString(16)} inside a message of type 0x${this.msgType.toString(16)}`,
          at,
        );
      }
      const total = this.msgLength + payload.length;
      if (total > this.maxMessageSize) {
        throw new MessageTooLargeError(`message exceeds ${this.maxMessageSize} bytes`, this.msgType, this.maxMessageSize, at);
      }
      this.msgPackets++;
      const eom = (header.status & PACKET_STATUS.EOM) !== 0;
      if (eom && this.msgLength === 0) {
        return this.finishMessage(header.status, Buffer.from(payload));
      }
      this.appendToMessage(payload);
      if (eom) {
        const joined = this.msg!.subarray(0, this.msgLength);
        this.msg = undefined;
        return this.finishMessage(header.status, joined);
      }
    }
  }

  private appendToMessage(payload: Buffer): void {
    const need = this.msgLength + payload.length;
    if (!this.msg || this.msg.length < need) {
      let size = Math.max(this.msg ? this.msg.length * 2 : this.packetSizeLimit * 4, need);
      size = Math.min(size, Math.max(need, this.maxMessageSize));
      const next = Buffer.allocUnsafe(size);
      if (this.msg) this.msg.copy(next, 0, 0, this.msgLength);
      this.msg = next;
    }
    this.msg.set(payload, this.msgLength);
    this.msgLength = need;
  }

  private finishMessage(lastStatus: number, payload: Buffer): Message {
    const message: Message = {
      type: this.msgType,
      spid: this.msgSpid,
      firstStatus: this.msgFirstStatus,
      lastStatus,
      resetConnection:
        (this.msgFirstStatus & (PACKET_STATUS.RESET_CONNECTION | PACKET_STATUS.RESET_CONNECTION_SKIP_TRAN)) !== 0,
      ignore: (lastStatus & PACKET_STATUS.IGNORE) !== 0,
      packetCount: this.msgPackets,
      payload,
    };
    this.msgType = -1;
    this.msgLength = 0;
    this.msgPackets = 0;
    return message;
  }
}

function validPacketSize(size: number): number {
  if (!Number.isInteger(size) || size < MIN_PACKET_SIZE || size > MAX_PACKET_SIZE) {
    throw new RangeError(`packet size ${size} is outside ${MIN_PACKET_SIZE}..${MAX_PACKET_SIZE}`);
  }
  return size;
}

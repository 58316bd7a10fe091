// Packet header codec, packetize(), and the MessageAssembler: real captured streams cut at every
// split point, bounds (packet size, message size), and malformed framing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import { TEDIOUS_ATTENTION, TEDIOUS_PRELOGIN } from '../../fixtures/tds/capture-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import {
  MessageAssembler,
  PACKET_STATUS,
  PACKET_TYPE,
  type Message,
  decodePacketHeader,
  encodePacketHeader,
  packetize,
} from '../../protocols/tds/packet.js';

/** Compares buffer lists without vitest's slow byte-by-byte deep equality; names the first difference. */
function expectSameBuffers(got: readonly Buffer[], expected: readonly Buffer[]): void {
  expect(got.length).toBe(expected.length);
  const bad = got.findIndex((b, i) => !b.equals(expected[i]!));
  expect(bad, bad >= 0 ? `message ${bad} differs` : '').toBe(-1);
}

function drain(a: MessageAssembler): Message[] {
  const out: Message[] = [];
  for (let m = a.nextMessage(); m; m = a.nextMessage()) out.push(m);
  return out;
}

const plain = loadCapture(CAPTURES.tediousPlain)[0]!;
const multi = loadCapture(CAPTURES.tediousMultipacket)[0]!;

describe('packet header', () => {
  it('decodes the fields of a captured PRELOGIN header and encodes them back', () => {
    const h = decodePacketHeader(TEDIOUS_PRELOGIN.bytes);
    expect(h).toEqual({ type: PACKET_TYPE.PRELOGIN, status: PACKET_STATUS.EOM, length: 94, spid: 0, packetId: 1, window: 0 });
    expect(encodePacketHeader(h)).toEqual(TEDIOUS_PRELOGIN.bytes.subarray(0, 8));
  });

  it('round-trips any header', () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.integer({ min: 0, max: 255 }),
          status: fc.integer({ min: 0, max: 255 }),
          length: fc.integer({ min: 0, max: 0xffff }),
          spid: fc.integer({ min: 0, max: 0xffff }),
          packetId: fc.integer({ min: 0, max: 255 }),
          window: fc.integer({ min: 0, max: 255 }),
        }),
        (h) => {
          expect(decodePacketHeader(encodePacketHeader(h))).toEqual(h);
        },
      ),
    );
  });

  it('refuses a short header and out-of-range fields', () => {
    expect(() => decodePacketHeader(Buffer.alloc(7))).toThrow(ProtocolError);
    expect(() => encodePacketHeader({ type: 1, status: 1, length: 0x10000, spid: 0, packetId: 0, window: 0 })).toThrow(RangeError);
  });
});

describe('packetize', () => {
  it('reproduces the three packets tedious sent for a 9 270-byte SQLBatch', () => {
    const batch = multi.client.find((m) => m.packetCount === 3)!;
    expect(batch.payload.length).toBe(9270);
    expect(packetize(PACKET_TYPE.SQL_BATCH, batch.payload, 4096).equals(batch.wire)).toBe(true);
  });

  it('reproduces Babelfish\'s 10-packet response (packet id 0 throughout)', () => {
    const big = multi.server.find((m) => m.packetCount === 10)!;
    expect(packetize(PACKET_TYPE.TABULAR_RESULT, big.payload, 4096, 0, { firstPacketId: 0, constantPacketId: true }).equals(big.wire)).toBe(true);
  });

  it('sends an ATTENTION as a bare header', () => {
    expect(packetize(PACKET_TYPE.ATTENTION, Buffer.alloc(0), 4096)).toEqual(TEDIOUS_ATTENTION.bytes);
  });

  it('puts RESETCONNECTION on the first packet only and EOM on the last only', () => {
    const out = packetize(PACKET_TYPE.SQL_BATCH, Buffer.alloc(1500, 7), 512, 5, { firstStatus: PACKET_STATUS.RESET_CONNECTION });
    const a = new MessageAssembler({ packetSize: 512 });
    a.push(out);
    const statuses: number[] = [];
    for (let p = a.nextPacket(); p; p = a.nextPacket()) {
      statuses.push(p.header.status);
      expect(p.header.spid).toBe(5);
    }
    expect(statuses).toEqual([PACKET_STATUS.RESET_CONNECTION, 0, PACKET_STATUS.EOM]);
  });

  it('refuses packet sizes outside 512..32767 and unknown types', () => {
    expect(() => packetize(PACKET_TYPE.RPC, Buffer.alloc(1), 511)).toThrow(RangeError);
    expect(() => packetize(PACKET_TYPE.RPC, Buffer.alloc(1), 32768)).toThrow(RangeError);
    expect(() => packetize(0x05, Buffer.alloc(1), 4096)).toThrow(RangeError);
  });

  it('packetize then assemble gives the payload back, for any size and packet size', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 512, max: 32767 }),
        fc.integer({ min: 0, max: 0xffff }),
        (payload, size, spid) => {
          const wire = packetize(PACKET_TYPE.RPC, payload, size, spid);
          const a = new MessageAssembler({ packetSize: size });
          a.push(wire);
          const [m, ...rest] = drain(a);
          expect(rest).toEqual([]);
          expect(m!.payload.equals(Buffer.from(payload))).toBe(true);
          expect(m!.spid).toBe(spid);
          expect(m!.packetCount).toBe(Math.max(1, Math.ceil(payload.length / (size - 8))));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('MessageAssembler on captured streams', () => {
  const streams = [
    ...Object.values(CAPTURES)
      .filter((c) => !c.includes('tls'))
      .flatMap((c) =>
        loadCapture(c).flatMap((conn, i) => [
          { name: `${c}#${i} client`, bytes: conn.clientBytes, expected: conn.client },
          { name: `${c}#${i} server`, bytes: conn.serverBytes, expected: conn.server },
        ]),
      ),
  ];

  for (const s of streams) {
    it(`cuts ${s.name} into the same ${s.expected.length} messages as the reference splitter`, () => {
      const a = new MessageAssembler();
      a.push(s.bytes);
      const got = drain(a);
      expectSameBuffers(got.map((m) => m.payload), s.expected.map((m) => m.payload));
      expect(got.map((m) => m.type)).toEqual(s.expected.map((m) => m.type));
      expect(got.map((m) => m.packetCount)).toEqual(s.expected.map((m) => m.packetCount));
      expect(a.buffered).toBe(0);
      expect(a.inMessage).toBe(false);
    });
  }

  it('gives the same messages for the tedious stream split at every offset into two chunks', () => {
    const bytes = plain.clientBytes;
    const expected = plain.client.map((m) => m.payload);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const a = new MessageAssembler();
      a.push(bytes.subarray(0, cut));
      const got = drain(a);
      a.push(bytes.subarray(cut));
      got.push(...drain(a));
      expectSameBuffers(got.map((m) => m.payload), expected);
    }
  });

  it('gives the same messages fed one byte at a time', () => {
    for (const [bytes, expected] of [
      [plain.serverBytes, plain.server],
      [multi.clientBytes, multi.client],
    ] as const) {
      const a = new MessageAssembler();
      const got: Message[] = [];
      for (let i = 0; i < bytes.length; i++) {
        a.push(bytes.subarray(i, i + 1));
        got.push(...drain(a));
      }
      expectSameBuffers(got.map((m) => m.payload), expected.map((m) => m.payload));
    }
  });

  it('gives the same messages for random multi-cut splits of the 41 kB multipacket response', () => {
    const bytes = multi.serverBytes;
    const expected = multi.server.map((m) => m.payload);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((x, y) => x - y), bytes.length];
        const a = new MessageAssembler();
        const got: Message[] = [];
        for (let i = 1; i < points.length; i++) {
          a.push(bytes.subarray(points[i - 1], points[i]));
          got.push(...drain(a));
        }
        expectSameBuffers(got.map((m) => m.payload), expected);
      }),
      { numRuns: 150 },
    );
  });

  it('never writes over packets it handed out, however the stream is cut', () => {
    const bytes = multi.serverBytes;
    const a = new MessageAssembler();
    const packets = [];
    for (let at = 0; at < bytes.length; at += 1000) {
      a.push(bytes.subarray(at, at + 1000));
      for (let p = a.nextPacket(); p; p = a.nextPacket()) packets.push(p); // views, no copies
    }
    const joined = Buffer.concat(packets.map((p) => p.bytes));
    expect(joined.equals(bytes)).toBe(true);
  });

  it('hands out packets as views with the header fields', () => {
    const a = new MessageAssembler();
    a.push(multi.clientBytes);
    const headers = [];
    for (let p = a.nextPacket(); p; p = a.nextPacket()) {
      expect(p.bytes.length).toBe(p.header.length);
      expect(p.payload.length).toBe(p.header.length - 8);
      headers.push(p.header);
    }
    // Frames 12-23 of the capture: a SQLBatch in 3 packets, then an RPC in 4 (ids count from 1).
    const split = headers.filter((h) => h.length === 4096 || h.packetId > 1);
    expect(split.map((h) => [h.type, h.status, h.packetId, h.length])).toEqual([
      [PACKET_TYPE.SQL_BATCH, 0, 1, 4096],
      [PACKET_TYPE.SQL_BATCH, 0, 2, 4096],
      [PACKET_TYPE.SQL_BATCH, 1, 3, 1102],
      [PACKET_TYPE.RPC, 0, 1, 4096],
      [PACKET_TYPE.RPC, 0, 2, 4096],
      [PACKET_TYPE.RPC, 0, 3, 4096],
      [PACKET_TYPE.RPC, 1, 4, 52],
    ]);
  });
});

describe('TLS inside TDS (what a relay must switch on)', () => {
  it('frames the TLS handshake carried in PRELOGIN packets, then refuses the bare TLS records', () => {
    const tls = loadCapture(CAPTURES.tediousTls)[0]!;
    const a = new MessageAssembler();
    a.push(tls.clientBytes);
    const types = [a.nextMessage()!, a.nextMessage()!, a.nextMessage()!].map((m) => [m.type, m.payload[0]]);
    // PRELOGIN, then two PRELOGIN-wrapped handshake flights (TLS record type 0x16).
    expect(types).toEqual([[PACKET_TYPE.PRELOGIN, 0x00], [PACKET_TYPE.PRELOGIN, 0x16], [PACKET_TYPE.PRELOGIN, 0x16]]);
    expect(() => a.nextMessage()).toThrow(/unknown packet type 0x17/); // application data: TLS from here on
  });

  it('after a login-only handshake (ENCRYPT_OFF both ways) the stream is plaintext TDS again', () => {
    const conn = loadCapture(CAPTURES.freetdsLoginOnlyTls)[0]!;
    const client = conn.clientBytes;
    const a = new MessageAssembler();
    // PRELOGIN, two handshake flights, then the LOGIN7 inside one bare TLS record (5-byte header).
    let at = 0;
    for (let i = 0; i < 3; i++) at += client.readUInt16BE(at + 2);
    expect(client[at]).toBe(0x17);
    at += 5 + client.readUInt16BE(at + 3);
    a.push(client.subarray(at));
    const m = a.nextMessage()!;
    expect(m.type).toBe(PACKET_TYPE.SQL_BATCH);
    expect(m.payload.subarray(22).toString('utf16le')).toMatch(/^SELECT id, full_name, ssn, card_number FROM customers WHERE id <= 3/);
  });
});

describe('MessageAssembler bounds and malformed framing', () => {
  const header = (type: number, status: number, length: number): Buffer =>
    encodePacketHeader({ type, status, length, spid: 0, packetId: 1, window: 0 });

  it('refuses a declared length below 8 before waiting for more bytes', () => {
    const a = new MessageAssembler();
    a.push(header(PACKET_TYPE.SQL_BATCH, 1, 7));
    expect(() => a.nextPacket()).toThrow(/shorter than the 8-byte header/);
  });

  it('refuses a declared length above the negotiated packet size', () => {
    const a = new MessageAssembler({ packetSize: 4096 });
    a.push(header(PACKET_TYPE.SQL_BATCH, 1, 4097));
    expect(() => a.nextPacket()).toThrow(/exceeds the negotiated packet size 4096/);
    const b = new MessageAssembler({ packetSize: 4096 });
    b.setPacketSize(8192);
    b.push(Buffer.concat([header(PACKET_TYPE.SQL_BATCH, 1, 4097), Buffer.alloc(4089)]));
    expect(b.nextMessage()?.payload.length).toBe(4089);
  });

  it('refuses an unknown packet type (for example a TLS record where TDS was expected)', () => {
    const a = new MessageAssembler();
    a.push(Buffer.from('170303010100000000', 'hex'));
    expect(() => a.nextPacket()).toThrow(/unknown packet type 0x17/);
  });

  it('refuses a packet type that changes inside a message', () => {
    const a = new MessageAssembler();
    a.push(Buffer.concat([header(PACKET_TYPE.SQL_BATCH, 0, 9), Buffer.of(1), header(PACKET_TYPE.RPC, 1, 9), Buffer.of(2)]));
    expect(() => a.nextMessage()).toThrow(/inside a message of type 0x1/);
  });

  it('refuses a message over maxMessageSize as soon as the packet that overflows arrives', () => {
    const a = new MessageAssembler({ maxMessageSize: 1200 });
    const wire = packetize(PACKET_TYPE.SQL_BATCH, Buffer.alloc(1500), 512);
    a.push(wire.subarray(0, 512 * 2));
    expect(a.nextMessage()).toBeUndefined();
    a.push(wire.subarray(512 * 2));
    expect(() => a.nextMessage()).toThrow(ProtocolError);
  });

  it('reports IGNORE and RESETCONNECTION', () => {
    const a = new MessageAssembler();
    a.push(Buffer.concat([header(PACKET_TYPE.SQL_BATCH, PACKET_STATUS.RESET_CONNECTION, 10), Buffer.of(1, 0)]));
    a.push(Buffer.concat([header(PACKET_TYPE.SQL_BATCH, PACKET_STATUS.EOM | PACKET_STATUS.IGNORE, 8)]));
    const m = a.nextMessage()!;
    expect(m.resetConnection).toBe(true);
    expect(m.ignore).toBe(true);
    expect(m.payload).toEqual(Buffer.of(1, 0));
  });

  it('says "need more" with undefined, not an exception, for every prefix of a packet', () => {
    const wire = TEDIOUS_PRELOGIN.bytes;
    for (let n = 0; n < wire.length; n++) {
      const a = new MessageAssembler();
      a.push(wire.subarray(0, n));
      expect(a.nextPacket()).toBeUndefined();
    }
  });
});

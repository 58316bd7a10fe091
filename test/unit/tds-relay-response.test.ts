// The relay's response stream (src/tds/response-stream.ts) over captured server responses: packets
// go out byte for byte when nothing is rewritten (also while rewrites are possible, once their
// tokens are complete); a rewritten row makes the rest of the message re-packetised with the
// negotiated packet size, full packets, continuing ids and EOM on the last only; and the result
// is the same whatever the input packetisation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePacketHeader,
  decodeToken,
  decodeTokens,
  encodeToken,
  MessageAssembler,
  packetize,
  PACKET_STATUS,
  PACKET_TYPE,
  TDS_VERSION,
  TOKEN,
  DATA_TYPE,
  type ColumnMetadata,
  type ParsedToken,
  type Token,
  type Value,
} from '../../protocols/tds/index.js';
import { ResponseStream } from '../../src/tds/response-stream.js';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';

const ctx = { tdsVersion: TDS_VERSION.V7_4 };

/** The largest server message of a capture: a result with rows (several packets). */
function biggest(name: string): { wire: Buffer; payload: Buffer; packetSize: number } {
  const msgs = loadCapture(name)[0]!.server.filter((m) => m.type === PACKET_TYPE.TABULAR_RESULT);
  const m = msgs.reduce((a, b) => (b.payload.length > a.payload.length ? b : a));
  return { wire: m.wire, payload: m.payload, packetSize: decodePacketHeader(m.wire).length };
}

const RESULTS = {
  customers: biggest(CAPTURES.tediousPlain),
  plp: biggest(CAPTURES.tediousMultipacket),
};

function packetsOf(wire: Buffer, packetSize = 32767): ReturnType<MessageAssembler['nextPacket']>[] {
  const a = new MessageAssembler({ packetSize, maxMessageSize: 64 << 20 });
  a.push(wire);
  const out = [];
  for (let p = a.nextPacket(); p; p = a.nextPacket()) out.push(p);
  return out;
}

const TEXT_TYPES: ReadonlySet<number> = new Set([DATA_TYPE.NVARCHAR, DATA_TYPE.BIGVARCHR, DATA_TYPE.NCHAR, DATA_TYPE.BIGCHAR]);

/** Rewrites every text value of a row (to another length), as masking would. */
function mask(values: readonly Value[], columns: readonly ColumnMetadata[]): Value[] {
  return values.map((v, i) => {
    const ti = columns[i]!.typeInfo;
    if (typeof v !== 'string' || !TEXT_TYPES.has(ti.type)) return v;
    const fixed = ti.type === DATA_TYPE.NCHAR || ti.type === DATA_TYPE.BIGCHAR;
    return fixed ? 'X'.repeat(v.length) : `masked:${'*'.repeat(v.length % 7)}`;
  });
}

function maskRow(t: ParsedToken): Buffer | undefined {
  if (t.code !== TOKEN.ROW && t.code !== TOKEN.NBCROW) return undefined;
  const row = decodeToken(t.bytes, ctx, t.columns) as Extract<Token, { kind: 'ROW' | 'NBCROW' }>;
  return encodeToken({ kind: row.kind, values: mask(row.values, t.columns!) } as Token, ctx, t.columns);
}

/** The original tokens with the rows `pick` chooses masked. */
function expectedTokens(payload: Buffer, pick: (i: number) => boolean): Token[] {
  let columns: readonly ColumnMetadata[] = [];
  let i = 0;
  return decodeTokens(payload, ctx).map((t) => {
    if (t.kind === 'COLMETADATA' && t.columns) columns = t.columns;
    if (t.kind !== 'ROW' && t.kind !== 'NBCROW') return t;
    return pick(i++) ? { ...t, values: mask(t.values, columns) } : t;
  });
}

function run(wire: Buffer, packetSize: number, opts: { rewrite: boolean; holdBack: boolean; only?: (i: number) => boolean }): Buffer[] {
  const out: Buffer[] = [];
  let rows = 0;
  const stream = new ResponseStream({
    tdsVersion: ctx.tdsVersion,
    packetSize,
    maxTokenBytes: 1 << 24,
    rewriting: () => opts.holdBack,
    onToken: (t) => {
      if (!opts.rewrite || (t.code !== TOKEN.ROW && t.code !== TOKEN.NBCROW)) return undefined;
      const i = rows++;
      return opts.only && !opts.only(i) ? undefined : maskRow(t);
    },
  });
  for (const p of packetsOf(wire)) stream.push(p!, (b) => out.push(b));
  return out;
}

function payloadOf(packets: Buffer[]): Buffer {
  return Buffer.concat(packets.map((p) => p.subarray(8)));
}

function expectWellFramed(packets: Buffer[], packetSize: number): void {
  packets.forEach((p, i) => {
    const h = decodePacketHeader(p);
    expect(h.type).toBe(PACKET_TYPE.TABULAR_RESULT);
    expect(h.length).toBe(p.length);
    expect(h.length).toBeLessThanOrEqual(packetSize);
    const last = i === packets.length - 1;
    expect((h.status & PACKET_STATUS.EOM) !== 0, `EOM on packet ${i}`).toBe(last);
  });
}

describe.each(Object.entries(RESULTS))('response stream over the captured %s result', (_name, r) => {
  it('sends the packets unchanged when nothing is rewritten, held back or not', () => {
    const original = packetsOf(r.wire).map((p) => p!.bytes);
    expect(original.length).toBeGreaterThan(1);
    for (const holdBack of [false, true]) {
      const out = run(r.wire, r.packetSize, { rewrite: false, holdBack });
      expect(out.length).toBe(original.length);
      out.forEach((b, i) => expect(b.equals(original[i]!)).toBe(true));
    }
  });

  it('re-packetises the rest of the message after a rewritten row, with the negotiated size', () => {
    const out = run(r.wire, r.packetSize, { rewrite: true, holdBack: true });
    expectWellFramed(out, r.packetSize);
    // every packet but the last is full
    for (const p of out.slice(0, -1)) expect(p.length).toBe(r.packetSize);
    const ids = out.map((p) => decodePacketHeader(p).packetId);
    ids.slice(1).forEach((id, i) => expect(id).toBe((ids[i]! + 1) & 0xff));
    expect(decodeTokens(payloadOf(out), ctx)).toEqual(expectedTokens(r.payload, () => true));
  });

  it('gives the same tokens whatever the input packetisation and whichever rows are rewritten', () => {
    fc.assert(
      fc.property(fc.integer({ min: 512, max: 8000 }), fc.integer({ min: 512, max: 8000 }), fc.func(fc.boolean()), (inSize, outSize, pick) => {
        const chosen: boolean[] = [];
        const only = (i: number): boolean => (chosen[i] ??= pick(i));
        const wire = packetize(PACKET_TYPE.TABULAR_RESULT, r.payload, inSize);
        const out = run(wire, outSize, { rewrite: true, holdBack: true, only });
        expectWellFramed(out, Math.max(outSize, inSize));
        expect(decodeTokens(payloadOf(out), ctx)).toEqual(expectedTokens(r.payload, only));
      }),
      { numRuns: 60 },
    );
  });
});

// The incremental token stream parser: captured responses fed at every split point, packet by
// packet as they arrived, and lazily (rows framed, not decoded); byte ranges that can be forwarded
// as slices; caps on declared lengths; and "need more" as a return value, never an exception.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTURES, type CapturedConnection, loadCapture } from '../../fixtures/tds/captures.js';
import { ProtocolError } from '../../protocols/errors.js';
import type { ColumnMetadata } from '../../protocols/tds/colmetadata.js';
import { decodeLogin7 } from '../../protocols/tds/login7.js';
import { MessageAssembler, PACKET_TYPE, packetize } from '../../protocols/tds/packet.js';
import { rowValueRanges } from '../../protocols/tds/row.js';
import { TDS_VERSION } from '../../protocols/tds/tds-version.js';
import { TOKEN } from '../../protocols/tds/token-codes.js';
import { type ParsedToken, TokenStreamParser, decodeToken, decodeTokens, encodeToken, encodeTokens } from '../../protocols/tds/token-stream.js';
import type { Token } from '../../protocols/tds/tokens.js';
import { DATA_TYPE } from '../../protocols/tds/type-info.js';
import { expectSameBuffers } from './tds-support.js';

const V74 = { tdsVersion: TDS_VERSION.V7_4 };

interface Reply {
  readonly name: string;
  readonly payload: Buffer;
  readonly wire: Buffer;
  readonly tdsVersion: number;
  readonly columns: readonly ColumnMetadata[] | undefined;
  readonly tokens: Token[];
}

/** Every captured server reply (after PRELOGIN) with the state needed to parse it alone. */
function replies(): Reply[] {
  const out: Reply[] = [];
  for (const name of Object.values(CAPTURES).filter((c) => !c.includes('tls'))) {
    loadCapture(name).forEach((conn: CapturedConnection, ci) => {
      let tdsVersion = decodeLogin7(conn.client.find((m) => m.type === PACKET_TYPE.LOGIN7)!.payload).tdsVersion;
      let columns: readonly ColumnMetadata[] | undefined;
      for (const m of conn.server.slice(1)) {
        const tokens = decodeTokens(m.payload, { tdsVersion, ...(columns ? { columns } : {}) });
        out.push({ name: `${name}#${ci} server ${m.index}`, payload: m.payload, wire: m.wire, tdsVersion, columns, tokens });
        for (const t of tokens) {
          if (t.kind === 'LOGINACK') tdsVersion = t.tdsVersion;
          if (t.kind === 'COLMETADATA' && t.columns) columns = t.columns;
        }
      }
    });
  }
  return out;
}

const all = replies();

function parse(reply: Reply, chunks: readonly Buffer[], decodeRows = true): ParsedToken[] {
  const p = new TokenStreamParser({ tdsVersion: reply.tdsVersion, decodeRows, ...(reply.columns ? { columns: reply.columns } : {}) });
  const out: ParsedToken[] = [];
  for (const c of chunks) {
    p.feed(c);
    // Copy the views: they are only valid until the next feed().
    for (let t = p.next(); t; t = p.next()) out.push({ ...t, bytes: Buffer.from(t.bytes) });
  }
  p.endOfMessage();
  return out;
}

function split(buf: Buffer, points: readonly number[]): Buffer[] {
  const cuts = [0, ...[...points].sort((a, b) => a - b), buf.length];
  return cuts.slice(1).map((c, i) => buf.subarray(cuts[i], c));
}

function check(reply: Reply, got: readonly ParsedToken[]): void {
  expect(got.map((t) => t.token)).toEqual(reply.tokens);
  let at = 0;
  for (const t of got) {
    expect(t.start).toBe(at);
    expect(t.bytes.equals(reply.payload.subarray(t.start, t.end))).toBe(true);
    at = t.end;
  }
  expect(at).toBe(reply.payload.length);
}

describe('token stream on captured replies', () => {
  it(`parses all ${all.length} replies whole, with byte ranges that tile the payload`, () => {
    for (const r of all) check(r, parse(r, [r.payload]));
  });

  it('gives the same tokens for every two-chunk split of every reply under 2 kB', () => {
    for (const r of all.filter((x) => x.payload.length < 2048)) {
      for (let cut = 0; cut <= r.payload.length; cut++) check(r, parse(r, split(r.payload, [cut])));
    }
  });

  it('gives the same tokens fed one byte at a time (the 17-column result included)', () => {
    for (const r of all.filter((x) => x.payload.length < 6000)) {
      check(r, parse(r, split(r.payload, Array.from({ length: r.payload.length - 1 }, (_, i) => i + 1))));
    }
  });

  it('gives the same tokens for random multi-cut splits of the large replies', () => {
    const large = all.filter((x) => x.payload.length >= 2048);
    expect(large.length).toBeGreaterThanOrEqual(3);
    fc.assert(
      fc.property(fc.constantFrom(...large), fc.array(fc.nat(), { maxLength: 30 }), (r, raw) => {
        check(r, parse(r, split(r.payload, raw.map((n) => n % (r.payload.length + 1)))));
      }),
      { numRuns: 120 },
    );
  });

  it('parses packet by packet as a relay would: assembler packets straight into the parser', () => {
    for (const r of all.filter((x) => x.wire.length > 4096)) {
      const a = new MessageAssembler();
      a.push(r.wire);
      const chunks: Buffer[] = [];
      for (let p = a.nextPacket(); p; p = a.nextPacket()) chunks.push(Buffer.from(p.payload));
      expect(chunks.length).toBeGreaterThan(1);
      check(r, parse(r, chunks));
    }
  });

  it('frames rows without decoding them (decodeRows: false) at the same boundaries', () => {
    for (const r of all) {
      const lazy = parse(r, [r.payload], false);
      const eager = parse(r, [r.payload]);
      expect(lazy.map((t) => [t.code, t.start, t.end])).toEqual(eager.map((t) => [t.code, t.start, t.end]));
      for (const [i, t] of lazy.entries()) {
        if (t.code === TOKEN.ROW || t.code === TOKEN.NBCROW) {
          expect(t.token).toBeUndefined();
          // A row decoded later, from its own bytes, is the row the eager parse saw.
          expect(decodeToken(t.bytes, { tdsVersion: r.tdsVersion }, t.columns)).toEqual(eager[i]!.token);
        } else {
          expect(t.token).toEqual(eager[i]!.token);
        }
      }
    }
  });

  it('lets a relay forward unchanged tokens as slices and rewrite one column of one row', () => {
    const r = all.find((x) => x.tokens.filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW').length === 20)!;
    const parsed = parse(r, [r.payload], false);
    const out: Buffer[] = [];
    for (const t of parsed) {
      if (t.code !== TOKEN.ROW && t.code !== TOKEN.NBCROW) {
        out.push(t.bytes);
        continue;
      }
      const cols = t.columns!;
      const cardAt = cols.findIndex((c) => c.name === 'card_number');
      const ranges = rowValueRanges(t.bytes, cols, { textPointers: true });
      const range = ranges[cardAt];
      const row = decodeToken(t.bytes, V74, cols) as Extract<Token, { kind: 'ROW' | 'NBCROW' }>;
      const card = row.values[cardAt];
      if (!range || typeof card !== 'string') {
        out.push(t.bytes); // NULL card (NBCROW bitmap or ROW 0xFFFF): nothing to mask
        continue;
      }
      const masked = { ...row, values: row.values.map((v, i) => (i === cardAt ? `${'*'.repeat(card.length - 4)}${card.slice(-4)}` : v)) };
      const bytes = encodeToken(masked, { ...V74, decimalLength: 'minimal', plpChunkSize: 32000 }, cols);
      // Only the masked value's bytes changed; everything around it is copied as it was.
      expect(bytes.subarray(0, range[0]).equals(t.bytes.subarray(0, range[0]))).toBe(true);
      expect(bytes.subarray(range[1]).equals(t.bytes.subarray(range[1]))).toBe(true);
      out.push(bytes);
    }
    const rewritten = Buffer.concat(out);
    const rows = decodeTokens(rewritten, V74).filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW') as { values: readonly unknown[] }[];
    expect(rows[0]!.values[4]).toBe('************1111');
    expect(rows.map((x) => x.values[1])).toEqual(
      (r.tokens.filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW') as { values: readonly unknown[] }[]).map((x) => x.values[1]),
    );
    // And it re-packetizes into a valid message.
    const a = new MessageAssembler();
    a.push(packetize(PACKET_TYPE.TABULAR_RESULT, rewritten, 4096, 0));
    expect(a.nextMessage()!.payload.equals(rewritten)).toBe(true);
  });

  it('switches to the version LOGINACK announces (a 7.4 parser reading jTDS\'s 7.1 login reply would not)', () => {
    const jtdsLogin = all.find((r) => r.name.includes('jtds.pcap') && r.tokens.some((t) => t.kind === 'LOGINACK'))!;
    const p = new TokenStreamParser({ tdsVersion: TDS_VERSION.V7_1_REV1 });
    p.feed(jtdsLogin.payload);
    while (p.next());
    expect(p.tdsVersion).toBe(TDS_VERSION.V7_1_REV1);
    const q = new TokenStreamParser(V74);
    const tedious = all.find((r) => r.name.includes('tedious-plain') && r.tokens.some((t) => t.kind === 'LOGINACK'))!;
    q.feed(tedious.payload);
    while (q.next());
    expect(q.tdsVersion).toBe(TDS_VERSION.V7_4);
  });
});

describe('token stream bounds', () => {
  const columns = [{ userType: 0, flags: 1, typeInfo: { type: DATA_TYPE.BIGVARBIN, length: 0xffff }, name: 'blob' }];
  const meta = encodeTokens([{ kind: 'COLMETADATA', columns }], V74);

  it('answers "need more" with undefined for every prefix of a token, never by throwing', () => {
    const r = all.find((x) => x.tokens.length > 20)!;
    for (let n = 0; n < 200; n++) {
      const p = new TokenStreamParser({ tdsVersion: r.tdsVersion, ...(r.columns ? { columns: r.columns } : {}) });
      p.feed(r.payload.subarray(0, n));
      const seen: ParsedToken[] = [];
      for (let t = p.next(); t; t = p.next()) seen.push(t);
      expect(p.buffered).toBe(n - (seen.at(-1)?.end ?? 0));
      if (p.buffered > 0) expect(() => p.endOfMessage()).toThrow(/message ended inside a token/);
    }
  });

  it('refuses a PLP value declared larger than the cap before its bytes arrive', () => {
    const p = new TokenStreamParser({ ...V74, maxTokenLength: 1024 });
    const row = Buffer.alloc(13);
    row[0] = TOKEN.ROW;
    row.writeBigUInt64LE(5000n, 1);
    p.feed(Buffer.concat([meta, row]));
    expect(p.next()?.token?.kind).toBe('COLMETADATA');
    expect(() => p.next()).toThrow(/PLP length 5000 exceeds the 1024-byte cap/);
  });

  it('refuses a token that keeps growing past the cap (unknown-length PLP chunks)', () => {
    const p = new TokenStreamParser({ ...V74, maxTokenLength: 4096 });
    p.feed(meta);
    p.next();
    const head = Buffer.alloc(9);
    head[0] = TOKEN.ROW;
    head.writeBigUInt64LE(0xfffffffffffffffen, 1);
    p.feed(head);
    const chunk = Buffer.alloc(1004);
    chunk.writeUInt32LE(1000, 0);
    expect(() => {
      for (let i = 0; i < 10; i++) {
        p.feed(chunk);
        expect(p.next()).toBeUndefined();
      }
    }).toThrow(ProtocolError);
  });

  it('refuses DWORD-length tokens declared over the cap at once', () => {
    const p = new TokenStreamParser({ ...V74, maxTokenLength: 1000 });
    const t = Buffer.alloc(5);
    t[0] = TOKEN.SESSIONSTATE;
    t.writeUInt32LE(0x7fffffff, 1);
    p.feed(t);
    expect(() => p.next()).toThrow(/SESSIONSTATE token declares 2147483647 bytes/);
  });

  it('keeps metadata across messages for NoMetaData, and refuses NoMetaData without any', () => {
    const p = new TokenStreamParser(V74);
    p.feed(meta);
    p.next();
    p.endOfMessage();
    const second = encodeTokens([{ kind: 'COLMETADATA', columns: null }, { kind: 'ROW', values: [Buffer.from('hi')] }], { ...V74, columns });
    p.feed(second);
    expect(p.next()?.token).toEqual({ kind: 'COLMETADATA', columns: null });
    expect(p.next()?.token).toEqual({ kind: 'ROW', values: [Buffer.from('hi')] });
    const fresh = new TokenStreamParser(V74);
    fresh.feed(Buffer.of(TOKEN.COLMETADATA, 0xff, 0xff));
    expect(() => fresh.next()).toThrow(/NoMetaData without earlier metadata/);
  });

  it('never writes over bytes it handed out: views taken early are intact at the end', () => {
    const r = all.find((x) => x.payload.length > 30000)!;
    const p = new TokenStreamParser({ tdsVersion: r.tdsVersion, decodeRows: false, ...(r.columns ? { columns: r.columns } : {}) });
    const views: ParsedToken[] = [];
    for (let at = 0; at < r.payload.length; at += 700) {
      p.feed(r.payload.subarray(at, at + 700));
      for (let t = p.next(); t; t = p.next()) views.push(t); // no copies
    }
    p.endOfMessage();
    expectSameBuffers(views.map((t) => t.bytes), views.map((t) => r.payload.subarray(t.start, t.end)), 'token');
    // The next message starts again at offset 0.
    p.feed(Buffer.from('fd0000000000000000000000000000', 'hex').subarray(0, 13));
    expect(p.next()).toMatchObject({ start: 0, end: 13 });
  });

  it('offsets are message-relative even after the buffer is moved', () => {
    const r = all.find((x) => x.payload.length > 30000)!;
    const got = parse(r, split(r.payload, Array.from({ length: 40 }, (_, i) => (i + 1) * 1000)));
    expectSameBuffers(got.map((t) => t.bytes), got.map((t) => r.payload.subarray(t.start, t.end)), 'token');
  });
});

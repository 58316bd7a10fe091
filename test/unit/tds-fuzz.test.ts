// Fuzzing every TDS decoder, seeded with the captured and spec fixtures: random bytes and mutated
// real messages (bit flips, overwritten length fields, truncation, splicing). A decoder may reject
// input only with ProtocolError; any other exception, or one call taking too long, fails.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import * as specExamples from '../../fixtures/tds/spec-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import type { ColumnMetadata } from '../../protocols/tds/colmetadata.js';
import { Reader } from '../../protocols/tds/cursor.js';
import { decodeFedAuthFeature } from '../../protocols/tds/feature-ext.js';
import { decodeFedAuthToken } from '../../protocols/tds/fedauth-token.js';
import { decodeLogin7 } from '../../protocols/tds/login7.js';
import { MessageAssembler, PACKET_TYPE } from '../../protocols/tds/packet.js';
import { decodePrelogin } from '../../protocols/tds/prelogin.js';
import { rowValueRanges } from '../../protocols/tds/row.js';
import { decodeRpcRequest } from '../../protocols/tds/rpc-request.js';
import { decodeSqlBatch } from '../../protocols/tds/sql-batch.js';
import { TDS_VERSION } from '../../protocols/tds/tds-version.js';
import { TokenStreamParser, decodeToken, decodeTokens, encodeTokens } from '../../protocols/tds/token-stream.js';
import { sampleTokens } from './tds-support.js';
import { decodeTransMgrRequest } from '../../protocols/tds/trans-mgr-request.js';
import { describeRequest } from '../../src/tds/requests.js';
import { readTypeInfo } from '../../protocols/tds/type-info.js';
import { readValue } from '../../protocols/tds/values.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
// Generous: the machine is shared, and a GC pause is not a hang. A real hang stops the run.
const SLOW_MS = 5000;
const V74 = { tdsVersion: TDS_VERSION.V7_4 };
const V71 = { tdsVersion: TDS_VERSION.V7_1_REV1 };

/** Runs `decode`; only ProtocolError may escape, and it must be quick. */
function survives(decode: () => unknown): void {
  const t0 = performance.now();
  try {
    decode();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    expect(e.offset).toBeGreaterThanOrEqual(-1);
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS) throw new Error(`decoder took ${ms.toFixed(0)} ms`);
}

// ---- seeds ----------------------------------------------------------------------------------

interface Seeds {
  prelogin: Buffer[];
  login7: Buffer[];
  batch: Buffer[];
  rpc: Buffer[];
  transMgr: Buffer[];
  replies: { payload: Buffer; tdsVersion: number; columns: readonly ColumnMetadata[] | undefined }[];
  streams: Buffer[];
}

function collectSeeds(): Seeds {
  const s: Seeds = { prelogin: [], login7: [], batch: [], rpc: [], transMgr: [], replies: [], streams: [] };
  for (const name of Object.values(CAPTURES)) {
    for (const conn of loadCapture(name)) {
      s.streams.push(conn.clientBytes, conn.serverBytes);
      if (name.includes('tls')) continue;
      const login = conn.client.find((m) => m.type === PACKET_TYPE.LOGIN7)!;
      let tdsVersion = decodeLogin7(login.payload).tdsVersion;
      for (const m of conn.client) {
        if (m.type === PACKET_TYPE.PRELOGIN) s.prelogin.push(m.payload);
        if (m.type === PACKET_TYPE.LOGIN7) s.login7.push(m.payload);
        if (m.type === PACKET_TYPE.SQL_BATCH) s.batch.push(m.payload);
        if (m.type === PACKET_TYPE.RPC) s.rpc.push(m.payload);
        if (m.type === PACKET_TYPE.TRANSACTION_MANAGER) s.transMgr.push(m.payload);
      }
      s.prelogin.push(conn.server[0]!.payload);
      let columns: readonly ColumnMetadata[] | undefined;
      for (const m of conn.server.slice(1)) {
        s.replies.push({ payload: m.payload, tdsVersion, columns });
        for (const t of decodeTokens(m.payload, { tdsVersion, ...(columns ? { columns } : {}) })) {
          if (t.kind === 'LOGINACK') tdsVersion = t.tdsVersion;
          if (t.kind === 'COLMETADATA' && t.columns) columns = t.columns;
        }
      }
    }
  }
  s.prelogin.push(specExamples.SPEC_PRELOGIN_REQUEST.bytes.subarray(8));
  s.login7.push(specExamples.SPEC_LOGIN7.bytes.subarray(8));
  s.batch.push(specExamples.SPEC_SQL_BATCH.bytes.subarray(8));
  s.rpc.push(specExamples.SPEC_RPC_REQUEST.bytes.subarray(8));
  s.replies.push({ payload: specExamples.SPEC_BULK_LOAD.bytes.subarray(8), tdsVersion: TDS_VERSION.V7_2, columns: undefined });
  // One token of every kind (the captures hold no ORDER, TABNAME, COLINFO, SSPI, OFFSET, FEATUREEXTACK, FEDAUTHINFO or SESSIONSTATE).
  s.replies.push({ payload: encodeTokens(sampleTokens(false), V74), tdsVersion: TDS_VERSION.V7_4, columns: undefined });
  s.replies.push({ payload: encodeTokens(sampleTokens(true), V71), tdsVersion: TDS_VERSION.V7_1_REV1, columns: undefined });
  return s;
}

const seeds = collectSeeds();

// ---- mutations ------------------------------------------------------------------------------

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'field'; at: number; width: 2 | 4 | 8; value: 'zero' | 'max' | 'big' | 'rand'; rand: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'splice'; at: number; from: number; count: number; other: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('field' as const),
      at: fc.nat(),
      width: fc.constantFrom(2 as const, 4 as const, 8 as const),
      value: fc.constantFrom('zero' as const, 'max' as const, 'big' as const, 'rand' as const),
      rand: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), count: fc.integer({ min: 1, max: 64 }), other: fc.nat() }) },
);

function apply(seed: Buffer, ms: readonly Mutation[], pool: readonly Buffer[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of ms) {
    const len = b.length;
    const at = len === 0 ? 0 : m.at % len;
    switch (m.op) {
      case 'flip':
        if (len) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        if (len) b[at] = m.value;
        break;
      case 'field': {
        if (len < m.width) break;
        const p = Math.min(at, len - m.width);
        const v = m.value === 'zero' ? 0n : m.value === 'max' ? 2n ** BigInt(m.width * 8) - 1n : m.value === 'big' ? 2n ** BigInt(m.width * 8 - 1) : BigInt(m.rand);
        for (let i = 0; i < m.width; i++) b[p + i] = Number((v >> BigInt(8 * i)) & 0xffn);
        break;
      }
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case 'splice': {
        const other = pool[m.other % pool.length]!;
        const from = other.length ? m.from % other.length : 0;
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + m.count), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Mutated seeds (mostly) and plain random bytes (sometimes). */
function inputs(pool: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 0, max: pool.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([i, ms]) => apply(pool[i]!, ms, pool)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)) },
  );
}

function fuzz(pool: readonly Buffer[], run: (input: Buffer) => void, numRuns = RUNS): void {
  expect(pool.length).toBeGreaterThan(0);
  fc.assert(fc.property(inputs(pool), (input) => survives(() => run(input))), { numRuns });
}

// ---- one property per decoder ---------------------------------------------------------------

describe('fuzzing the TDS decoders (only ProtocolError may escape)', () => {
  it('PRELOGIN', () => fuzz(seeds.prelogin, (b) => decodePrelogin(b)));

  it('LOGIN7', () => fuzz(seeds.login7, (b) => decodeLogin7(b)));

  it('SQLBatch (7.4 and 7.1)', () =>
    fuzz(seeds.batch, (b) => {
      survives(() => decodeSqlBatch(b, V74));
      decodeSqlBatch(b, V71);
    }));

  it('RPC request (7.4 and 7.1)', () =>
    fuzz(seeds.rpc, (b) => {
      survives(() => decodeRpcRequest(b, V74, { maxValueLength: 1 << 20 }));
      decodeRpcRequest(b, V71, { maxValueLength: 1 << 20 });
    }));

  it('TransMgr request', () => fuzz(seeds.transMgr, (b) => decodeTransMgrRequest(b, V74)));

  it('requests as warden describes them: decoded, then classified (procedure names, statement parameters, handles, T-SQL)', () => {
    const prepared = new Map([['statement:1', { text: 'SELECT 1', classification: { ok: true as const, statements: [] } }]]);
    const opts = { tdsVersion: TDS_VERSION.V7_4, maxValueLength: 1 << 20, prepared };
    fuzz(seeds.rpc, (b) => void describeRequest(PACKET_TYPE.RPC, b, opts));
    fuzz(seeds.batch, (b) => void describeRequest(PACKET_TYPE.SQL_BATCH, b, opts));
  });

  it('FEDAUTH token message and FEDAUTH feature data', () =>
    fuzz([Buffer.from('0c000000080000006100620063006400', 'hex'), Buffer.from('03080000006100620063006400', 'hex')], (b) => {
      survives(() => decodeFedAuthToken(b));
      decodeFedAuthFeature(b);
    }));

  it('TYPE_INFO and values read straight from bytes', () =>
    fuzz(seeds.rpc, (b) => {
      const r = new Reader(b, 0, b.length);
      while (r.remaining > 0) readValue(r, readTypeInfo(r), { maxValueLength: 1 << 20, textPointers: (b[0] ?? 0) % 2 === 0 });
    }));

  it('token stream: whole replies (decodeTokens)', () => {
    const pool = seeds.replies.map((r) => r.payload);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seeds.replies.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (i, ms) => {
        const r = seeds.replies[i]!;
        const input = apply(r.payload, ms, pool);
        survives(() => decodeTokens(input, { tdsVersion: r.tdsVersion, maxTokenLength: 1 << 20, ...(r.columns ? { columns: r.columns } : {}) }));
      }),
      { numRuns: RUNS },
    );
  });

  it('token stream: mutated replies fed in random pieces, rows framed lazily and decoded later', () => {
    const pool = seeds.replies.map((r) => r.payload);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seeds.replies.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.boolean(),
        (i, ms, cuts, lazy) => {
          const r = seeds.replies[i]!;
          const input = apply(r.payload, ms, pool);
          survives(() => {
            const p = new TokenStreamParser({ tdsVersion: r.tdsVersion, decodeRows: !lazy, maxTokenLength: 1 << 20, ...(r.columns ? { columns: r.columns } : {}) });
            const points = [0, ...cuts.map((c) => c % (input.length + 1)).sort((a, b) => a - b), input.length];
            for (let k = 1; k < points.length; k++) {
              p.feed(input.subarray(points[k - 1], points[k]));
              for (let t = p.next(); t; t = p.next()) {
                if (lazy && t.columns) {
                  rowValueRanges(Buffer.from(t.bytes), t.columns, { textPointers: true });
                  decodeToken(Buffer.from(t.bytes), { tdsVersion: p.tdsVersion }, t.columns);
                }
              }
            }
            p.endOfMessage();
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('token stream: random bytes under every TDS version', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), fc.constantFrom(TDS_VERSION.V7_1_REV1, TDS_VERSION.V7_2, TDS_VERSION.V7_3B, TDS_VERSION.V7_4), (a, v) => {
        survives(() => decodeTokens(Buffer.from(a), { tdsVersion: v, maxTokenLength: 1 << 16 }));
      }),
      { numRuns: RUNS },
    );
  });

  it('message assembler on mutated captured streams', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seeds.streams.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 5000 }), (i, ms, chunk) => {
        const input = apply(seeds.streams[i]!, ms, seeds.streams);
        survives(() => {
          const a = new MessageAssembler({ maxMessageSize: 1 << 20 });
          for (let p = 0; p < input.length; p += chunk) {
            a.push(input.subarray(p, p + chunk));
            while (a.nextMessage());
          }
        });
      }),
      { numRuns: 500 },
    );
  });
});

// Client requests: SQLBatch, RPC and TransMgr from the spec examples and every capture, with the
// fields the capture notes name; exact re-encoding; round trips; malformed headers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TEDIOUS_RPC_BY_NAME, TEDIOUS_TM_BEGIN } from '../../fixtures/tds/capture-examples.js';
import { CAPTURES, type CapturedConnection, loadCapture } from '../../fixtures/tds/captures.js';
import { SPEC_RPC_REQUEST, SPEC_SQL_BATCH } from '../../fixtures/tds/spec-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import { HEADER_TYPE, type Header, transactionHeaders } from '../../protocols/tds/all-headers.js';
import { decodeLogin7 } from '../../protocols/tds/login7.js';
import { PACKET_TYPE } from '../../protocols/tds/packet.js';
import {
  PROC_ID,
  RPC_BATCH_FLAG,
  RPC_PARAM_STATUS,
  type RpcRequest,
  decodeRpcRequest,
  encodeRpcRequest,
  rpcStatementText,
} from '../../protocols/tds/rpc-request.js';
import { decodeSqlBatch, encodeSqlBatch } from '../../protocols/tds/sql-batch.js';
import { TDS_VERSION, type TdsContext } from '../../protocols/tds/tds-version.js';
import { ISOLATION_LEVEL, TM_REQUEST, decodeTransMgrRequest, encodeTransMgrRequest } from '../../protocols/tds/trans-mgr-request.js';
import { DATA_TYPE } from '../../protocols/tds/type-info.js';

const V74: TdsContext = { tdsVersion: TDS_VERSION.V7_4 };
const V72: TdsContext = { tdsVersion: TDS_VERSION.V7_2 };
const V71: TdsContext = { tdsVersion: TDS_VERSION.V7_1_REV1 };

function versionOf(conn: CapturedConnection): TdsContext {
  return { tdsVersion: decodeLogin7(conn.client.find((m) => m.type === PACKET_TYPE.LOGIN7)!.payload).tdsVersion };
}

const plain = loadCapture(CAPTURES.tediousPlain)[0]!;
const jtds = loadCapture(CAPTURES.jtds)[0]!;
const multi = loadCapture(CAPTURES.tediousMultipacket)[0]!;

describe('SQLBatch', () => {
  it('decodes the [MS-TDS] 4.6 example (ALL_HEADERS with a transaction descriptor) and re-encodes it', () => {
    const payload = SPEC_SQL_BATCH.bytes.subarray(8);
    const b = decodeSqlBatch(payload, V72);
    expect(b.sql).toBe("\nselect 'foo' as 'bar'\n        ");
    expect(b.headers).toEqual(transactionHeaders(Buffer.alloc(8), 1));
    expect(encodeSqlBatch(b, V72)).toEqual(payload);
  });

  it('decodes every captured SQLBatch, with and without ALL_HEADERS, and re-encodes it exactly', () => {
    const texts: string[] = [];
    for (const name of [CAPTURES.tediousPlain, CAPTURES.tediousMultipacket, CAPTURES.freetdsTsql, CAPTURES.jtds, CAPTURES.jtdsTds71Edge]) {
      for (const conn of loadCapture(name)) {
        const ctx = versionOf(conn);
        for (const m of conn.client.filter((x) => x.type === PACKET_TYPE.SQL_BATCH)) {
          const b = decodeSqlBatch(m.payload, ctx);
          expect(b.headers === undefined).toBe(ctx.tdsVersion === TDS_VERSION.V7_1_REV1);
          expect(encodeSqlBatch(b, ctx).equals(m.payload)).toBe(true);
          texts.push(b.sql);
        }
      }
    }
    expect(texts).toContain('SELECT * FROM customers');
    expect(texts).toContain("PRINT 'hello'");
    expect(texts.some((t) => t.startsWith('SELECT @@MAX_PRECISION'))).toBe(true); // jTDS 7.1, no ALL_HEADERS
    const long = texts.find((t) => t.length === (9270 - 22) / 2)!;
    expect(long).toMatch(/WHERE id IN \(1,.*20\) AND ssn IS NOT NULL/s);
  });

  it('round-trips any text and header set', () => {
    const header = fc.oneof(
      fc.record({
        type: fc.constant(HEADER_TYPE.TRANSACTION_DESCRIPTOR),
        transactionDescriptor: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)),
        outstandingRequestCount: fc.integer({ min: 0, max: 0xffffffff }),
      }),
      fc.record({
        type: fc.constant(HEADER_TYPE.TRACE_ACTIVITY),
        activityId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
        sequence: fc.integer({ min: 0, max: 0xffffffff }),
      }),
      fc.record(
        { type: fc.constant(HEADER_TYPE.QUERY_NOTIFICATIONS), notifyId: fc.string(), ssbDeployment: fc.string(), notifyTimeout: fc.integer({ min: 0, max: 0xffffffff }) },
        { requiredKeys: ['type', 'notifyId', 'ssbDeployment'] },
      ),
    ) as fc.Arbitrary<Header>;
    fc.assert(
      fc.property(fc.array(header, { maxLength: 3 }), fc.string({ unit: 'grapheme', maxLength: 200 }), (headers, sql) => {
        const bytes = encodeSqlBatch({ headers, sql }, V74);
        expect(decodeSqlBatch(bytes, V74)).toEqual({ headers, sql });
        expect(decodeSqlBatch(encodeSqlBatch({ sql }, V71), V71)).toEqual({ sql });
      }),
    );
  });

  it('refuses ALL_HEADERS whose lengths do not add up, and odd-length text', () => {
    const payload = Buffer.from(SPEC_SQL_BATCH.bytes.subarray(8));
    const total = Buffer.from(payload);
    total.writeUInt32LE(0x7fffffff, 0);
    expect(() => decodeSqlBatch(total, V72)).toThrow(/TotalLength/);
    const header = Buffer.from(payload);
    header.writeUInt32LE(40, 4);
    expect(() => decodeSqlBatch(header, V72)).toThrow(/HeaderLength 40/);
    const shortHeader = Buffer.from(payload);
    shortHeader.writeUInt32LE(3, 4);
    expect(() => decodeSqlBatch(shortHeader, V72)).toThrow(ProtocolError);
    expect(() => decodeSqlBatch(payload.subarray(0, payload.length - 1), V72)).toThrow(/odd byte length/);
  });
});

describe('RPC request', () => {
  it('decodes the [MS-TDS] 4.8 example: proc foo3, one default-valued unnamed INTN parameter', () => {
    const payload = SPEC_RPC_REQUEST.bytes.subarray(8);
    const r = decodeRpcRequest(payload, V72);
    expect(r.calls).toEqual([
      { procName: 'foo3', options: 0, parameters: [{ name: '', status: RPC_PARAM_STATUS.DEFAULT_VALUE, typeInfo: { type: DATA_TYPE.INTN, length: 2 }, value: null }] },
    ]);
    expect(encodeRpcRequest(r, V72)).toEqual(payload);
  });

  it('decodes tedious\'s sp_executesql with typed parameters (ProcID 10)', () => {
    const r = decodeRpcRequest(plain.client[13]!.payload, V74);
    const call = r.calls[0]!;
    expect(call.procId).toBe(PROC_ID.SP_EXECUTESQL);
    expect(call.parameters.map((p) => p.name)).toEqual(['@statement', '@params', '@id', '@name']);
    expect(rpcStatementText(call)).toBe('SELECT id, full_name, ssn, salary FROM customers WHERE id = @id OR full_name = @name');
    expect(call.parameters[2]).toMatchObject({ typeInfo: { type: DATA_TYPE.INTN, length: 4 }, value: 2 });
    expect(call.parameters[3]!.value).toBe('Hana 花子 Dummy');
  });

  it('decodes OUTPUT parameters and a decimal(12,2) parameter', () => {
    const call = decodeRpcRequest(plain.client[14]!.payload, V74).calls[0]!;
    const byName = Object.fromEntries(call.parameters.map((p) => [p.name, p]));
    expect(byName['@min']).toMatchObject({ typeInfo: { type: DATA_TYPE.DECIMALN, precision: 12, scale: 2 }, value: '100000.50' });
    expect(byName['@cnt']).toMatchObject({ status: RPC_PARAM_STATUS.BY_REF_VALUE, value: null });
    expect(byName['@label']).toMatchObject({ status: RPC_PARAM_STATUS.BY_REF_VALUE, typeInfo: { type: DATA_TYPE.NVARCHAR, length: 8000 }, value: null });
  });

  it('decodes an RPC by procedure name (dbo.count_active)', () => {
    const r = decodeRpcRequest(TEDIOUS_RPC_BY_NAME.bytes.subarray(8), V74);
    expect(r.calls[0]).toEqual({
      procName: 'dbo.count_active',
      options: 0,
      parameters: [
        { name: '@min_rank', status: 0, typeInfo: { type: DATA_TYPE.INTN, length: 2 }, value: 1000 },
        { name: '@cnt', status: RPC_PARAM_STATUS.BY_REF_VALUE, typeInfo: { type: DATA_TYPE.INTN, length: 4 }, value: null },
      ],
    });
  });

  it('decodes jTDS\'s TDS 7.1 sp_prepare (11) and sp_execute (12) with unnamed parameters', () => {
    const ctx = versionOf(jtds);
    const [prepare, exec1, exec2] = jtds.client.filter((m) => m.type === PACKET_TYPE.RPC).map((m) => decodeRpcRequest(m.payload, ctx));
    expect(prepare!.headers).toBeUndefined();
    expect(prepare!.calls[0]!.procId).toBe(PROC_ID.SP_PREPARE);
    expect(prepare!.calls[0]!.parameters.every((p) => p.name === '')).toBe(true);
    expect(prepare!.calls[0]!.parameters[0]!.status).toBe(RPC_PARAM_STATUS.BY_REF_VALUE);
    expect(rpcStatementText(prepare!.calls[0]!)).toMatch(/^SELECT id, full_name, email, ssn, card_number, salary FROM customers WHERE id <= {2}@P0 {2}ORDER BY id$/);
    expect(exec1!.calls[0]!.procId).toBe(PROC_ID.SP_EXECUTE);
    expect(exec1!.calls[0]!.parameters.map((p) => p.value)).toEqual([1, 3]);
    expect(exec2!.calls[0]!.parameters.map((p) => p.value)).toEqual([1, 1]);
  });

  it('decodes a 6 000-character nvarchar(max) parameter sent as PLP_UNKNOWN_LEN over 4 packets', () => {
    const m = multi.client.find((x) => x.type === PACKET_TYPE.RPC)!;
    expect(m.packetCount).toBe(4);
    const call = decodeRpcRequest(m.payload, V74).calls[0]!;
    const big = call.parameters.find((p) => p.name === '@big')!;
    expect(big.typeInfo).toMatchObject({ type: DATA_TYPE.NVARCHAR, length: 0xffff });
    expect(typeof big.value === 'string' && big.value.length).toBe(6000);
    expect(encodeRpcRequest(decodeRpcRequest(m.payload, V74), V74, { plpUnknownLength: true }).equals(m.payload)).toBe(true);
  });

  it('re-encodes every captured RPC byte for byte', () => {
    for (const conn of [plain, jtds, multi]) {
      const ctx = versionOf(conn);
      for (const m of conn.client.filter((x) => x.type === PACKET_TYPE.RPC)) {
        expect(encodeRpcRequest(decodeRpcRequest(m.payload, ctx), ctx, { plpUnknownLength: true }).equals(m.payload)).toBe(true);
      }
    }
  });

  it('round-trips batched calls with BatchFlag/NoExecFlag separators in 7.1 and 7.4', () => {
    const req: RpcRequest = {
      headers: transactionHeaders(),
      calls: [
        { procId: PROC_ID.SP_UNPREPARE, options: 0, parameters: [{ name: '', status: 0, typeInfo: { type: DATA_TYPE.INTN, length: 4 }, value: 7 }] },
        { procId: PROC_ID.SP_PREPEXEC, options: 2, parameters: [] },
        { procName: 'p', options: 0, parameters: [] },
      ],
      separators: [RPC_BATCH_FLAG.BATCH, RPC_BATCH_FLAG.NO_EXEC],
      trailingSeparator: RPC_BATCH_FLAG.BATCH,
    };
    expect(decodeRpcRequest(encodeRpcRequest(req, V74), V74)).toEqual(req);
    const { headers: _h, ...old } = req;
    const req71: RpcRequest = { ...old, separators: [RPC_BATCH_FLAG.BATCH_TDS71, RPC_BATCH_FLAG.BATCH_TDS71] };
    expect(decodeRpcRequest(encodeRpcRequest(req71, V71), V71)).toEqual(req71);
  });

  it('refuses encrypted parameters and truncated parameter data', () => {
    const payload = Buffer.from(TEDIOUS_RPC_BY_NAME.bytes.subarray(8));
    const statusAt = payload.indexOf(Buffer.from('@min_rank', 'utf16le')) + 18;
    payload[statusAt] = RPC_PARAM_STATUS.ENCRYPTED;
    expect(() => decodeRpcRequest(payload, V74)).toThrow(/Always Encrypted is not supported/);
    expect(() => decodeRpcRequest(TEDIOUS_RPC_BY_NAME.bytes.subarray(8, 80), V74)).toThrow(ProtocolError);
  });
});

describe('TransMgr request', () => {
  it('decodes tedious\'s TM_BEGIN_XACT "tx1" and TM_ROLLBACK_XACT, and re-encodes both', () => {
    const begin = decodeTransMgrRequest(TEDIOUS_TM_BEGIN.bytes.subarray(8), V74);
    expect(begin).toMatchObject({ requestType: TM_REQUEST.BEGIN_XACT, isolationLevel: ISOLATION_LEVEL.READ_COMMITTED, name: 'tx1' });
    expect(encodeTransMgrRequest(begin, V74)).toEqual(TEDIOUS_TM_BEGIN.bytes.subarray(8));
    const rollback = decodeTransMgrRequest(plain.client[10]!.payload, V74);
    expect(rollback).toMatchObject({ requestType: TM_REQUEST.ROLLBACK_XACT, name: '', flags: 0 });
    const descriptor = (rollback.headers![0] as { transactionDescriptor: Buffer }).transactionDescriptor;
    expect(descriptor.readBigUInt64LE(0)).toBe(0x19dn); // the descriptor ENVCHANGE 8 handed out
    expect(encodeTransMgrRequest(rollback, V74)).toEqual(plain.client[10]!.payload);
  });

  it('round-trips every request type', () => {
    const cases = [
      { requestType: TM_REQUEST.GET_DTC_ADDRESS, payload: Buffer.alloc(0) },
      { requestType: TM_REQUEST.PROPAGATE_XACT, payload: Buffer.from('cookie') },
      { requestType: TM_REQUEST.BEGIN_XACT, isolationLevel: ISOLATION_LEVEL.SNAPSHOT, name: 'ñame' },
      { requestType: TM_REQUEST.PROMOTE_XACT },
      { requestType: TM_REQUEST.COMMIT_XACT, name: 'a', flags: 1, newTransaction: { isolationLevel: 4, name: 'b' } },
      { requestType: TM_REQUEST.ROLLBACK_XACT, name: '', flags: 0 },
      { requestType: TM_REQUEST.SAVE_XACT, name: 'sp1' },
    ];
    for (const c of cases) {
      const req = { headers: transactionHeaders(), ...c };
      expect(decodeTransMgrRequest(encodeTransMgrRequest(req, V74), V74)).toEqual(req);
    }
  });

  it('refuses unknown request types and trailing bytes', () => {
    const p = Buffer.from(TEDIOUS_TM_BEGIN.bytes.subarray(8));
    p.writeUInt16LE(4, 22);
    expect(() => decodeTransMgrRequest(p, V74)).toThrow(/unknown TransMgr request type 4/);
    expect(() => decodeTransMgrRequest(Buffer.concat([TEDIOUS_TM_BEGIN.bytes.subarray(8), Buffer.of(0)]), V74)).toThrow(/trailing/);
  });
});

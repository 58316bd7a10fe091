// Transcripts of TDS RPCs through warden to the stand-in: tedious's sp_executesql parameters of the
// common types as the transcript shows them (int, bigint, decimal, nvarchar, varbinary, datetime2,
// uniqueidentifier, bit, NULL); OUTPUT parameters' values, recorded as a result of the call (they
// reach the agent like a row); and one RPC request of two calls (BatchFlag between them, as jTDS
// sends executeBatch): each call's result sets are numbered per call, from 1.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/audit/reader.js';
import type { TranscriptRecord } from '../../src/audit/frame.js';
import { defaultTranscripts } from '../../src/config/sections/transcripts.js';
import { DATA_TYPE, encodeRpcRequest, PACKET_TYPE, PROC_ID, TDS_VERSION, transactionHeaders, type RpcParameter } from '../../protocols/tds/index.js';
import { Request, type Connection } from 'tedious';
import { closeTedious, connectTedious, query, rawConnect, rawLogin, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

type Rec = TranscriptRecord<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
let h: TdsHarness;
const records: Rec[] = [];
let typed: unknown[][] = [];

const TYPED = 'SELECT @i AS i, @b AS b, @d AS d, @s AS s, @v AS v, @t AS t, @g AS g, @f AS f, @n AS n';
const CALL = (n: number): string => `SELECT ${n} AS call_${n}`;
const OUTPUT = 'SELECT @name = full_name, @rank = id * 10 FROM customers WHERE id = 4';
let outputs: Record<string, unknown> = {};

/** sp_executesql with two OUTPUT parameters; their values as tedious reports them. */
function withOutputs(c: Connection): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const got: Record<string, unknown> = {};
    const req = new Request(OUTPUT, (err) => (err ? reject(err) : resolve(got)));
    req.addOutputParameter('name', TYPES.NVarChar, null, { length: 100 });
    req.addOutputParameter('rank', TYPES.Int);
    req.on('returnValue', (name: string, value: unknown) => {
      got[name] = value;
    });
    c.execSql(req);
  });
}

beforeAll(async () => {
  h = await startTdsHarness({
    plaintextTokens: 'loopback',
    mutate: (config) => {
      config.transcripts = { ...defaultTranscripts(config.dataDir), capture: 'all', instanceId: 'tds-rpc-transcript' };
    },
  });
  const token = await h.tw.token();
  const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: token } }));
  try {
    typed = (await query(c, TYPED, [
      ['i', TYPES.Int, -7],
      ['b', TYPES.BigInt, '9007199254740993'],
      ['d', TYPES.Decimal, -1234],
      ['s', TYPES.NVarChar, "O'Brien ✓"],
      ['v', TYPES.VarBinary, Buffer.from([0xde, 0xad, 0xbe, 0xef])],
      ['t', TYPES.DateTime2, new Date('2024-02-29T13:45:07.123Z')],
      ['g', TYPES.UniqueIdentifier, '6F9619FF-8B86-D011-B42D-00C04FC964FF'],
      ['f', TYPES.Bit, true],
      ['n', TYPES.NVarChar, null],
    ])).sets[0]!.rows;
    outputs = await withOutputs(c);
  } finally {
    await closeTedious(c);
  }
  // One RPC request, two sp_executesql calls.
  const raw = await rawConnect(h.port);
  await rawLogin(raw, token);
  const stmt = (sql: string): RpcParameter => ({ name: '', status: 0, typeInfo: { type: DATA_TYPE.NVARCHAR, length: 8000, collation: { lcid: 0x409, flags: 0xd, version: 0, sortId: 52 } }, value: sql });
  raw.send(PACKET_TYPE.RPC, encodeRpcRequest({ headers: transactionHeaders(), calls: [1, 2].map((n) => ({ procId: PROC_ID.SP_EXECUTESQL, options: 0, parameters: [stmt(CALL(n))] })) }, { tdsVersion: TDS_VERSION.V7_4 }));
  await raw.next();
  raw.socket.destroy();
  await h.tw.warden.close(500);
  for await (const r of readStore(join(h.tw.dataDir, 'transcripts'))) records.push(r.record as Rec);
});

afterAll(async () => {
  await h?.stop();
});

const statementRecord = (text: string): Rec | undefined => records.find((r) => r.k === 'statement' && r.d.text === text);
const statement = (text: string): Rec['d'] | undefined => statementRecord(text)?.d;
/** The results of a statement record (statement ids count per session). */
const resultsOf = (st: Rec): Rec['d'][] => records.filter((r) => r.k === 'result' && r.sid === st.sid && r.d.st === st.d.st).map((r) => r.d);

describe('RPC parameters in the transcript', () => {
  it('shows each common type as T-SQL would write the value', () => {
    expect(typed).toHaveLength(1);
    expect(statement(TYPED)!.params).toEqual([
      { name: '@i', type: 'int', value: '-7' },
      { name: '@b', type: 'bigint', value: '9007199254740993' },
      { name: '@d', type: 'decimal(18,0)', value: '-1234' },
      { name: '@s', type: expect.stringMatching(/^nvarchar\(\d+\)$/), value: "O'Brien ✓" },
      { name: '@v', type: expect.stringMatching(/^varbinary\(\d+\)$/), value: '0xdeadbeef' },
      { name: '@t', type: 'datetime2(7)', value: '2024-02-29T13:45:07.1230000' },
      { name: '@g', type: 'uniqueidentifier', value: expect.stringMatching(/^6F9619FF-8B86-D011-B42D-00C04FC964FF$/i) },
      { name: '@f', type: 'bit', value: '1' },
      { name: '@n', type: expect.stringMatching(/^nvarchar\(\d+\)$/), value: null },
    ]);
  });
});

describe('output parameters in the transcript', () => {
  it('records the values the agent received as a RETURNVALUE result of the call', () => {
    expect(outputs.rank).toBe(40);
    const st = statementRecord(OUTPUT)!;
    expect(st.d.params).toEqual([{ name: '@name', type: 'nvarchar(100)', value: null }, { name: '@rank', type: 'int', value: null }]);
    const returned = resultsOf(st).find((r) => r.tag === 'RETURNVALUE');
    expect(returned).toMatchObject({
      rows: 1,
      columns: [{ name: '@name', type: 'nvarchar(100)' }, { name: '@rank', type: 'int' }],
      capture: { mode: 'all', rows: [[String(outputs.name), '40']] },
    });
  });
});

describe('result sets of a request of several RPC calls', () => {
  it('are numbered per call, each call\'s result under its own statement', () => {
    const [first, second] = [statementRecord(CALL(1)), statementRecord(CALL(2))];
    expect(first!.sid).toBe(second!.sid);
    expect(resultsOf(first!)).toEqual([expect.objectContaining({ rows: 1, columns: [expect.objectContaining({ name: 'call_1' })] })]);
    const [r2] = resultsOf(second!);
    expect(r2).toMatchObject({ rows: 1, columns: [{ name: 'call_2' }] });
    // The first result set of the second call is its set 1 (no `set` field), not set 2.
    expect(r2!.set).toBeUndefined();
  });
});

// The stand-in against the captures in fixtures/captures/: the clients' own recorded bytes
// (tedious 19 and jTDS 1.3.1 talking to Babelfish) are replayed message by message, and the
// stand-in's answers must have the captured server's token sequence: the same tokens in the same
// order, DONE status/CurCmd/row count, RETURNSTATUS, RETURNVALUE names and values, column names,
// ROW vs NBCROW and the row values themselves (the shop rows are the captures' rows).
// Where the stand-in follows SQL Server instead of Babelfish, the test says so (README "Babelfish
// is not SQL Server"). Then what needs a raw client: transaction descriptors and ATTENTION.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPTURES, loadCapture } from '../../fixtures/tds/captures.js';
import {
  type Token,
  DONE_STATUS,
  ENVCHANGE_TYPE,
  PACKET_STATUS,
  PACKET_TYPE,
  TDS_VERSION,
  TM_REQUEST,
  decodePrelogin,
  decodeTokens,
  encodeSqlBatch,
  encodeTransMgrRequest,
  packetize,
  transactionHeaders,
} from '../../protocols/tds/index.js';
import { RawTds, type StandInHarness, startStandIn } from './standin-support.js';

/** The captures' login (README: a throwaway local account). */
const CAPTURED_LOGIN = { user: 'babelfish_user', password: '12345678' };

let h: StandInHarness;

beforeAll(async () => {
  // Without a certificate, like the captured server: the clients' plaintext LOGIN7s replay as they are.
  h = await startStandIn('captures', { logins: [CAPTURED_LOGIN] }, false);
});

afterAll(async () => {
  await h?.stop();
});

function normalize(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  // PostgreSQL's timestamptz keeps the instant, not the offset it was written with: the
  // stand-in sends every datetimeoffset at +00:00 (Babelfish kept the original offsets).
  if (typeof v === 'object' && v !== null && 'kind' in v && v.kind === 'datetimeoffset') {
    const { days, ticks } = v as unknown as { days: number; ticks: number };
    return { kind: 'datetimeoffset', days, ticks };
  }
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  return v;
}

function sevenDigits(v: unknown): unknown {
  const m = typeof v === 'string' ? /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d+))?$/.exec(v) : null;
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(7, '0')}` : v;
}

/** What must match, token by token. */
function summary(tokens: readonly Token[]): unknown[] {
  return tokens.map((t) => {
    switch (t.kind) {
      case 'COLMETADATA':
        return [t.kind, t.columns?.map((c) => c.name)];
      case 'ROW':
      case 'NBCROW':
        return [t.kind, t.values.map(normalize)];
      case 'DONE':
      case 'DONEPROC':
      case 'DONEINPROC':
        return [t.kind, t.status, t.curCmd, Number(t.rowCount)];
      case 'RETURNSTATUS':
        return [t.kind, t.value];
      case 'RETURNVALUE':
        return [t.kind, t.name, normalize(t.value)];
      case 'ERROR':
        return [t.kind, t.number, t.class];
      case 'ENVCHANGE':
        return [t.kind, t.type];
      case 'LOGINACK':
        return [t.kind, t.tdsVersion];
      default:
        return [t.kind];
    }
  });
}

interface Replay {
  readonly name: string;
  readonly capture: string;
  /** Indexes of the client messages to replay, in order. */
  readonly messages: readonly number[];
  /** Babelfish answers that SQL Server (and so the stand-in) gives differently: index -> fix. */
  readonly sqlServerDiffers?: Readonly<Record<number, (s: unknown[]) => unknown[]>>;
}

const REPLAYS: readonly Replay[] = [
  {
    name: 'tedious, TDS 7.4',
    capture: CAPTURES.tediousPlain,
    // login, set-up batch, SELECT *, two result sets, 1/0, unknown table, PRINT, and the three RPCs
    // (sp_executesql with rows, sp_executesql with OUTPUT parameters, dbo.count_active).
    messages: [0, 1, 2, 3, 4, 5, 6, 7, 13, 14, 15],
    sqlServerDiffers: {
      // An unknown table is SQL Server's error 208 in a DONE for the SELECT; Babelfish says 33557097.
      6: () => [['ERROR', 208, 16], ['DONE', DONE_STATUS.ERROR, 0xc1, 0]],
    },
  },
  {
    name: 'jTDS, TDS 7.1',
    capture: CAPTURES.jtds,
    // login with packet size 0, set-up batch, sp_prepare, sp_execute twice, date types as text.
    messages: [0, 1, 2, 3, 4, 5, 6],
    sqlServerDiffers: {
      // SELECT @@MAX_PRECISION: SQL Server names no column; Babelfish calls it max_precision.
      2: (s) => s.map((t, k) => (k === 0 ? ['COLMETADATA', ['']] : t)),
      // datetime2 as text to a TDS 7.1 client: SQL Server writes all 7 fraction digits
      // ("2024-01-01 00:00:00.0629070"); Babelfish writes PostgreSQL's text.
      6: (s) => s.map((t) => (Array.isArray(t) && t[0] === 'ROW' ? ['ROW', (t[1] as unknown[]).map(sevenDigits)] : t)),
    },
  },
  {
    name: 'tedious, multi-packet messages',
    capture: CAPTURES.tediousMultipacket,
    // a 3-packet SQLBatch, a 4-packet RPC with a PLP_UNKNOWN_LEN nvarchar(max) parameter, a 40 000-byte PLP value.
    messages: [0, 1, 2, 3, 4, 5],
  },
];

describe.each(REPLAYS)('replaying the $name capture', ({ capture, messages, sqlServerDiffers }) => {
  it("answers every request with the captured server's token sequence", async () => {
    const conn = loadCapture(capture)[0]!;
    const raw = await RawTds.connect(h.port);
    let version: number = TDS_VERSION.V7_4;
    try {
      for (const i of messages) {
        const request = conn.client[i]!;
        raw.send(request.wire);
        const ours = await raw.next();
        const theirs = conn.server[i]!;
        expect(ours.type, `answer to client message ${i}`).toBe(PACKET_TYPE.TABULAR_RESULT);
        if (request.type === PACKET_TYPE.PRELOGIN) {
          expect(decodePrelogin(ours.payload).encryption).toBe(decodePrelogin(theirs.payload).encryption);
          continue;
        }
        if (request.type === PACKET_TYPE.LOGIN7) version = request.payload.readUInt32LE(4);
        const mine = summary(decodeTokens(ours.payload, { tdsVersion: version }));
        let expected = summary(decodeTokens(theirs.payload, { tdsVersion: version }));
        expected = sqlServerDiffers?.[i]?.(expected) ?? expected;
        expect(mine, `answer to client message ${i}`).toEqual(expected);
      }
    } finally {
      raw.close();
    }
  });
});

describe('raw TDS: transactions, descriptors and ATTENTION', () => {
  let raw: RawTds;
  const ctx = { tdsVersion: TDS_VERSION.V7_4 };
  const batch = (sql: string, descriptor = Buffer.alloc(8)): Buffer =>
    packetize(PACKET_TYPE.SQL_BATCH, encodeSqlBatch({ headers: transactionHeaders(descriptor), sql }, ctx), 4096);
  const tokens = async (): Promise<Token[]> => decodeTokens((await raw.next()).payload, ctx);

  beforeAll(async () => {
    raw = await RawTds.connect(h.port);
    const tedious = loadCapture(CAPTURES.tediousPlain)[0]!;
    raw.send(tedious.client[0]!.wire); // PRELOGIN
    await raw.next();
    raw.send(tedious.client[1]!.wire); // LOGIN7
    await raw.next();
  });

  afterAll(() => raw?.close());

  it('TransMgr BEGIN announces a descriptor; only that descriptor (or none) is accepted until ROLLBACK', async () => {
    raw.send(
      packetize(
        PACKET_TYPE.TRANSACTION_MANAGER,
        encodeTransMgrRequest({ headers: transactionHeaders(), requestType: TM_REQUEST.BEGIN_XACT, isolationLevel: 2, name: 'tx1' }, ctx),
        4096,
      ),
    );
    const begin = await tokens();
    const env = begin.find((t) => t.kind === 'ENVCHANGE' && t.type === ENVCHANGE_TYPE.BEGIN_TRANSACTION);
    expect(env?.kind === 'ENVCHANGE' && env.format === 'bytes' ? env.newValue.length : 0).toBe(8);
    const descriptor = Buffer.from(env?.kind === 'ENVCHANGE' && env.format === 'bytes' ? env.newValue : Buffer.alloc(8));

    raw.send(batch('SELECT @@TRANCOUNT AS n', descriptor));
    expect(summary(await tokens())).toEqual([['COLMETADATA', ['n']], ['ROW', [1]], ['DONE', DONE_STATUS.COUNT, 0xc1, 1]]);

    const stale = Buffer.from(descriptor);
    stale[0] = stale[0]! ^ 0xff;
    raw.send(batch('SELECT 1 AS never', stale));
    const refused = await tokens();
    expect(summary(refused)).toEqual([['ERROR', 3971, 16], ['DONE', DONE_STATUS.ERROR, 0, 0]]);

    raw.send(
      packetize(
        PACKET_TYPE.TRANSACTION_MANAGER,
        encodeTransMgrRequest({ headers: transactionHeaders(descriptor), requestType: TM_REQUEST.ROLLBACK_XACT, name: '', flags: 0 }, ctx),
        4096,
      ),
    );
    const rollback = await tokens();
    expect(rollback[0]).toEqual({ kind: 'ENVCHANGE', format: 'bytes', type: ENVCHANGE_TYPE.ROLLBACK_TRANSACTION, newValue: Buffer.alloc(0), oldValue: descriptor });
    expect(summary(rollback).slice(1)).toEqual([['DONE', DONE_STATUS.FINAL, 0xd2, 0]]);

    // The old descriptor now names no transaction.
    raw.send(batch('SELECT 1 AS never', descriptor));
    expect(summary(await tokens())[0]).toEqual(['ERROR', 3971, 16]);
  });

  it('T-SQL BEGIN TRAN / COMMIT announce ENVCHANGE 8 and 9, as SQL Server does (Babelfish sends none)', async () => {
    raw.send(batch('BEGIN TRAN; SELECT 1 AS inside; COMMIT'));
    const kinds = (await tokens()).map((t) => (t.kind === 'ENVCHANGE' ? `ENVCHANGE ${t.type}` : t.kind));
    expect(kinds).toEqual(['ENVCHANGE 8', 'DONE', 'COLMETADATA', 'ROW', 'DONE', 'ENVCHANGE 9', 'DONE']);
  });

  it('ATTENTION while idle is acknowledged at once with DONE_ATTN', async () => {
    raw.send(Buffer.from([PACKET_TYPE.ATTENTION, PACKET_STATUS.EOM, 0, 8, 0, 0, 1, 0]));
    expect(summary(await tokens())).toEqual([['DONE', DONE_STATUS.ATTN, 0xfd, 0]]);
  });

  it('ATTENTION during a pg_sleep ends the response, then acknowledges in a message of its own', async () => {
    const started = Date.now();
    raw.send(batch('SELECT 1 AS slept FROM (SELECT pg_sleep(30) AS x) s'));
    await new Promise((r) => setTimeout(r, 500));
    raw.send(Buffer.from([PACKET_TYPE.ATTENTION, PACKET_STATUS.EOM, 0, 8, 0, 0, 1, 0]));
    const response = await tokens();
    expect(response.some((t) => t.kind === 'ROW')).toBe(false);
    expect(summary(await tokens())).toEqual([['DONE', DONE_STATUS.ATTN, 0xfd, 0]]);
    expect(Date.now() - started).toBeLessThan(10_000);
    raw.send(batch('SELECT 2 AS after'));
    expect(summary(await tokens())).toEqual([['COLMETADATA', ['after']], ['ROW', [2]], ['DONE', DONE_STATUS.COUNT, 0xc1, 1]]);
  });

  it('response packets carry the session SPID and EOM on the last one only', async () => {
    raw.send(batch('SELECT REPLICATE(CAST(N\'ab\' AS nvarchar(max)), 20000) AS long_text'));
    const m = await raw.next();
    expect(m.packetCount).toBeGreaterThan(10);
    expect(m.spid).toBeGreaterThanOrEqual(51);
    expect(m.lastStatus & PACKET_STATUS.EOM).toBe(PACKET_STATUS.EOM);
  });
});

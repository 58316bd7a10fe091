// Server tokens: every captured response decoded message by message with the fields the capture
// notes name, re-encoded byte for byte, and round trips for every token kind in TDS 7.1 and 7.4.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BABELFISH_ATTENTION_ACK,
  BABELFISH_BEGIN_REPLY,
  BABELFISH_ERROR_REPLY,
  BABELFISH_LOGIN_RESPONSE,
  BABELFISH_RPC_REPLY,
  BABELFISH_TDS71_LOGIN_RESPONSE,
} from '../../fixtures/tds/capture-examples.js';
import { CAPTURES, type CapturedConnection, loadCapture } from '../../fixtures/tds/captures.js';
import { SPEC_BULK_LOAD } from '../../fixtures/tds/spec-examples.js';
import { ProtocolError } from '../../protocols/errors.js';
import type { ColumnMetadata } from '../../protocols/tds/colmetadata.js';
import { COLUMN_FLAG } from '../../protocols/tds/colmetadata.js';
import { DONE_STATUS, type DoneToken } from '../../protocols/tds/done.js';
import { ENVCHANGE_TYPE, type EnvChangeToken } from '../../protocols/tds/envchange.js';
import { fedAuthInfoStrings } from '../../protocols/tds/fedauthinfo.js';
import { decodeLogin7 } from '../../protocols/tds/login7.js';
import { PACKET_TYPE } from '../../protocols/tds/packet.js';
import { TDS_VERSION } from '../../protocols/tds/tds-version.js';
import { decodeToken, decodeTokens, encodeToken, encodeTokens } from '../../protocols/tds/token-stream.js';
import type { Token } from '../../protocols/tds/tokens.js';
import { DATA_TYPE, type TypeInfo } from '../../protocols/tds/type-info.js';
import type { Value } from '../../protocols/tds/values.js';
import { sampleTokens, valueCases } from './tds-support.js';

const V74 = { tdsVersion: TDS_VERSION.V7_4 };
const V71 = { tdsVersion: TDS_VERSION.V7_1_REV1 };
/** How Babelfish lays out what the spec leaves open: minimal decimal lengths, 32 000-byte PLP chunks. */
const BABELFISH = { decimalLength: 'minimal', plpChunkSize: 32000 } as const;

type Kind = Token['kind'];
const kinds = (ts: readonly Token[]): Kind[] => ts.map((t) => t.kind);
/** Tokens of one kind (an intersection, not Extract: INFO/ERROR and the DONEs share interfaces). */
const only = <K extends Kind>(ts: readonly Token[], k: K): (Token & { kind: K })[] =>
  ts.filter((t): t is Token & { kind: K } => t.kind === k);

/** Decodes every server message after PRELOGIN, following the login's TDS version. */
function responses(conn: CapturedConnection): Token[][] {
  let tdsVersion = decodeLogin7(conn.client.find((m) => m.type === PACKET_TYPE.LOGIN7)!.payload).tdsVersion;
  let columns: readonly ColumnMetadata[] | undefined;
  return conn.server.slice(1).map((m) => {
    const tokens = decodeTokens(m.payload, { tdsVersion, ...(columns ? { columns } : {}) });
    for (const t of tokens) {
      if (t.kind === 'LOGINACK') tdsVersion = t.tdsVersion;
      if (t.kind === 'COLMETADATA' && t.columns) columns = t.columns;
    }
    return tokens;
  });
}

const plain = loadCapture(CAPTURES.tediousPlain)[0]!;
const plainR = responses(plain);

describe('captured login responses', () => {
  it('tedious/Babelfish: database shop, language, collation, LOGINACK 7.4, DONE', () => {
    const ts = decodeTokens(BABELFISH_LOGIN_RESPONSE.bytes.subarray(8), V74);
    expect(kinds(ts)).toEqual(['ENVCHANGE', 'INFO', 'ENVCHANGE', 'INFO', 'ENVCHANGE', 'LOGINACK', 'DONE']);
    const env = only(ts, 'ENVCHANGE');
    expect(env[0]).toEqual({ kind: 'ENVCHANGE', format: 'text', type: ENVCHANGE_TYPE.DATABASE, newValue: 'shop', oldValue: '' });
    expect(env[1]).toMatchObject({ type: ENVCHANGE_TYPE.LANGUAGE, newValue: 'us_english', oldValue: 'us_english' });
    expect(env[2]).toMatchObject({ type: ENVCHANGE_TYPE.SQL_COLLATION, newValue: Buffer.from('0904d00034', 'hex') });
    expect(only(ts, 'INFO').map((i) => [i.number, i.class, i.message])).toEqual([
      [0, 0, "Changed database context to 'shop'."],
      [5703, 10, "Changed language setting to 'us_english'"],
    ]);
    expect(only(ts, 'LOGINACK')[0]).toEqual({
      kind: 'LOGINACK',
      interface: 1,
      tdsVersion: TDS_VERSION.V7_4,
      progName: 'Microsoft SQL Server',
      progVersion: { major: 12, minor: 0, buildHi: 0x07, buildLow: 0xd0 },
    });
    expect(encodeTokens(ts, V74)).toEqual(BABELFISH_LOGIN_RESPONSE.bytes.subarray(8));
  });

  it('jTDS/Babelfish in TDS 7.1: packet-size ENVCHANGE, USHORT line number, 4-byte DONE count', () => {
    const ts = decodeTokens(BABELFISH_TDS71_LOGIN_RESPONSE.bytes.subarray(8), V71);
    expect(kinds(ts)).toEqual(['ENVCHANGE', 'ENVCHANGE', 'INFO', 'ENVCHANGE', 'LOGINACK', 'DONE']);
    expect(ts[0]).toMatchObject({ type: ENVCHANGE_TYPE.PACKET_SIZE, newValue: '4096', oldValue: '4096' });
    expect(only(ts, 'LOGINACK')[0]!.tdsVersion).toBe(TDS_VERSION.V7_1_REV1);
    expect(encodeTokens(ts, V71)).toEqual(BABELFISH_TDS71_LOGIN_RESPONSE.bytes.subarray(8));
    // The same bytes read as 7.4 do not add up: the version matters.
    expect(() => decodeTokens(BABELFISH_TDS71_LOGIN_RESPONSE.bytes.subarray(8), V74)).toThrow(ProtocolError);
  });
});

describe('the 17-column customers result (tedious frames 14-15)', () => {
  const ts = plainR[2]!;
  const meta = only(ts, 'COLMETADATA')[0]!.columns!;
  const rows = ts.filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW') as { kind: 'ROW' | 'NBCROW'; values: readonly Value[] }[];

  it('describes every column with its name and type', () => {
    expect(meta.map((c) => c.name)).toEqual([
      'id', 'full_name', 'email', 'ssn', 'card_number', 'salary', 'balance', 'birth_date', 'created_at',
      'last_login', 'is_active', 'notes', 'avatar', 'external_id', 'score', 'rank', 'big',
    ]);
    expect(meta.map((c) => c.typeInfo.type)).toEqual([
      DATA_TYPE.INTN, DATA_TYPE.NVARCHAR, DATA_TYPE.BIGVARCHR, DATA_TYPE.BIGCHAR, DATA_TYPE.BIGVARCHR,
      DATA_TYPE.NUMERICN, DATA_TYPE.MONEYN, DATA_TYPE.DATEN, DATA_TYPE.DATETIME2N, DATA_TYPE.DATETIMEOFFSETN,
      DATA_TYPE.BITN, DATA_TYPE.NVARCHAR, DATA_TYPE.BIGVARBIN, DATA_TYPE.GUID, DATA_TYPE.FLTN, DATA_TYPE.INTN, DATA_TYPE.INTN,
    ]);
    expect(meta[5]!.typeInfo).toMatchObject({ precision: 12, scale: 2 });
    expect(meta[11]!.typeInfo.length).toBe(0xffff);
    expect(meta.every((c) => c.flags === (COLUMN_FLAG.NULLABLE | 0x0008))).toBe(true); // 0x0009, README point 5
  });

  it('carries 20 rows, 8 as ROW and 12 as NBCROW, and DONE with COUNT 20', () => {
    expect(rows).toHaveLength(20);
    expect(rows.filter((r) => r.kind === 'ROW')).toHaveLength(8);
    expect(rows.map((r) => r.values[0])).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(ts.at(-1)).toEqual({ kind: 'DONE', status: DONE_STATUS.COUNT, curCmd: 0xc1, rowCount: 20n });
  });

  it('decodes row values exactly: names, card numbers, decimals, dates, GUIDs', () => {
    const r1 = rows[0]!.values;
    expect(r1.slice(0, 7)).toEqual([1, 'Alice Testperson', 'alice.testperson1@example.com', '941-74-7468', '4111111111111111', '42657.09', '47931.9548']);
    expect(r1[7]).toEqual(new Date('1953-09-07T00:00:00Z'));
    expect(r1[8]).toEqual({ kind: 'datetime2', days: 738885, ticks: 629_070 }); // 2024-01-01 00:00:00.062907
    expect(r1[9]).toEqual({ kind: 'datetimeoffset', days: 739260, ticks: 9_301_234_570, offsetMinutes: 0 });
    expect(r1[10]).toBe(false);
    expect(r1[11]).toBe('VIP customer. Prefers contact by email. Ünïcødé ✓ 日本語');
    expect((r1[12] as Buffer).subarray(0, 4).toString('hex')).toBe('89504e47');
    expect(r1[13]).toBe('3D9C1724-11E2-4B8F-AB0D-549B6F03675A');
    const cards = rows.map((r) => r.values[4]).filter((v) => v !== null);
    expect(cards).toEqual(expect.arrayContaining(['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117']));
    expect(rows.map((r) => r.values[1])).toContain('Hana 花子 Dummy');
    expect((rows[1]!.values[11] as string).length).toBeGreaterThan(500);
    for (const id of [16, 18, 20]) {
      const v = rows[id - 1]!;
      expect(v.kind).toBe('NBCROW');
      expect(v.values.filter((x) => x !== null)).toHaveLength(2);
    }
  });
});

describe('every captured response', () => {
  it('tedious plain: result sets, errors, transactions, RPC output, attention', () => {
    expect(plainR.map(kinds).map((k) => k.join(' '))).toEqual([
      'ENVCHANGE INFO ENVCHANGE INFO ENVCHANGE LOGINACK DONE',
      `${'DONE '.repeat(9)}ENVCHANGE INFO${' DONE'.repeat(6)}`,
      `COLMETADATA ${plainR[2]!.slice(1, -1).map((t) => t.kind).join(' ')} DONE`,
      'COLMETADATA ROW ROW ROW DONE COLMETADATA ROW DONE',
      'ERROR DONE',
      'ERROR DONE',
      'INFO DONE',
      'DONE DONE ENVCHANGE DONE',
      'DONE',
      'DONE ENVCHANGE DONE',
      'DONE DONE DONE',
      'COLMETADATA ROW DONE',
      'COLMETADATA ROW ROW DONEINPROC RETURNSTATUS DONEPROC',
      'DONEINPROC DONEINPROC RETURNSTATUS RETURNVALUE RETURNVALUE DONEPROC',
      'DONEINPROC RETURNSTATUS RETURNVALUE DONEPROC',
      'ERROR DONE',
      'COLMETADATA ROW DONE',
      'DONE',
      'COLMETADATA ROW DONE',
    ]);
    const dones = only(plainR[3]!, 'DONE');
    expect(dones.map((d) => [d.status, d.rowCount])).toEqual([
      [DONE_STATUS.MORE | DONE_STATUS.COUNT, 3n],
      [DONE_STATUS.COUNT, 1n],
    ]);
    expect(only(plainR[4]!, 'ERROR')[0]).toMatchObject({ number: 8134, class: 16, message: 'division by zero' });
    expect(only(plainR[4]!, 'DONE')[0]).toMatchObject({ status: DONE_STATUS.ERROR, curCmd: 0xc1 });
    expect(only(plainR[5]!, 'ERROR')[0]).toMatchObject({ number: 33557097, message: 'relation "no_such_table" does not exist' });
    expect(only(plainR[6]!, 'INFO')[0]).toMatchObject({ number: 0, class: 0, message: 'hello' });
    const begin = only(plainR[7]!, 'ENVCHANGE')[0] as Extract<EnvChangeToken, { format: 'bytes' }>;
    expect(begin.type).toBe(ENVCHANGE_TYPE.BEGIN_TRANSACTION);
    expect(begin.newValue.readBigUInt64LE(0)).toBe(0x19dn);
    const rollback = only(plainR[9]!, 'ENVCHANGE')[0] as Extract<EnvChangeToken, { format: 'bytes' }>;
    expect(rollback.type).toBe(ENVCHANGE_TYPE.ROLLBACK_TRANSACTION);
    expect(rollback.oldValue).toEqual(begin.newValue);
    expect(only(plainR[12]!, 'ROW').map((r) => r.values.slice(0, 2))).toEqual([[2, 'Bob Example'], [8, 'Hana 花子 Dummy']]);
    expect(only(plainR[13]!, 'RETURNVALUE').map((r) => [r.ordinal, r.name, r.status, r.value])).toEqual([
      [3, '@cnt', 1, 9],
      [4, '@label', 1, 'over 100000.50'],
    ]);
    expect(only(plainR[14]!, 'RETURNSTATUS')[0]!.value).toBe(7);
    expect(only(plainR[17]!, 'DONE')[0]).toEqual({ kind: 'DONE', status: DONE_STATUS.ATTN, curCmd: 0xfd, rowCount: 0n });
  });

  it('multipacket: a 40 000-byte PLP value over 10 packets in 2 chunks', () => {
    const conn = loadCapture(CAPTURES.tediousMultipacket)[0]!;
    const r = responses(conn);
    const last = r.at(-1)!;
    const v = only(last, 'ROW')[0]!.values[0] as string;
    expect(v.length).toBe(20000);
    expect(v).toBe('ab'.repeat(10000));
    expect(only(r[2]!, 'ROW').length + only(r[2]!, 'NBCROW').length).toBe(12);
    expect(only(r[2]!, 'DONE')[0]!.rowCount).toBe(12n);
  });

  it('FreeTDS: the same customers result and @@VERSION as nvarchar(max)', () => {
    const r = responses(loadCapture(CAPTURES.freetdsTsql)[0]!);
    expect(kinds(r[1]!)).toEqual(kinds(plainR[2]!));
    const version = only(r[2]!, 'ROW')[0]!.values[0] as string;
    expect(version).toMatch(/^Babelfish for PostgreSQL with SQL Server Compatibility - 12\.0\.2000\.8/);
    expect(version).toContain('PostgreSQL 16.4 on x86_64-pc-linux-gnu (Babelfish 4.4.0)');
  });

  it('jTDS TDS 7.1: sp_prepare metadata and handle, NVARCHAR dates, plain ROWs with NULLs', () => {
    const r = responses(loadCapture(CAPTURES.jtds)[0]!);
    expect(kinds(r[2]!)).toEqual(['COLMETADATA', 'RETURNSTATUS', 'RETURNVALUE', 'DONEPROC']);
    expect(only(r[2]!, 'RETURNVALUE')[0]).toMatchObject({ name: '', status: 1, value: 1 });
    expect(only(r[3]!, 'ROW').map((x) => x.values[0])).toEqual([1, 2, 3]);
    const last = r.at(-1)!;
    const meta = only(last, 'COLMETADATA')[0]!.columns!;
    expect(meta.map((c) => c.name)).toEqual(['id', 'full_name', 'birth_date', 'created_at', 'is_active', 'external_id', 'score', 'balance', 'big']);
    expect(meta[2]!.typeInfo.type).toBe(DATA_TYPE.NVARCHAR); // date sent as text to a 7.1 client
    const rows = only(last, 'ROW');
    expect(rows).toHaveLength(3);
    expect(rows[0]!.values[2]).toBe('1953-09-07');
    expect(rows[2]!.values.filter((v) => v !== null)).toEqual([16, rows[2]!.values[1]]);
    expect(only(last, 'NBCROW')).toHaveLength(0);
    expect(only(last, 'DONE')[0]!.rowCount).toBe(3n);
  });

  it('jTDS edge case: a PLP nvarchar(max) sent to a TDS 7.1 client still decodes', () => {
    const [first] = loadCapture(CAPTURES.jtdsTds71Edge);
    const r = responses(first!);
    const meta = only(r[2]!, 'COLMETADATA')[0]!.columns!;
    expect(meta[0]!.typeInfo).toMatchObject({ type: DATA_TYPE.NVARCHAR, length: 0xffff });
    expect(only(r[2]!, 'ROW')[0]!.values[0]).toBe('VIP customer. Prefers contact by email. Ünïcødé ✓ 日本語');
  });

  it('re-encodes every captured server message byte for byte', () => {
    let count = 0;
    for (const name of Object.values(CAPTURES).filter((c) => !c.includes('tls'))) {
      for (const conn of loadCapture(name)) {
        let tdsVersion = decodeLogin7(conn.client.find((m) => m.type === PACKET_TYPE.LOGIN7)!.payload).tdsVersion;
        let columns: readonly ColumnMetadata[] | undefined;
        for (const m of conn.server.slice(1)) {
          const ctx = { tdsVersion, ...(columns ? { columns } : {}) };
          const tokens = decodeTokens(m.payload, ctx);
          const again = encodeTokens(tokens, { ...ctx, ...BABELFISH });
          expect(again.equals(m.payload), `${name} server message ${m.index}`).toBe(true);
          for (const t of tokens) {
            if (t.kind === 'LOGINACK') tdsVersion = t.tdsVersion;
            if (t.kind === 'COLMETADATA' && t.columns) columns = t.columns;
          }
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(40);
  });

  it('reads the fixtures of single replies (begin transaction, RPC, error, attention)', () => {
    const t = (f: { bytes: Buffer }) => decodeTokens(f.bytes.subarray(8), V74);
    expect(kinds(t(BABELFISH_BEGIN_REPLY))).toEqual(['DONE', 'DONE', 'ENVCHANGE', 'DONE']);
    expect(only(t(BABELFISH_RPC_REPLY), 'RETURNVALUE')[0]!.value).toBe(9);
    expect(only(t(BABELFISH_ERROR_REPLY), 'ERROR')[0]!.lineNumber).toBe(1);
    expect(only(t(BABELFISH_ATTENTION_ACK), 'DONE')[0]!.status).toBe(DONE_STATUS.ATTN);
  });

  it('decodes the [MS-TDS] 4.12 token example (COLMETADATA BIT, ROW, DONE)', () => {
    const payload = SPEC_BULK_LOAD.bytes.subarray(8);
    const ts = decodeTokens(payload, { tdsVersion: TDS_VERSION.V7_2 });
    expect(ts).toEqual([
      { kind: 'COLMETADATA', columns: [{ userType: 0, flags: 5, typeInfo: { type: DATA_TYPE.BIT }, name: 'c1' }] },
      { kind: 'ROW', values: [false] },
      { kind: 'DONE', status: 0, curCmd: 0, rowCount: 0n },
    ]);
    expect(encodeTokens(ts, { tdsVersion: TDS_VERSION.V7_2 })).toEqual(payload);
  });
});

// ---- round trips for every token kind -------------------------------------------------------

describe('round trips for every token kind', () => {
  for (const [label, ctx, v71] of [['TDS 7.4', V74, false], ['TDS 7.1', V71, true]] as const) {
    it(`${label}: decode(encode(tokens)) = tokens, one by one and as a stream`, () => {
      const tokens = sampleTokens(v71);
      const bytes = encodeTokens(tokens, ctx);
      expect(decodeTokens(bytes, ctx)).toEqual(tokens);
      expect(encodeTokens(decodeTokens(bytes, ctx), ctx).equals(bytes)).toBe(true);
      const columns = only(tokens, 'COLMETADATA')[0]!.columns!;
      for (const t of tokens) {
        const one = encodeToken(t, ctx, columns);
        expect(decodeToken(one, ctx, columns)).toEqual(t);
      }
    });
  }

  it('the FEDAUTHINFO strings come back as text', () => {
    const t = sampleTokens(false).find((x) => x.kind === 'FEDAUTHINFO') as Extract<Token, { kind: 'FEDAUTHINFO' }>;
    expect(fedAuthInfoStrings(decodeToken(encodeToken(t, V74), V74) as typeof t)).toEqual({ stsUrl: 'https://login.example/', spn: 'https://db/' });
  });

  it('random INFO/ERROR/DONE/ENVCHANGE tokens round-trip in both versions', () => {
    const info = fc.record({
      kind: fc.constantFrom('INFO' as const, 'ERROR' as const),
      number: fc.integer(),
      state: fc.integer({ min: 0, max: 255 }),
      class: fc.integer({ min: 0, max: 25 }),
      message: fc.string({ maxLength: 300 }),
      serverName: fc.string({ maxLength: 30 }),
      procName: fc.string({ maxLength: 30 }),
      lineNumber: fc.integer({ min: 0, max: 65535 }),
    });
    const done = fc.record({
      kind: fc.constantFrom('DONE' as const, 'DONEPROC' as const, 'DONEINPROC' as const),
      status: fc.integer({ min: 0, max: 0xffff }),
      curCmd: fc.integer({ min: 0, max: 0xffff }),
      rowCount: fc.bigInt({ min: 0n, max: 0xffffffffn }),
    }) as fc.Arbitrary<DoneToken>;
    const env = fc.record({
      kind: fc.constant('ENVCHANGE' as const),
      format: fc.constant('text' as const),
      type: fc.constantFrom(1, 2, 3, 4, 5, 6, 13, 19),
      newValue: fc.string({ maxLength: 60 }),
      oldValue: fc.string({ maxLength: 60 }),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(info, done, env), { maxLength: 8 }), fc.boolean(), (tokens, old) => {
        const ctx = old ? V71 : V74;
        expect(decodeTokens(encodeTokens(tokens, ctx), ctx)).toEqual(tokens);
      }),
    );
  });

  it('random result sets (any column types, ROW and NBCROW) round-trip', () => {
    const column = fc.constantFrom(...valueCases.filter((c) => c.ti !== undefined)).chain((c) => {
      const tiArb = 'type' in c.ti ? fc.constant(c.ti as TypeInfo) : (c.ti as fc.Arbitrary<TypeInfo>);
      return tiArb.map((ti) => ({ ti, value: c.value(ti) }));
    });
    const resultSet = fc.array(column, { minLength: 1, maxLength: 12 }).chain((cols) => {
      const metadata: ColumnMetadata[] = cols.map((c, i) => ({
        userType: 0,
        flags: COLUMN_FLAG.NULLABLE,
        typeInfo: c.ti,
        ...([DATA_TYPE.TEXT, DATA_TYPE.NTEXT, DATA_TYPE.IMAGE].includes(c.ti.type as 0x23) ? { tableName: ['dbo', 't'] } : {}),
        name: `c${i}`,
      }));
      const row = fc.tuple(...cols.map((c) => c.value)).chain((values) => fc.constantFrom<Token>({ kind: 'ROW', values }, { kind: 'NBCROW', values }));
      return fc.tuple(fc.constant(metadata), fc.array(row, { maxLength: 4 }));
    });
    fc.assert(
      fc.property(resultSet, ([columns, rows]) => {
        const tokens: Token[] = [{ kind: 'COLMETADATA', columns }, ...rows, { kind: 'DONE', status: DONE_STATUS.COUNT, curCmd: 0xc1, rowCount: BigInt(rows.length) }];
        const bytes = encodeTokens(tokens, V74);
        const back = decodeTokens(bytes, V74);
        expect(back).toEqual(tokens);
        expect(encodeTokens(back, V74).equals(bytes)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses tokens this codec cannot frame, and ROW before COLMETADATA', () => {
    expect(() => decodeTokens(Buffer.of(0x88, 0, 0), V74)).toThrow(/ALTMETADATA tokens are not supported/);
    expect(() => decodeTokens(Buffer.of(0x12), V74)).toThrow(/unknown token type 0x12/);
    expect(() => decodeTokens(Buffer.of(0xd1, 0), V74)).toThrow(/ROW without a preceding COLMETADATA/);
    const encrypted = encodeTokens([{ kind: 'COLMETADATA', columns: [{ userType: 0, flags: 0, typeInfo: { type: DATA_TYPE.INT4 }, name: 'x' }] }], V74);
    encrypted.writeUInt16LE(COLUMN_FLAG.ENCRYPTED, 7);
    expect(() => decodeTokens(encrypted, V74)).toThrow(/Always Encrypted is not supported/);
  });
});

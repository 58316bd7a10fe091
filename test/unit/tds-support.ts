// Shared by the TDS tests: value generators for every data type, and fast buffer comparison.
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Collation } from '../../protocols/tds/collation.js';
import { DATA_TYPE, type TypeInfo } from '../../protocols/tds/type-info.js';
import type { Value, ValueOptions } from '../../protocols/tds/values.js';
import { COLUMN_FLAG, type ColumnMetadata } from '../../protocols/tds/colmetadata.js';
import { DONE_STATUS } from '../../protocols/tds/done.js';
import { ENVCHANGE_TYPE } from '../../protocols/tds/envchange.js';
import { FEATURE_ID } from '../../protocols/tds/feature-ext.js';
import { FEDAUTHINFO_ID } from '../../protocols/tds/fedauthinfo.js';
import { TDS_VERSION } from '../../protocols/tds/tds-version.js';
import type { Token } from '../../protocols/tds/tokens.js';

export const LATIN1_CI_AS: Collation = { lcid: 0x0409, flags: 0x0d, version: 0, sortId: 52 };
export const UTF8: Collation = { lcid: 0x0409, flags: 0x40 | 0x0d, version: 2, sortId: 0 };

/** Compares buffer lists without vitest's slow byte-by-byte deep equality; names the first difference. */
export function expectSameBuffers(got: readonly Buffer[], expected: readonly Buffer[], what = 'item'): void {
  expect(got.length).toBe(expected.length);
  const bad = got.findIndex((b, i) => !b.equals(expected[i]!));
  expect(bad, bad >= 0 ? `${what} ${bad} differs` : '').toBe(-1);
}

// ---- round trips for every type -------------------------------------------------------------

export const bytesArb = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
export const nullable = <T extends Value>(a: fc.Arbitrary<T>): fc.Arbitrary<Value> => fc.option(a, { nil: null, freq: 5 });
const decimalText = (precision: number, scale: number) =>
  fc
    .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** BigInt(precision) - 1n }))
    .map(([neg, m]) => {
      const digits = m.toString().padStart(scale + 1, '0');
      const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
      return neg ? `-${text}` : text;
    });
const ticks = fc.integer({ min: 0, max: 863_999_999_999 });
const days = fc.integer({ min: 0, max: 3_652_058 });
/** datetime values: days since 1900 (1753..9999) and 1/300 s ticks, as the wire holds them. */
const datetimes = fc
  .tuple(fc.integer({ min: -53_690, max: 2_958_463 }), fc.integer({ min: 0, max: 25_919_999 }))
  .map(([d, t]) => new Date((d - 25_567) * 86_400_000 + Math.round((t * 10) / 3)));

export interface Case {
  readonly name: string;
  readonly ti: TypeInfo | fc.Arbitrary<TypeInfo>;
  readonly value: (ti: TypeInfo) => fc.Arbitrary<Value>;
  readonly opts?: ValueOptions;
}

export const valueCases: Case[] = [
  { name: 'tinyint (INT1)', ti: { type: DATA_TYPE.INT1 }, value: () => fc.integer({ min: 0, max: 255 }) },
  { name: 'smallint (INT2)', ti: { type: DATA_TYPE.INT2 }, value: () => fc.integer({ min: -32768, max: 32767 }) },
  { name: 'int (INT4)', ti: { type: DATA_TYPE.INT4 }, value: () => fc.integer() },
  { name: 'bigint (INT8)', ti: { type: DATA_TYPE.INT8 }, value: () => fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) },
  { name: 'INTN 1', ti: { type: DATA_TYPE.INTN, length: 1 }, value: () => nullable(fc.integer({ min: 0, max: 255 })) },
  { name: 'INTN 2', ti: { type: DATA_TYPE.INTN, length: 2 }, value: () => nullable(fc.integer({ min: -32768, max: 32767 })) },
  { name: 'INTN 4', ti: { type: DATA_TYPE.INTN, length: 4 }, value: () => nullable(fc.integer()) },
  { name: 'INTN 8', ti: { type: DATA_TYPE.INTN, length: 8 }, value: () => nullable(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })) },
  { name: 'bit', ti: { type: DATA_TYPE.BIT }, value: () => fc.boolean() },
  { name: 'BITN', ti: { type: DATA_TYPE.BITN, length: 1 }, value: () => nullable(fc.boolean()) },
  { name: 'real (FLT4)', ti: { type: DATA_TYPE.FLT4 }, value: () => fc.float({ noNaN: true }) },
  { name: 'float (FLT8)', ti: { type: DATA_TYPE.FLT8 }, value: () => fc.double({ noNaN: true }) },
  { name: 'FLTN 4', ti: { type: DATA_TYPE.FLTN, length: 4 }, value: () => nullable(fc.float({ noNaN: true })) },
  { name: 'FLTN 8', ti: { type: DATA_TYPE.FLTN, length: 8 }, value: () => nullable(fc.double({ noNaN: true })) },
  { name: 'money', ti: { type: DATA_TYPE.MONEY }, value: () => decimalText(18, 4).filter((s) => !s.startsWith('-0.0000')) },
  { name: 'MONEYN 4', ti: { type: DATA_TYPE.MONEYN, length: 4 }, value: () => nullable(fc.integer().map((n) => (n < 0 ? '-' : '') + (Math.abs(n) / 10000).toFixed(4))) },
  { name: 'MONEYN 8', ti: { type: DATA_TYPE.MONEYN, length: 8 }, value: () => nullable(decimalText(18, 4).filter((s) => !s.startsWith('-0.0000'))) },
  {
    name: 'DECIMALN/NUMERICN',
    ti: fc.integer({ min: 1, max: 38 }).chain((precision) =>
      fc.record({
        type: fc.constantFrom(DATA_TYPE.DECIMALN, DATA_TYPE.NUMERICN),
        length: fc.constant(precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17),
        precision: fc.constant(precision),
        scale: fc.integer({ min: 0, max: precision }),
      }),
    ),
    value: (ti) => nullable(decimalText(ti.precision!, ti.scale!)),
  },
  { name: 'date', ti: { type: DATA_TYPE.DATEN }, value: () => nullable(days.map((d) => new Date((d - 719_162) * 86_400_000))) },
  {
    name: 'time(n)',
    ti: fc.integer({ min: 0, max: 7 }).map((scale) => ({ type: DATA_TYPE.TIMEN, scale })),
    value: (ti) => nullable(ticks.map((t) => ({ kind: 'time' as const, ticks: t - (t % 10 ** (7 - ti.scale!)) }))),
  },
  {
    name: 'datetime2(n)',
    ti: fc.integer({ min: 0, max: 7 }).map((scale) => ({ type: DATA_TYPE.DATETIME2N, scale })),
    value: (ti) => nullable(fc.record({ kind: fc.constant('datetime2' as const), days, ticks: ticks.map((t) => t - (t % 10 ** (7 - ti.scale!))) })),
  },
  {
    name: 'datetimeoffset(n)',
    ti: fc.integer({ min: 0, max: 7 }).map((scale) => ({ type: DATA_TYPE.DATETIMEOFFSETN, scale })),
    value: (ti) =>
      nullable(
        fc.record({
          kind: fc.constant('datetimeoffset' as const),
          days,
          ticks: ticks.map((t) => t - (t % 10 ** (7 - ti.scale!))),
          offsetMinutes: fc.integer({ min: -840, max: 840 }),
        }),
      ),
  },
  { name: 'datetime', ti: { type: DATA_TYPE.DATETIME }, value: () => datetimes },
  { name: 'DATETIMN 8', ti: { type: DATA_TYPE.DATETIMN, length: 8 }, value: () => nullable(datetimes) },
  {
    name: 'smalldatetime (DATETIMN 4)',
    ti: { type: DATA_TYPE.DATETIMN, length: 4 },
    value: () => nullable(fc.integer({ min: 0, max: 65535 * 1440 - 1 }).map((min) => new Date(Date.UTC(1900, 0, 1) + min * 60_000))),
  },
  {
    name: 'uniqueidentifier',
    ti: { type: DATA_TYPE.GUID, length: 16 },
    value: () => nullable(fc.uuid().map((u) => u.toUpperCase())),
  },
  {
    name: 'char/varchar (CP1252)',
    ti: fc.record({ type: fc.constantFrom(DATA_TYPE.BIGCHAR, DATA_TYPE.BIGVARCHR), length: fc.constant(8000), collation: fc.constant(LATIN1_CI_AS) }),
    value: () => nullable(fc.string({ unit: fc.constantFrom(...'abcXYZ019 éüñ€ŠœŸ—…'), maxLength: 50 })),
  },
  {
    name: 'varchar (UTF-8 collation)',
    ti: { type: DATA_TYPE.BIGVARCHR, length: 8000, collation: UTF8 },
    value: () => nullable(fc.string({ unit: 'grapheme', maxLength: 30 })),
  },
  {
    name: 'nchar/nvarchar',
    ti: fc.record({ type: fc.constantFrom(DATA_TYPE.NCHAR, DATA_TYPE.NVARCHAR), length: fc.constant(8000), collation: fc.constant(LATIN1_CI_AS) }),
    value: () => nullable(fc.string({ unit: 'binary', maxLength: 50 })),
  },
  {
    name: 'nvarchar(max) PLP',
    ti: { type: DATA_TYPE.NVARCHAR, length: 0xffff, collation: LATIN1_CI_AS },
    value: () => nullable(fc.string({ unit: 'binary', maxLength: 300 })),
    opts: { plpChunkSize: 64 },
  },
  { name: 'varchar(max) PLP', ti: { type: DATA_TYPE.BIGVARCHR, length: 0xffff, collation: LATIN1_CI_AS }, value: () => nullable(fc.string({ maxLength: 100 })) },
  {
    name: 'binary/varbinary',
    ti: fc.record({ type: fc.constantFrom(DATA_TYPE.BIGBINARY, DATA_TYPE.BIGVARBIN), length: fc.constant(8000) }),
    value: () => nullable(bytesArb(100)),
  },
  { name: 'varbinary(max) PLP', ti: { type: DATA_TYPE.BIGVARBIN, length: 0xffff }, value: () => nullable(bytesArb(200)), opts: { plpUnknownLength: true } },
  { name: 'image (row)', ti: { type: DATA_TYPE.IMAGE, length: 0x7fffffff }, value: () => nullable(bytesArb(50)), opts: { textPointers: true } },
  { name: 'text (parameter)', ti: { type: DATA_TYPE.TEXT, length: 0x7fffffff, collation: LATIN1_CI_AS }, value: () => nullable(fc.string({ maxLength: 50 })) },
  { name: 'xml', ti: { type: DATA_TYPE.XML }, value: () => nullable(fc.string({ maxLength: 50 }).map((s) => `<a>${s.replace(/[<&]/g, '')}</a>`)) },
  {
    name: 'udt',
    ti: { type: DATA_TYPE.UDT, length: 0xffff, udt: { dbName: 'shop', schemaName: 'sys', typeName: 'hierarchyid', assemblyName: 'Microsoft.SqlServer.Types' } },
    value: () => nullable(bytesArb(20)),
  },
  { name: 'sql_variant (raw)', ti: { type: DATA_TYPE.SSVARIANT, length: 8016 }, value: () => nullable(bytesArb(20).filter((b) => b.length > 0)) },
  { name: 'legacy varbinary', ti: { type: DATA_TYPE.VARBINARY, length: 255 }, value: () => nullable(bytesArb(255).filter((b) => b.length > 0)) },
  { name: 'NULL type', ti: { type: DATA_TYPE.NULL }, value: () => fc.constant(null) },
];

const nvarcharInfo = (length: number): TypeInfo => ({ type: DATA_TYPE.NVARCHAR, length, collation: LATIN1_CI_AS });

/** One token of every kind, for round trips and as fuzz seeds (the 7.4-only kinds when not `v71`). */
export function sampleTokens(v71: boolean): Token[] {
  const columns: ColumnMetadata[] = [
    { userType: 0, flags: COLUMN_FLAG.NULLABLE, typeInfo: { type: DATA_TYPE.INTN, length: 4 }, name: 'id' },
    { userType: 7, flags: 0, typeInfo: nvarcharInfo(20), name: 'name' },
    { userType: 0, flags: 1, typeInfo: { type: DATA_TYPE.NTEXT, length: 0x7ffffffe, collation: LATIN1_CI_AS }, tableName: v71 ? ['t'] : ['dbo', 't'], name: 'memo' },
  ];
  const tokens: Token[] = [
    { kind: 'ENVCHANGE', format: 'text', type: ENVCHANGE_TYPE.DATABASE, newValue: 'shop', oldValue: 'master' },
    { kind: 'ENVCHANGE', format: 'bytes', type: ENVCHANGE_TYPE.COMMIT_TRANSACTION, newValue: Buffer.alloc(0), oldValue: Buffer.alloc(8, 1) },
    { kind: 'ENVCHANGE', format: 'bytes', type: ENVCHANGE_TYPE.RESET_CONNECTION_ACK, newValue: Buffer.alloc(0), oldValue: Buffer.alloc(0) },
    { kind: 'ENVCHANGE', format: 'long', type: 15, newValue: Buffer.alloc(300, 2), oldValue: Buffer.alloc(0) },
    { kind: 'ENVCHANGE', format: 'routing', type: 20, routing: { protocol: 0, port: 1433, server: 'replica.example' }, oldValue: Buffer.alloc(0) },
    { kind: 'ENVCHANGE', format: 'raw', type: 99, data: Buffer.from('opaque') },
    { kind: 'LOGINACK', interface: 1, tdsVersion: v71 ? TDS_VERSION.V7_1_REV1 : TDS_VERSION.V7_4, progName: 'warden', progVersion: { major: 16, minor: 0, buildHi: 1, buildLow: 2 } },
    { kind: 'INFO', number: 5701, state: 2, class: 0, message: 'Changed database context', serverName: 'srv', procName: '', lineNumber: 1 },
    { kind: 'ERROR', number: -1, state: 1, class: 16, message: 'denied by policy', serverName: 'warden', procName: 'p', lineNumber: 65535 },
    { kind: 'COLMETADATA', columns },
    { kind: 'ORDER', columns: [1, 3] },
    { kind: 'TABNAME', tables: v71 ? [['customers']] : [['dbo', 'customers'], ['x']] },
    { kind: 'COLINFO', columns: [{ column: 1, table: 1, status: 0x08 }, { column: 2, table: 1, status: 0x20, name: 'full_name' }] },
    { kind: 'ROW', values: [1, 'Ada', 'long text'] },
    { kind: 'ROW', values: [null, null, null] },
    { kind: 'COLMETADATA', columns: null },
    { kind: 'RETURNSTATUS', value: -6 },
    { kind: 'RETURNVALUE', ordinal: 1, name: '@out', status: 1, userType: 0, flags: 9, typeInfo: nvarcharInfo(8000), value: 'x' },
    { kind: 'SSPI', data: Buffer.from('4e544c4d53535000', 'hex') },
    { kind: 'OFFSET', identifier: 1, offsetLength: 7 },
    { kind: 'DONEINPROC', status: DONE_STATUS.MORE | DONE_STATUS.COUNT, curCmd: 0xc1, rowCount: 2n },
    { kind: 'DONEPROC', status: DONE_STATUS.MORE | DONE_STATUS.INXACT, curCmd: 0xe0, rowCount: 0n },
    { kind: 'DONE', status: DONE_STATUS.ERROR | DONE_STATUS.SRVERROR, curCmd: 0, rowCount: v71 ? 0xffffffffn : 2n ** 40n },
  ];
  if (!v71) {
    tokens.push(
      { kind: 'NBCROW', values: [5, null, 'x'] },
      { kind: 'FEATUREEXTACK', features: [{ featureId: FEATURE_ID.UTF8_SUPPORT, data: Buffer.of(1) }, { featureId: FEATURE_ID.FEDAUTH, data: Buffer.alloc(0) }] },
      { kind: 'FEDAUTHINFO', options: [{ id: FEDAUTHINFO_ID.STSURL, data: Buffer.from('https://login.example/', 'utf16le') }, { id: FEDAUTHINFO_ID.SPN, data: Buffer.from('https://db/', 'utf16le') }] },
      { kind: 'SESSIONSTATE', data: Buffer.from('0102030405', 'hex') },
    );
  }
  return tokens;
}

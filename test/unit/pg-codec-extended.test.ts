// The PostgreSQL codec against captured extended-protocol traffic (fixtures/pg/captures, see its
// README): node-postgres, pgJDBC with binary transfer, and pgbench -M extended.
import { describe, expect, it } from 'vitest';
import { loadCapture } from '../../fixtures/pg/captures.js';
import { splitMessages } from '../../protocols/postgres/scanner.js';
import { ErrorField, FormatCode, TransactionStatus } from '../../protocols/postgres/codes.js';
import { formatAt, type Bind } from '../../protocols/postgres/frontend-messages.js';
import { decodeStartupPacket } from '../../protocols/postgres/startup-message.js';
import type { FieldDescription } from '../../protocols/postgres/backend-messages.js';
import { decodeBackend, decodeFrontend, letters, type BackendMessage, type FrontendMessage } from '../helpers/pg-codec.js';
import { binaryToText, TypeOid } from '../helpers/pg-binary.js';

const text = (b: Buffer | null | undefined): string | null => (b ? b.toString('utf8') : null);

function only<T extends { type: string }, K extends T['type']>(msgs: readonly T[], type: K): Extract<T, { type: K }>[] {
  return msgs.filter((m): m is Extract<T, { type: K }> => m.type === type);
}

/** The server's replies, one array per ReadyForQuery (each ends with its Z). */
function cycles(msgs: readonly BackendMessage[]): BackendMessage[][] {
  const out: BackendMessage[][] = [[]];
  for (const m of msgs) {
    (out.at(-1) as BackendMessage[]).push(m);
    if (m.type === 'ReadyForQuery') out.push([]);
  }
  return out.filter((c) => c.length > 0);
}

/** customers rows 1–20 in text format, from psql's SELECT * (pg-psql.pcap, frame 11), by id. */
function psqlRows(): { fields: FieldDescription[]; rows: Map<string, (string | null)[]> } {
  const [conn] = loadCapture('pg-psql.pcap');
  const msgs = splitMessages(conn?.server ?? Buffer.alloc(0)).map(decodeBackend);
  const fields = only(msgs, 'RowDescription')[0]?.fields ?? [];
  const rows = new Map<string, (string | null)[]>();
  for (const r of only(msgs, 'DataRow').slice(0, 20)) rows.set(text(r.values[0]) as string, r.values.map(text));
  return { fields, rows };
}

/** A DataRow rendered as text, decoding each binary field with its column's type. */
function rowAsText(values: readonly (Buffer | null)[], fields: readonly FieldDescription[], formats: readonly number[]): (string | null)[] {
  return values.map((v, i) => {
    if (v === null) return null;
    const f = fields[i] as FieldDescription;
    return formatAt(formats, i) === FormatCode.binary ? binaryToText(f.typeOid, v) : v.toString('utf8');
  });
}

describe('pg-node-postgres.pcap: node-postgres 8.23 extended protocol', () => {
  const [conn] = loadCapture('pg-node-postgres.pcap');
  if (!conn) throw new Error('no connection');
  const clientRaw = splitMessages(conn.client);
  const client = clientRaw.map(decodeFrontend);
  const server = splitMessages(conn.server).map(decodeBackend);
  const replies = cycles(server).slice(1); // [0] is the login
  const binds = only(client, 'Bind').map((b) => b.value);
  const parses = only(client, 'Parse').map((p) => p.value);
  const reference = psqlRows();

  it('frame 4: StartupMessage adds client_encoding=UTF8', () => {
    const startup = decodeStartupPacket(conn.startupPackets[0] as Buffer);
    expect(startup.kind === 'startup' && Object.fromEntries(startup.params)).toEqual({
      user: 'postgres',
      database: 'shop',
      application_name: 'node-postgres-capture',
      client_encoding: 'UTF8',
    });
  });

  it('each parameterised query is Parse/Bind/Describe(portal)/Execute/Sync; the named statement is re-bound without Parse', () => {
    expect(letters(clientRaw)).toBe('PBDES' + 'PBDES' + 'BDES' + 'PBDES' + 'PBDES' + 'PBDES' + 'Q' + 'PBDES' + 'Q' + 'PBDES' + 'X');
    expect(parses[0]).toEqual({
      name: '',
      sql: 'SELECT id, full_name, ssn, card_number, salary FROM customers WHERE id = $1 OR email = $2',
      paramTypes: [],
    });
    expect(binds[0]).toMatchObject({ portal: '', statement: '', paramFormats: [0, 0], resultFormats: [0] });
    expect(binds[0]?.params.map(text)).toEqual(['3', 'bob.example2@example.com']);
    expect(only(client, 'Describe')[0]?.value).toEqual({ kind: 'portal', name: '' });
    expect(only(client, 'Execute')[0]?.value).toEqual({ portal: '', maxRows: 0 });
    expect(parses[1]?.name).toBe('by_rank');
    expect(binds.slice(1, 3).map((b) => [b.statement, text(b.params[0])])).toEqual([
      ['by_rank', '20000'],
      ['by_rank', '30000'],
    ]);
    expect(replies.slice(0, 3).map((r) => r.map((m) => m.type).filter((t) => t !== 'DataRow'))).toEqual([
      ['ParseComplete', 'BindComplete', 'RowDescription', 'CommandComplete', 'ReadyForQuery'],
      ['ParseComplete', 'BindComplete', 'RowDescription', 'CommandComplete', 'ReadyForQuery'],
      ['BindComplete', 'RowDescription', 'CommandComplete', 'ReadyForQuery'],
    ]);
    expect(only(replies[1] ?? [], 'DataRow').map((r) => r.values.map(text))).toEqual([
      ['5', 'Eve Demo', '23894', '-42'],
      ['8', 'Hana 花子 Dummy', '23959', '1234567890123'],
      ['11', 'Kenji Testperson', '25558', '1234567890123'],
      ['12', 'Lena Example', '23945', '1234567890123'],
    ]);
    expect(only(replies[2] ?? [], 'CommandComplete')[0]?.tag).toBe('SELECT 0');
  });

  it('frame 14: a text array parameter; the 3 rows of all 17 columns equal psql’s text rows', () => {
    expect(text(binds[3]?.params[0])).toBe('{"1","2","16"}');
    const rows = only(replies[3] ?? [], 'DataRow').map((r) => r.values.map(text));
    expect(rows).toEqual(['1', '2', '16'].map((id) => reference.rows.get(id)));
  });

  it('frame 16: binary result format; every binary value renders to psql’s text for it', () => {
    expect(binds[4]?.resultFormats).toEqual([FormatCode.binary]);
    const reply = replies[4] ?? [];
    const fields = only(reply, 'RowDescription')[0]?.fields ?? [];
    expect(fields.map((f) => [f.name, f.typeOid, f.format])).toEqual([
      ['id', TypeOid.int4, 1],
      ['salary', TypeOid.numeric, 1],
      ['birth_date', TypeOid.date, 1],
      ['last_login', TypeOid.timestamptz, 1],
      ['is_active', TypeOid.bool, 1],
      ['avatar', TypeOid.bytea, 1],
      ['external_id', TypeOid.uuid, 1],
      ['score', TypeOid.float8, 1],
    ]);
    const rows = only(reply, 'DataRow').map((r) => rowAsText(r.values, fields, [FormatCode.binary]));
    expect(rows).toEqual(
      ['1', '2'].map((id) => fields.map((f) => reference.rows.get(id)?.[f.columnAttr - 1] ?? null)),
    );
    expect(only(reply, 'DataRow')[0]?.values[0]?.toString('hex')).toBe('00000001');
  });

  it('frames 18–20: 22P02 at Bind after ParseComplete; Describe/Execute are skipped until Sync', () => {
    expect(text(binds[5]?.params[0])).toBe('not-a-number');
    const reply = replies[5] ?? [];
    expect(reply.map((m) => m.type)).toEqual(['ParseComplete', 'ErrorResponse', 'ReadyForQuery']);
    const err = reply[1];
    expect(err?.type === 'ErrorResponse' && [err.fields.get(ErrorField.code), err.fields.get(ErrorField.message)]).toEqual([
      '22P02',
      'invalid input syntax for type integer: "not-a-number"',
    ]);
    expect(err?.type === 'ErrorResponse' && err.fields.get(ErrorField.where)).toBe("unnamed portal parameter $1 = '...'");
  });

  it('frames 22–27: BEGIN / INSERT … RETURNING / ROLLBACK move the transaction status I → T → I', () => {
    expect(only(client, 'Query').map((q) => q.sql)).toEqual(['BEGIN', 'ROLLBACK']);
    const statuses = only(server, 'ReadyForQuery').map((z) => String.fromCharCode(z.status));
    expect(statuses.join('')).toBe('IIIIIIITTII');
    expect(binds[6]?.params.map(text)).toEqual(['Node Rollback', 'node.rb@example.com', '900-55-1234', '5105105105105100']);
    expect(only(replies[7] ?? [], 'CommandComplete')[0]?.tag).toBe('INSERT 0 1');
  });

  it('frame 28: a NULL parameter is length -1', () => {
    const last = binds.at(-1) as Bind;
    expect(last.params).toEqual([null]);
    const bytes = clientRaw.filter((m) => m[0] === 0x42).at(-1) as Buffer;
    expect(bytes.includes(Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xff]))).toBe(true); // count 1, length -1
    expect(only(replies.at(-1) ?? [], 'DataRow')[0]?.values.map(text)).toEqual(['22']);
  });
});

describe('pg-pgjdbc.pcap: pgJDBC 42.5.5, prepareThreshold=1, binaryTransfer=true', () => {
  const [conn] = loadCapture('pg-pgjdbc.pcap');
  if (!conn) throw new Error('no connection');
  const clientRaw = splitMessages(conn.client);
  const client = clientRaw.map(decodeFrontend);
  const server = splitMessages(conn.server).map(decodeBackend);
  const replies = cycles(server).slice(1);
  const binds = only(client, 'Bind').map((b) => b.value);
  const reference = psqlRows();

  it('frame 4: startup parameters', () => {
    const startup = decodeStartupPacket(conn.startupPackets[0] as Buffer);
    expect(startup.kind === 'startup' && Object.fromEntries(startup.params)).toEqual({
      user: 'postgres',
      database: 'shop',
      client_encoding: 'UTF8',
      DateStyle: 'ISO',
      TimeZone: 'Etc/UTC',
      extra_float_digits: '2',
    });
  });

  it('frames 8–11: SET as Parse/Bind/Execute(maxRows 1)/Sync; a ParameterStatus arrives mid-reply', () => {
    expect(letters(clientRaw.slice(0, 8))).toBe('PBESPBES');
    expect(only(client, 'Execute')[0]?.value).toEqual({ portal: '', maxRows: 1 });
    expect(replies[1]?.map((m) => m.type)).toEqual(['ParseComplete', 'BindComplete', 'CommandComplete', 'ParameterStatus', 'ReadyForQuery']);
    expect(replies[1]?.[3]).toEqual({ type: 'ParameterStatus', name: 'application_name', value: 'pgjdbc-capture' });
  });

  it('frame 12: Parse S_1 with typed parameters; Bind formats binary, text', () => {
    const s1 = only(client, 'Parse')[2]?.value;
    expect(s1?.name).toBe('S_1');
    expect(s1?.paramTypes).toEqual([TypeOid.int4, TypeOid.varchar]);
    expect(binds[2]).toMatchObject({ statement: 'S_1', paramFormats: [FormatCode.binary, FormatCode.text], resultFormats: [] });
    expect(binds[2]?.params.map((p) => p?.toString('hex'))).toEqual(['00000002', Buffer.from('nobody').toString('hex')]);
  });

  it('frames 14–17: re-executions without Parse or Describe; every DataRow mixes binary and text fields', () => {
    expect(letters(clientRaw.slice(13, 19))).toBe('BESBES');
    const mixed = [1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1];
    expect(binds[3]?.resultFormats).toEqual(mixed);
    expect(binds[4]?.resultFormats).toEqual(mixed);
    expect(binds.slice(3, 5).map((b) => b.params[0]?.readInt32BE(0))).toEqual([3, 16]);
    // The text-format execution (frame 13) carries the RowDescription the later ones rely on.
    const fields = only(replies[2] ?? [], 'RowDescription')[0]?.fields ?? [];
    expect(fields.map((f) => f.name)).toEqual([
      'id',
      'full_name',
      'ssn',
      'card_number',
      'salary',
      'birth_date',
      'created_at',
      'last_login',
      'is_active',
      'avatar',
      'external_id',
      'score',
      'rank',
      'big',
    ]);
    const textRows = only(replies[2] ?? [], 'DataRow').map((r) => r.values.map(text));
    const binaryRows = only(replies[4] ?? [], 'DataRow').map((r) => rowAsText(r.values, fields, mixed));
    expect(binaryRows).toHaveLength(16);
    expect(binaryRows.slice(0, 2)).toEqual(textRows);
    // … and equal psql's text rows, column for column.
    for (const row of binaryRows) {
      const ref = reference.rows.get(row[0] as string);
      expect(row).toEqual(fields.map((f) => ref?.[f.columnAttr - 1] ?? null));
    }
    const first = only(replies[4] ?? [], 'DataRow')[0];
    expect(first?.values[0]?.toString('hex')).toBe('00000001'); // int4, binary
    expect(first?.values[1]?.toString('utf8')).toBe('Alice Testperson'); // varchar, text
    expect(first?.values[16 - 3]?.readBigInt64BE(0)).toBe(9007199254740993n); // bigint, binary
  });

  it('frames 18–19: BEGIN, then Parse S_3 + Describe(statement) → ParameterDescription and NoData under one Sync', () => {
    expect(letters(clientRaw.slice(19, 25))).toBe('PBEPDS');
    expect(only(client, 'Describe').find((d) => d.value.kind === 'statement')?.value).toEqual({ kind: 'statement', name: 'S_3' });
    expect(replies[5]?.map((m) => m.type)).toEqual([
      'ParseComplete',
      'BindComplete',
      'CommandComplete',
      'ParseComplete',
      'ParameterDescription',
      'NoData',
      'ReadyForQuery',
    ]);
    expect(only(replies[5] ?? [], 'ParameterDescription')[0]?.types).toEqual([1043, 1043, 1043, 1043, TypeOid.numeric]);
    expect(only(replies[5] ?? [], 'ReadyForQuery')[0]?.status).toBe(TransactionStatus.inTransaction);
  });

  it('frames 20–21: executeBatch is 3 × Bind/Describe/Execute under a single Sync', () => {
    expect(letters(clientRaw.slice(25, 35))).toBe('BDEBDEBDES');
    const batch = binds.slice(6, 9);
    expect(batch.map((b) => b.paramFormats)).toEqual([[0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]);
    expect(batch.map((b) => text(b.params[0]))).toEqual(['JDBC Batch 1', 'JDBC Batch 2', 'JDBC Batch 3']);
    // salary as binary numeric: ndigits 2, weight 0, sign +, dscale 2, base-10000 digits 1000 | 5100 …
    expect(batch[0]?.params[4]?.toString('hex')).toBe('0002000000000002' + '03e8' + '13ec');
    expect(batch.map((b) => binaryToText(TypeOid.numeric, b.params[4] as Buffer))).toEqual(['1000.51', '1000.52', '1000.53']);
    expect(replies[6]?.map((m) => m.type).join(' ')).toBe(
      'BindComplete NoData CommandComplete BindComplete NoData CommandComplete BindComplete NoData CommandComplete ReadyForQuery',
    );
  });

  it('frames 22–25: ROLLBACK (S_4) and SELECT count(*) (S_5) → 22', () => {
    expect(only(client, 'Parse').slice(5).map((p) => [p.value.name, p.value.sql])).toEqual([
      ['S_4', 'ROLLBACK'],
      ['S_5', 'SELECT count(*) FROM customers'],
    ]);
    expect(only(replies.at(-1) ?? [], 'DataRow')[0]?.values.map(text)).toEqual(['22']);
  });
});

describe('pg-pgbench-extended.pcap: pgbench -M extended', () => {
  const [setup, bench] = loadCapture('pg-pgbench-extended.pcap');
  if (!setup || !bench) throw new Error('pgbench capture needs two connections');

  it('connection 1: two simple queries, then Terminate', () => {
    const client = splitMessages(setup.client).map(decodeFrontend);
    expect(client.map((m) => m.type)).toEqual(['Query', 'Query', 'Terminate']);
    expect(client[0]).toEqual({ type: 'Query', sql: 'select count(*) from pgbench_branches' });
  });

  it('connection 2: 23 transactions of 7 statements, each its own Parse/Bind/Describe/Execute/Sync', () => {
    const raw = splitMessages(bench.client);
    const client: FrontendMessage[] = raw.map(decodeFrontend);
    const counts = new Map<string, number>();
    for (const m of client) counts.set(m.type, (counts.get(m.type) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ Parse: 161, Bind: 161, Describe: 161, Execute: 161, Sync: 161, Terminate: 1 });
    expect(letters(raw)).toBe(`${'PBDES'.repeat(161)}X`);
    const sql = only(client, 'Parse').map((p) => p.value.sql.split(' ')[0]);
    expect(sql.slice(0, 7)).toEqual(['BEGIN;', 'UPDATE', 'SELECT', 'UPDATE', 'UPDATE', 'INSERT', 'END;']);
    // Every parameter is text (no format codes), every statement unnamed.
    for (const b of only(client, 'Bind')) {
      expect(b.value.paramFormats).toEqual([]);
      expect(b.value.statement).toBe('');
    }
    const server = splitMessages(bench.server).map(decodeBackend);
    const tags = only(server, 'CommandComplete').map((c) => c.tag);
    expect(tags.filter((t) => t === 'BEGIN')).toHaveLength(23);
    expect(tags.filter((t) => t === 'COMMIT')).toHaveLength(23);
    expect(tags.filter((t) => t === 'UPDATE 1')).toHaveLength(69);
    expect(tags.filter((t) => t === 'INSERT 0 1')).toHaveLength(23);
    expect(only(server, 'ReadyForQuery')).toHaveLength(1 + 161);
    expect(only(server, 'NoData')).toHaveLength(161 - 23);
  });
});

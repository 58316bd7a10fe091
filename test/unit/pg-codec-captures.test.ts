// The PostgreSQL codec against real captured bytes (fixtures/pg/captures, see its README):
// every message of every captured stream decodes, re-encodes to the same bytes, and carries the
// fields the capture notes say it does. This file covers the round trip of everything and the
// psql captures; pg-codec-extended.test.ts covers the extended-protocol clients.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { allCapturedConnections, CAPTURE_FILES, capturePath, loadCapture, STARTUP_CODES } from '../../fixtures/pg/captures.js';
import { splitMessages } from '../../protocols/postgres/scanner.js';
import { Backend, ErrorField, StartupCode, TransactionStatus } from '../../protocols/postgres/codes.js';
import { decodeNotice } from '../../protocols/postgres/error-response.js';
import { commandTagRows } from '../../protocols/postgres/backend-messages.js';
import {
  decodeStartupPacket,
  encodeCancelRequest,
  encodeSslRequest,
  encodeStartupMessage,
  startupPacketLength,
} from '../../protocols/postgres/startup-message.js';
import { decodeBackend, decodeFrontend, encodeBackend, encodeFrontend, letters, type BackendMessage } from '../helpers/pg-codec.js';

const text = (b: Buffer | null | undefined): string | null => (b ? b.toString('utf8') : null);

function backendOf<T extends BackendMessage['type']>(msgs: BackendMessage[], type: T): Extract<BackendMessage, { type: T }>[] {
  return msgs.filter((m): m is Extract<BackendMessage, { type: T }> => m.type === type);
}

describe('every captured message', () => {
  const conns = allCapturedConnections();

  it('the capture files are the ones fixtures/pg/captures/README.md lists (SHA-256)', () => {
    const readme = readFileSync(new URL('../../fixtures/pg/captures/README.md', import.meta.url), 'utf8');
    for (const file of CAPTURE_FILES) {
      const sum = createHash('sha256').update(readFileSync(capturePath(file))).digest('hex');
      expect(readme).toContain(`${sum}  ${file}`);
    }
  });

  it('the fixtures hold the connections the capture notes describe', () => {
    expect(conns.map((c) => `${c.file}#${c.index}`)).toEqual([
      'pg-psql.pcap#0',
      'pg-psql-cancel.pcap#0',
      'pg-psql-cancel.pcap#1',
      'pg-node-postgres.pcap#0',
      'pg-pgjdbc.pcap#0',
      'pg-pgbench-extended.pcap#0',
      'pg-pgbench-extended.pcap#1',
    ]);
    // libpq's sslmode=prefer asks first and the server (ssl=off) answers 'N'.
    expect(conns.filter((c) => c.sslAnswer !== undefined).map((c) => [c.file, c.sslAnswer])).toEqual([
      ['pg-psql.pcap', 0x4e],
      ['pg-pgbench-extended.pcap', 0x4e],
      ['pg-pgbench-extended.pcap', 0x4e],
    ]);
  });

  for (const c of conns) {
    const name = `${c.file}#${c.index}`;
    it(`${name}: startup packets decode and re-encode byte for byte`, () => {
      for (const p of c.startupPackets) {
        expect(startupPacketLength(p)).toBe(p.length);
        const m = decodeStartupPacket(p);
        const again =
          m.kind === 'ssl'
            ? encodeSslRequest()
            : m.kind === 'cancel'
              ? encodeCancelRequest(m.processId, m.secretKey)
              : m.kind === 'startup'
                ? encodeStartupMessage(m.params, m.version)
                : Buffer.alloc(0);
        expect(again.equals(p)).toBe(true);
      }
    });

    it(`${name}: client → server messages decode and re-encode byte for byte`, () => {
      const msgs = splitMessages(c.client);
      expect(Buffer.concat(msgs).equals(c.client)).toBe(true);
      for (const m of msgs) expect(encodeFrontend(decodeFrontend(m)).toString('hex')).toBe(m.toString('hex'));
    });

    it(`${name}: server → client messages decode and re-encode byte for byte`, () => {
      const msgs = splitMessages(c.server);
      expect(Buffer.concat(msgs).equals(c.server)).toBe(true);
      for (const m of msgs) expect(encodeBackend(decodeBackend(m)).toString('hex')).toBe(m.toString('hex'));
    });
  }
});

describe('pg-psql.pcap: psql 15.18, simple query protocol', () => {
  const [conn] = loadCapture('pg-psql.pcap');
  if (!conn) throw new Error('pg-psql.pcap has no connection');
  const client = splitMessages(conn.client).map(decodeFrontend);
  const serverRaw = splitMessages(conn.server);
  const server = serverRaw.map(decodeBackend);

  it('frames 4–9: SSLRequest, StartupMessage, then the login reply', () => {
    const [ssl, startup] = conn.startupPackets.map(decodeStartupPacket);
    expect(ssl).toEqual({ kind: 'ssl' });
    expect(conn.startupPackets[0]?.readInt32BE(4)).toBe(STARTUP_CODES.sslRequest);
    expect(startup).toEqual({
      kind: 'startup',
      version: StartupCode.protocol30,
      params: new Map([
        ['user', 'postgres'],
        ['database', 'shop'],
        ['application_name', 'psql-capture'],
      ]),
    });
    // R, 13 × S, K, Z, then the first query's reply.
    expect(letters(serverRaw.slice(0, 16))).toBe('RSSSSSSSSSSSSSKZ');
    expect(server[0]).toEqual({ type: 'Authentication', value: { type: 'ok' } });
    const params = Object.fromEntries(backendOf(server, 'ParameterStatus').map((p) => [p.name, p.value]));
    expect(Object.keys(params)).toHaveLength(13);
    expect(params).toMatchObject({
      application_name: 'psql-capture',
      client_encoding: 'UTF8',
      DateStyle: 'ISO, MDY',
      server_version: '15.18 (Debian 15.18-0+deb12u1)',
      session_authorization: 'postgres',
      standard_conforming_strings: 'on',
      TimeZone: 'Etc/UTC',
    });
    const key = backendOf(server, 'BackendKeyData')[0]?.value;
    expect(key?.processId).toBe(15086);
    expect(server[15]).toEqual({ type: 'ReadyForQuery', status: TransactionStatus.idle });
  });

  it('frames 10–11: the 17 RowDescription fields of customers and 20 DataRows', () => {
    expect(client[0]).toEqual({ type: 'Query', sql: 'SELECT * FROM customers;' });
    const desc = backendOf(server, 'RowDescription')[0]?.fields ?? [];
    const tableOid = desc[0]?.tableOid;
    expect(tableOid).toBe(16386);
    // name, attribute number, type OID, type size, type modifier (varchar(n) → n+4, numeric(p,s) → (p<<16|s)+4)
    const expected: [string, number, number, number][] = [
      ['id', 23, 4, -1],
      ['full_name', 1043, -1, 100 + 4],
      ['email', 1043, -1, 200 + 4],
      ['ssn', 1042, -1, 11 + 4],
      ['card_number', 1043, -1, 19 + 4],
      ['salary', 1700, -1, ((12 << 16) | 2) + 4],
      ['balance', 1700, -1, ((19 << 16) | 4) + 4],
      ['birth_date', 1082, 4, -1],
      ['created_at', 1114, 8, -1],
      ['last_login', 1184, 8, -1],
      ['is_active', 16, 1, -1],
      ['notes', 25, -1, -1],
      ['avatar', 17, -1, -1],
      ['external_id', 2950, 16, -1],
      ['score', 701, 8, -1],
      ['rank', 21, 2, -1],
      ['big', 20, 8, -1],
    ];
    expect(desc).toEqual(
      expected.map(([name, typeOid, typeSize, typeModifier], i) => ({
        name,
        tableOid,
        columnAttr: i + 1,
        typeOid,
        typeSize,
        typeModifier,
        format: 0,
      })),
    );
    const rows = backendOf(server, 'DataRow').slice(0, 20);
    expect(rows.map((r) => text(r.values[0]))).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)));
    expect(rows[0]?.values.map(text)).toEqual([
      '1',
      'Alice Testperson',
      'alice.testperson1@example.com',
      '941-74-7468',
      '4111111111111111',
      '42657.09',
      '47931.9548',
      '1953-09-07',
      '2024-01-01 00:00:00.062907',
      '2025-01-10 00:15:30.123457+00',
      'f',
      'VIP customer. Prefers contact by email. Ünïcødé ✓ 日本語',
      '\\x89504e470d0a1a0a0000000d49484452',
      '3d9c1724-11e2-4b8f-ab0d-549b6f03675a',
      '-0.215685',
      '13610',
      '9007199254740993',
    ]);
    expect(text(rows[7]?.values[1])).toBe('Hana 花子 Dummy');
    // Row 16 has only id and full_name: 15 NULLs (length -1).
    expect(rows[15]?.values.filter((v) => v === null)).toHaveLength(15);
    expect(rows[1]?.values[11]?.length).toBeGreaterThan(500); // the long note of row 2
    expect(backendOf(server, 'CommandComplete')[0]?.tag).toBe('SELECT 20');
    expect(commandTagRows('SELECT 20')).toBe(20);
  });

  it('frames 12–13: one Query with three statements answers T D C, T D D C, T D C and one Z', () => {
    const q = client[1];
    expect(q?.type === 'Query' && q.sql.split(';').filter((s) => s.trim())).toHaveLength(3);
    const start = serverRaw.findIndex((m, i) => i > 16 && m[0] === Backend.readyForQuery) + 1;
    const reply = serverRaw.slice(start, start + 11);
    expect(letters(reply)).toBe('TDCTDDCTDCZ');
    const decoded = reply.map(decodeBackend);
    expect(backendOf(decoded, 'DataRow').map((r) => r.values.map(text))).toEqual([
      ['20'],
      ['1', 'Alice Testperson', '941-74-7468'],
      ['2', 'Bob Example', '972-73-4657'],
      ['t'],
    ]);
    expect(backendOf(decoded, 'RowDescription')[0]?.fields[0]).toMatchObject({ name: 'n', typeOid: 20, tableOid: 0, columnAttr: 0 });
  });

  it('frames 14–15: COPY TO STDOUT: CopyOutResponse, 20 CopyData, CopyDone, COPY 20', () => {
    const out = server.filter((m) => m.type === 'CopyOutResponse');
    expect(out).toEqual([{ type: 'CopyOutResponse', value: { format: 0, columnFormats: [0, 0, 0, 0, 0] } }]);
    const data = backendOf(server, 'CopyData').map((d) => d.data.toString('utf8'));
    expect(data).toHaveLength(20);
    expect(data[0]).toBe('1\tAlice Testperson\talice.testperson1@example.com\t941-74-7468\t4111111111111111\n');
    expect(data[2]).toBe('3\tCarol Sample\tcarol.sample3@example.com\t\\N\t378282246310005\n');
    expect(backendOf(server, 'CopyDone')).toHaveLength(1);
    expect(backendOf(server, 'CommandComplete').map((c) => c.tag)).toContain('COPY 20');
  });

  it('frames 16–19: COPY FROM STDIN: CopyInResponse, client CopyData + CopyDone, COPY 2', () => {
    expect(client.map((m) => m.type)).toEqual([
      'Query',
      'Query',
      'Query',
      'Query',
      'CopyData',
      'CopyDone',
      'Query',
      'Query',
      'Query',
      'Terminate',
    ]);
    const copy = client[4];
    expect(copy?.type === 'CopyData' && copy.data.toString('utf8').split('\n')).toEqual([
      'Copy Inperson\tcopy.in1@example.com\t900-11-2222\t4242424242424242\t51000.00',
      'Copy Inperson Two\tcopy.in2@example.com\t\\N\t\\N\t\\N',
      '\\.',
      '',
    ]);
    const copyIn = server.find((m) => m.type === 'CopyInResponse');
    expect(copyIn).toEqual({ type: 'CopyInResponse', value: { format: 0, columnFormats: [0, 0, 0, 0, 0] } });
    expect(backendOf(server, 'CommandComplete').map((c) => c.tag)).toContain('COPY 2');
  });

  it('frames 20–22: the NOTICE from a DO block arrives alone in its own TCP segment', () => {
    const notice = serverRaw.find((m) => m[0] === Backend.noticeResponse);
    if (!notice) throw new Error('no NoticeResponse');
    expect(decodeNotice(notice)).toMatchObject({ severity: 'NOTICE', code: '00000', message: 'hello from DO: 22 customers' });
    expect(conn.tcp.segments.find((s) => s.frame === 21)?.payload.equals(notice)).toBe(true);
  });

  it('frames 24–26: the duplicate email gives ErrorResponse 23505 with its Detail, then Z', () => {
    const idx = serverRaw.findIndex((m) => m[0] === Backend.errorResponse);
    const err = decodeNotice(serverRaw[idx] as Buffer);
    expect(err).toMatchObject({
      severity: 'ERROR',
      code: '23505',
      message: 'duplicate key value violates unique constraint "customers_email_key"',
      detail: 'Key (email)=(alice.testperson1@example.com) already exists.',
    });
    expect(err.fields.get(ErrorField.schema)).toBe('public');
    expect(err.fields.get(ErrorField.table)).toBe('customers');
    expect(err.fields.get(ErrorField.constraint)).toBe('customers_email_key');
    expect(err.fields.get(ErrorField.routine)).toBe('_bt_check_unique');
    expect([...err.fields.keys()].map((k) => String.fromCharCode(k)).join('')).toBe('SVCMDstnFLR');
    expect(server[idx + 1]).toEqual({ type: 'ReadyForQuery', status: TransactionStatus.idle });
  });

  it('frames 28–30: the session goes on after the error and ends with Terminate', () => {
    expect(letters(serverRaw.slice(-4))).toBe('TDCZ');
    expect(decodeBackend(serverRaw.at(-3) as Buffer)).toEqual({ type: 'DataRow', values: [Buffer.from('1')] });
    expect(client.at(-1)).toEqual({ type: 'Terminate' });
  });
});

describe('pg-psql-cancel.pcap: a CancelRequest on a second connection', () => {
  const [main, cancel] = loadCapture('pg-psql-cancel.pcap');
  if (!main || !cancel) throw new Error('pg-psql-cancel.pcap needs two connections');
  const server = splitMessages(main.server).map(decodeBackend);

  it('frame 13: the CancelRequest carries exactly the key of BackendKeyData (frame 6)', () => {
    const key = backendOf(server, 'BackendKeyData')[0]?.value;
    expect(key).toEqual({ processId: 28173, secretKey: -1981308572 });
    expect(cancel.startupPackets).toHaveLength(1);
    const packet = cancel.startupPackets[0] as Buffer;
    expect(packet.length).toBe(16);
    expect(packet.readInt32BE(4)).toBe(STARTUP_CODES.cancelRequest);
    expect(decodeStartupPacket(packet)).toEqual({ kind: 'cancel', ...key });
    // The server answers a CancelRequest with nothing; the cancel connection carries no typed bytes.
    expect(cancel.client.length + cancel.server.length).toBe(0);
  });

  it('frames 8, 18–19: the query gets RowDescription, ErrorResponse 57014, then Z', () => {
    const client = splitMessages(main.client).map(decodeFrontend);
    expect(client).toEqual([{ type: 'Query', sql: 'SELECT pg_sleep(5)' }, { type: 'Terminate' }]);
    expect(server.slice(-3).map((m) => m.type)).toEqual(['RowDescription', 'ErrorResponse', 'ReadyForQuery']);
    const err = server.at(-2);
    expect(err?.type === 'ErrorResponse' && err.fields.get(ErrorField.code)).toBe('57014');
    expect(err?.type === 'ErrorResponse' && err.fields.get(ErrorField.message)).toBe('canceling statement due to user request');
  });
});

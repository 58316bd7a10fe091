// Startup parameters reach the upstream as the client sent them (application_name, options with
// -c settings, statement_timeout, extra_float_digits, DateStyle, TimeZone …), except the ones
// warden owns (user, database, replication) and protocol options it does not speak.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../protocols/postgres/codes.js';
import { encodeQuery } from '../../protocols/postgres/frontend-messages.js';
import { decodeDataRow } from '../../protocols/postgres/backend-messages.js';
import { decodeNegotiateProtocolVersion, decodeParameterStatus } from '../../protocols/postgres/session-messages.js';
import { encodePasswordMessage } from '../../protocols/postgres/password-message.js';
import { encodeSslRequest, encodeStartupMessage } from '../../protocols/postgres/startup-message.js';
import { directUrl, TEST_ROLES } from '../helpers/pg-env.js';
import { errorIn, rawLogin, RawReader, readByte, startTls, tcpConnect, type RawSession } from '../helpers/pg-raw.js';
import { startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startTestWarden();
});
afterAll(async () => {
  await w?.stop();
});

const SETTINGS_SQL = `SELECT current_setting('application_name') AS application_name,
  current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
  current_setting('statement_timeout') AS statement_timeout, current_setting('lock_timeout') AS lock_timeout,
  current_setting('idle_in_transaction_session_timeout') AS idle_tx, current_setting('client_encoding') AS client_encoding,
  current_user AS usr, current_database() AS db`;

async function rawQuery(s: RawSession, sql: string): Promise<(string | null)[][]> {
  s.socket.write(encodeQuery(sql));
  const msgs = await s.reader.until(Backend.readyForQuery);
  const err = errorIn(msgs);
  if (err) throw new Error(`${err.code} ${err.message}`);
  return msgs.filter((m) => m[0] === Backend.dataRow).map((m) => decodeDataRow(m).map((v) => v && v.toString('utf8')));
}

describe('startup parameters through warden', () => {
  it('node-postgres: application_name, options (-c search_path, -c work_mem), statement_timeout, lock_timeout … equal direct', async () => {
    const params = {
      application_name: 'agent-startup-test',
      options: '-c search_path=pg_catalog,public -c work_mem=8MB',
      statement_timeout: 400,
      lock_timeout: 1234,
      idle_in_transaction_session_timeout: 60000,
    } as const;
    const d = new pg.Client({ connectionString: directUrl(), ...params });
    const v = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca }, ...params });
    await d.connect();
    await v.connect();
    try {
      const [ds, vs] = [(await d.query(SETTINGS_SQL)).rows[0], (await v.query(SETTINGS_SQL)).rows[0]];
      expect(vs).toEqual(ds);
      expect(vs).toEqual({
        application_name: 'agent-startup-test',
        search_path: 'pg_catalog,public',
        work_mem: '8MB',
        statement_timeout: '400ms',
        lock_timeout: '1234ms',
        idle_tx: '1min',
        client_encoding: 'UTF8',
        usr: TEST_ROLES.scram.user,
        db: 'shop',
      });
      // statement_timeout is in force upstream.
      const err = await v.query('SELECT pg_sleep(2)').catch((e: pg.DatabaseError) => e);
      expect(err).toMatchObject({ code: '57014', message: 'canceling statement due to statement timeout' });
    } finally {
      await d.end();
      await v.end();
    }
  });

  it('raw startup: extra_float_digits, DateStyle, TimeZone; the login ParameterStatus reflect them', async () => {
    const s = await rawLogin({
      host: w.host,
      port: w.port,
      ca: w.ca,
      database: 'shop',
      password: await w.token(),
      params: { extra_float_digits: '0', DateStyle: 'German, DMY', TimeZone: 'Asia/Kolkata', application_name: 'raw-startup' },
    });
    try {
      const status = Object.fromEntries(s.greeting.filter((m) => m[0] === Backend.parameterStatus).map((m) => Object.values(decodeParameterStatus(m))));
      expect(status).toMatchObject({ DateStyle: 'German, DMY', TimeZone: 'Asia/Kolkata', application_name: 'raw-startup' });
      expect(status.session_authorization).toBe(TEST_ROLES.scram.user);
      expect(await rawQuery(s, "SHOW extra_float_digits; SELECT 0.1::float8 + 0.2::float8 AS f, date '2025-01-31' AS d, timestamptz '2025-01-01 00:00:00+00' AS t")).toEqual([
        ['0'],
        ['0.3', '31.01.2025', '01.01.2025 05:30:00 IST'],
      ]);
    } finally {
      s.socket.destroy();
    }
  });

  it('user and database come from the target, whatever the client names (no escape through startup)', async () => {
    const s = await rawLogin({ host: w.host, port: w.port, ca: w.ca, user: 'postgres', database: 'shop', password: await w.token() });
    try {
      expect(await rawQuery(s, 'SELECT current_user, session_user, current_database()')).toEqual([[TEST_ROLES.scram.user, TEST_ROLES.scram.user, 'shop']]);
    } finally {
      s.socket.destroy();
    }
  });

  it('a replication connection is refused with 0A000', async () => {
    let socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop'], ['replication', 'database']]));
    expect(errorIn(await reader.untilClosed())).toMatchObject({ severity: 'FATAL', code: '0A000', message: 'replication connections are not supported through warden' });
  });

  it('protocol 3.2 and _pq_ options get NegotiateProtocolVersion (3.0, options listed), then a normal session', async () => {
    let socket = await tcpConnect(w.host, w.port);
    socket.write(encodeSslRequest());
    expect(await readByte(socket)).toBe(0x53);
    socket = await startTls(socket, w.ca);
    const reader = new RawReader(socket);
    socket.write(encodeStartupMessage([['user', 'agent'], ['database', 'shop'], ['_pq_.compression', 'on']], (3 << 16) | 2));
    const negotiate = await reader.next();
    expect(negotiate?.[0]).toBe(Backend.negotiateProtocolVersion);
    expect(decodeNegotiateProtocolVersion(negotiate as Buffer)).toEqual({ newestMinor: 0, unrecognized: ['_pq_.compression'] });
    expect((await reader.next())?.[0]).toBe(Backend.authentication);
    socket.write(encodePasswordMessage(await w.token()));
    const greeting = await reader.until(Backend.readyForQuery);
    expect(greeting.at(-1)?.[0]).toBe(Backend.readyForQuery);
    socket.destroy();
  });
});

// An extended-protocol Execute of a portal nobody described (libpq pipelines, hand-written
// clients): PostgreSQL sends its rows without a RowDescription. With masking on, warden refused
// such results ("describe the statement before executing it") and then let the rest of the
// batch run on after its error. It now describes the portal itself, hides that answer, and masks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBind, encodeExecute, encodeParse, encodeQuery, SYNC } from '../../protocols/postgres/frontend-messages.js';
import { Backend } from '../../protocols/postgres/codes.js';
import { startSsnMaskedWarden } from '../helpers/masked-warden.js';
import type { TestWarden } from '../helpers/warden.js';
import { describe as describeMessage, rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { testPostgres, TEST_ROLES } from '../helpers/pg-env.js';
import { decodeBackend } from '../helpers/pg-codec.js';

let w: TestWarden;
beforeAll(async () => {
  w = await startSsnMaskedWarden();
});
afterAll(async () => {
  await w?.stop();
});

async function viaWarden(): Promise<RawSession> {
  return rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });
}
async function viaDirect(): Promise<RawSession> {
  const pg = testPostgres();
  return rawLogin({ host: pg.host, port: pg.port, user: TEST_ROLES.password.user, database: 'shop', password: TEST_ROLES.password.password });
}

/**
 * Parse + Bind + Execute (no Describe) of each statement, one Sync at the end; the answer up to
 * ReadyForQuery, readable. A statement `@name` is a bare Execute of the portal (a SQL cursor).
 */
async function batch(s: RawSession, statements: readonly string[], maxRows = 0): Promise<string[]> {
  const msgs = statements.flatMap((sql) => sql.startsWith('@') ? [encodeExecute({ portal: sql.slice(1), maxRows })] : [
    encodeParse({ name: '', sql, paramTypes: [] }),
    encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
    encodeExecute({ portal: '', maxRows }),
  ]);
  s.socket.write(Buffer.concat([...msgs, SYNC]));
  const answer = await s.reader.until(Backend.readyForQuery);
  return answer.map((m) => {
    const d = decodeBackend(m);
    if (d.type === 'DataRow') return `D ${d.values.map((v) => (v ? v.toString() : 'null')).join('|')}`;
    if (d.type === 'ErrorResponse') return `E ${d.fields.get(0x43)} ${d.fields.get(0x4d)}`;
    if (d.type === 'CommandComplete') return `C ${d.tag}`;
    return d.type;
  });
}

async function query(s: RawSession, sql: string): Promise<void> {
  s.socket.write(encodeQuery(sql));
  const answer = await s.reader.until(Backend.readyForQuery);
  const failed = answer.find((m) => m[0] === Backend.errorResponse);
  if (failed) throw new Error(`${sql}: ${describeMessage(failed)}`);
}

async function both(statements: readonly string[], maxRows = 0, before = ''): Promise<{ warden: string[]; direct: string[] }> {
  const a = await viaWarden();
  const b = await viaDirect();
  try {
    if (before) await Promise.all([a, b].map((s) => query(s, before)));
    return { warden: await batch(a, statements, maxRows), direct: await batch(b, statements, maxRows) };
  } finally {
    a.socket.destroy();
    b.socket.destroy();
  }
}

describe('Execute without Describe under masking', () => {
  it('rows of columns nobody protects arrive as on a direct connection, in a pipeline with an error in the middle', async () => {
    const r = await both(['SELECT id, full_name FROM customers WHERE id <= 2 ORDER BY id', 'SELECT 1/0', 'SELECT 3']);
    expect(r.warden).toEqual(r.direct);
    expect(r.warden).toEqual(['ParseComplete', 'BindComplete', 'D 1|Alice Testperson', 'D 2|Bob Example', 'C SELECT 2', 'ParseComplete', 'E 22012 division by zero', 'ReadyForQuery']);
  });

  it('a protected column is masked, and a row limit suspends the portal as direct', async () => {
    const r = await both(['SELECT id, ssn FROM customers ORDER BY id'], 2);
    expect(r.warden.map((m) => m.replace(/\|.*/, ''))).toEqual(r.direct.map((m) => m.replace(/\|.*/, '')));
    expect(r.warden).toEqual(['ParseComplete', 'BindComplete', 'D 1|*******7468', 'D 2|*******4657', 'PortalSuspended', 'ReadyForQuery']);
    expect(r.direct[2]).toBe('D 1|941-74-7468');
  });

  it('a batch with an undescribed SELECT of a protected column runs whole, with no error, as direct', async () => {
    const r = await both(['CREATE TEMP TABLE undescribed(a int)', 'SELECT ssn FROM customers WHERE id = 1', 'INSERT INTO undescribed VALUES (1)', 'SELECT count(*) FROM undescribed']);
    expect(r.warden.filter((m) => m.startsWith('E '))).toEqual([]);
    expect(r.warden.at(-3)).toBe('D 1');
    expect(r.warden.length).toBe(r.direct.length);
  });

  it('a cursor declared with SQL and run with a protocol Execute: masked rows, the portal suspended, the batch goes on', async () => {
    const declare = 'BEGIN; CREATE TEMP TABLE undescribed_c(a int); DECLARE c CURSOR FOR SELECT id, ssn AS x FROM customers ORDER BY id';
    const r = await both(['@c', 'INSERT INTO undescribed_c VALUES (1)'], 2, declare);
    expect(r.warden.map((m) => m.replace(/\|.*/, ''))).toEqual(r.direct.map((m) => m.replace(/\|.*/, '')));
    expect(r.warden).toEqual(['D 1|*******7468', 'D 2|*******4657', 'PortalSuspended', 'ParseComplete', 'BindComplete', 'C INSERT 0 1', 'ReadyForQuery']);
  });
});

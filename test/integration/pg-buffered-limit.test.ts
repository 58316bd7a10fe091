// sessions.max_buffered_bytes: what all sessions together may hold of messages warden reads whole
// across socket reads. A session whose message would pass it ends with FATAL 53200; the others go
// on, and what a session held is given back when its message is delivered or the session ends.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Frontend } from '../../protocols/postgres/codes.js';
import { errorIn, rawLogin, type RawSession } from '../helpers/pg-raw.js';
import { approvalsApi, bufferedBytes, firstPendingId } from '../helpers/approvals.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

const LIMIT = 1024 * 1024;
let w: TestWarden;

beforeAll(async () => {
  // Statement rules make warden read every statement whole (a bare relay streams them through).
  w = await startTestWarden({
    yaml: 'rules:\n  - { name: no-drop, match: { kinds: [drop] }, action: deny }',
    mutate: (c) => void (c.sessions.maxBufferedBytes = LIMIT),
  });
});
afterAll(async () => {
  await w?.stop();
});

const login = async (): Promise<RawSession> => rawLogin({ host: w.host, port: w.port, ca: w.ca, database: 'shop', password: await w.token() });

/** A simple Query `SELECT length('xxx…')` of `bytes` bytes in all, and the length it selects. */
function bigQuery(bytes: number): { message: Buffer; chars: number } {
  const head = "SELECT length('";
  const tail = "') AS n";
  const chars = bytes - 5 - head.length - tail.length - 1;
  const sql = `${head}${'x'.repeat(chars)}${tail}`;
  const body = Buffer.from(`${sql}\0`);
  const message = Buffer.alloc(5 + body.length);
  message[0] = Frontend.query;
  message.writeInt32BE(4 + body.length, 1);
  body.copy(message, 5);
  return { message, chars };
}

async function run(s: RawSession, message: Buffer): Promise<Buffer[]> {
  s.socket.write(message);
  return s.reader.until(0x5a /* ReadyForQuery */);
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

const buffered = (of: TestWarden = w): Promise<number> => bufferedBytes(of.warden.adminUrl);

describe('the allowance for messages being read, across sessions', () => {
  it('ends the session that would pass it with 53200, and the one holding it goes on', async () => {
    const a = await login();
    const b = await login();
    const big = bigQuery(900 * 1024);
    // A sends 800 kB of its 900 kB query and waits: warden holds its message being read.
    a.socket.write(big.message.subarray(0, 800 * 1024));
    await settle();
    expect(await buffered()).toBeGreaterThanOrEqual(800 * 1024);
    const small = bigQuery(300 * 1024);
    const refused = await run(b, small.message).catch(() => b.reader.untilClosed(5000));
    const error = errorIn(refused.length ? refused : await b.reader.untilClosed(5000));
    expect(error).toMatchObject({ severity: 'FATAL', code: '53200' });
    expect(error?.message).toMatch(/^out of memory: warden holds 1048576 bytes of messages being read across its sessions \(sessions\.max_buffered_bytes\)/);
    // A finishes its query and gets its answer.
    a.socket.write(big.message.subarray(800 * 1024));
    const answer = await a.reader.until(0x5a);
    expect(errorIn(answer)).toBeUndefined();
    expect(answer.map((m) => m.toString('latin1')).join('')).toContain(String(big.chars));
    a.socket.destroy();
    await settle();
    expect(await buffered()).toBe(0);
  });

  it('gives back what a session held when its message is delivered or the session ends mid-message', async () => {
    const gone = await login();
    gone.socket.write(bigQuery(900 * 1024).message.subarray(0, 800 * 1024));
    await settle();
    gone.socket.destroy();
    await settle();
    // Two 450 kB queries at once fit only if nothing is held any more.
    const [c, d] = await Promise.all([login(), login()]);
    const q = bigQuery(450 * 1024);
    const [rc, rd] = await Promise.all([run(c, q.message), run(d, q.message)]);
    expect(errorIn(rc)).toBeUndefined();
    expect(errorIn(rd)).toBeUndefined();
    c.socket.destroy();
    d.socket.destroy();
    // And node-postgres sessions go on as usual.
    const client = new pg.Client({ host: w.host, port: w.port, user: 'agent', password: await w.token(), database: 'shop', ssl: { ca: w.ca } });
    await client.connect();
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await client.end();
  });
});

describe('statements held for approval', () => {
  let held: TestWarden;
  beforeAll(async () => {
    held = await startTestWarden({
      yaml: `rules:\n  - { name: orders-reviewed, match: { relations: [orders] }, action: hold }\napprovals:\n  timeout: 30s\n  approvers:\n    - { name: dbas, match: { issuer: dev, roles: [${APPROVER_ROLE}] } }\n`,
      mutate: (c) => void (c.sessions.maxBufferedBytes = LIMIT),
    });
  });
  afterAll(async () => {
    await held?.stop();
  });

  it('keep counting what they hold until they are decided', async () => {
    const loginHeld = async (): Promise<RawSession> => rawLogin({ host: held.host, port: held.port, ca: held.ca, database: 'shop', password: await held.token() });
    const a = await loginHeld();
    // A 200 kB statement (read whole across socket reads) that a rule holds.
    const text = `SELECT length('${'x'.repeat(200 * 1024)}') AS n FROM orders LIMIT 1`;
    const query = Buffer.alloc(5 + text.length + 1);
    query[0] = Frontend.query;
    query.writeInt32BE(4 + text.length + 1, 1);
    query.write(text, 5, 'latin1');
    a.socket.write(query);
    const approver = await held.token({ subject: 'dba', roles: [APPROVER_ROLE] });
    const api = approvalsApi(() => held.warden.adminUrl, () => approver);
    const id = await firstPendingId(api);
    expect(await buffered(held)).toBeGreaterThanOrEqual(200 * 1024);
    // While it waits, another session's 900 kB statement would pass the limit.
    const b = await loginHeld();
    const refused = await run(b, bigQuery(900 * 1024).message).catch(() => b.reader.untilClosed(5000));
    expect(errorIn(refused.length ? refused : await b.reader.untilClosed(5000))).toMatchObject({ severity: 'FATAL', code: '53200' });
    // Decided: what it held is given back.
    expect((await api('POST', `/approvals/${id}/deny`, { reason: 'no' })).status).toBe(200);
    const answer = await a.reader.until(0x5a);
    expect(errorIn(answer)?.message).toMatch(/denied/);
    await settle();
    expect(await buffered(held)).toBe(0);
    a.socket.destroy();
  });
});

// sessions.max_buffered_bytes on the SQL Server side: the packets of requests warden is still
// gathering count together across sessions. The session whose packet would pass the limit ends
// with error 701; the one holding it goes on, and a session that leaves mid-request gives its
// share back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTokens, packetize, PACKET_TYPE, TDS_VERSION, type Message, type Token } from '../../protocols/tds/index.js';
import { batch, rawConnect, rawLogin, startTdsHarness, type RawTds, type TdsHarness } from '../helpers/tds.js';
import { approvalsApi, bufferedBytes, firstPendingId } from '../helpers/approvals.js';
import { APPROVER_ROLE } from '../helpers/warden.js';

const LIMIT = 256 * 1024;
const PACKET = 4096;
let h: TdsHarness;

beforeAll(async () => {
  h = await startTdsHarness({ plaintextTokens: 'loopback', mutate: (c) => void (c.sessions.maxBufferedBytes = LIMIT) });
});
afterAll(async () => {
  await h?.stop();
});

const tokensOf = (m: Message): Token[] => decodeTokens(m.payload, { tdsVersion: TDS_VERSION.V7_4 });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

async function session(): Promise<RawTds> {
  const raw = await rawConnect(h.port);
  await rawLogin(raw, await h.tw.token());
  return raw;
}

/** A SQLBatch `SELECT LEN('xxx…') AS n` of about `bytes` bytes, in 4 KiB packets. */
function bigBatch(bytes: number): { packets: Buffer; chars: number } {
  const chars = Math.floor(bytes / 2) - 40;
  return { packets: packetize(PACKET_TYPE.SQL_BATCH, batch(`SELECT LEN('${'x'.repeat(chars)}') AS n`), PACKET), chars };
}

describe('the allowance for requests being gathered, across TDS sessions', () => {
  it('ends the session that would pass it with error 701, and the one holding it goes on', async () => {
    const a = await session();
    const b = await session();
    const big = bigBatch(220 * 1024);
    // A sends 160 kB of packets of its request and waits: warden holds them.
    a.socket.write(big.packets.subarray(0, 40 * PACKET));
    await settle();
    b.socket.write(bigBatch(120 * 1024).packets);
    const [error] = tokensOf(await b.next());
    expect(error).toMatchObject({ kind: 'ERROR', number: 701, class: 20 });
    expect((error as { message: string }).message).toMatch(/^There is insufficient memory in warden to read this request: warden holds 262144 bytes/);
    await b.closed;
    await settle();
    // A's request goes on and is answered (B's packets were given back when B ended).
    a.socket.write(big.packets.subarray(40 * PACKET));
    const rows = tokensOf(await a.next()).filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW');
    expect(rows).toHaveLength(1);
    a.socket.destroy();
  });

  it('gives back what a session that left mid-request held', async () => {
    const gone = await session();
    gone.socket.write(bigBatch(300 * 1024).packets.subarray(0, 50 * PACKET));
    await settle();
    gone.socket.destroy();
    await settle();
    // Two 120 kB requests at once fit only if nothing is held any more.
    const [c, d] = await Promise.all([session(), session()]);
    const q = bigBatch(120 * 1024);
    c.socket.write(q.packets);
    d.socket.write(q.packets);
    for (const s of [c, d]) {
      const tokens = tokensOf(await s.next());
      expect(tokens.some((t) => t.kind === 'ERROR')).toBe(false);
      expect(tokens.filter((t) => t.kind === 'ROW' || t.kind === 'NBCROW')).toHaveLength(1);
      s.socket.destroy();
    }
  });
});

describe('requests held for approval', () => {
  let held: TdsHarness;
  beforeAll(async () => {
    held = await startTdsHarness({
      plaintextTokens: 'loopback',
      yaml: `rules:\n  - { name: orders-reviewed, match: { relations: [orders] }, action: hold }\napprovals:\n  timeout: 30s\n  approvers:\n    - { name: dbas, match: { issuer: dev, roles: [${APPROVER_ROLE}] } }\n`,
      mutate: (c) => void (c.sessions.maxBufferedBytes = LIMIT),
    });
  });
  afterAll(async () => {
    await held?.stop();
  });

  it('keep counting their packets until they are decided', async () => {
    const connect = async (): Promise<RawTds> => {
      const raw = await rawConnect(held.port);
      await rawLogin(raw, await held.tw.token());
      return raw;
    };
    const metric = (): Promise<number> => bufferedBytes(held.tw.warden.adminUrl);
    const a = await connect();
    // A 100 kB request (25 packets) that a rule holds.
    a.socket.write(packetize(PACKET_TYPE.SQL_BATCH, batch(`SELECT LEN('${'x'.repeat(50 * 1024)}') AS n FROM orders`), PACKET));
    const approver = await held.tw.token({ subject: 'dba', roles: [APPROVER_ROLE] });
    const api = approvalsApi(() => held.tw.warden.adminUrl, () => approver);
    const id = await firstPendingId(api);
    expect(await metric()).toBeGreaterThanOrEqual(100 * 1024);
    // While it waits, another session's 200 kB request would pass the limit.
    const b = await connect();
    b.socket.write(bigBatch(200 * 1024).packets);
    expect(tokensOf(await b.next())[0]).toMatchObject({ kind: 'ERROR', number: 701 });
    // Decided: what it held is given back.
    expect((await api('POST', `/approvals/${id}/deny`, { reason: 'no' })).status).toBe(200);
    const answer = tokensOf(await a.next());
    expect(answer.some((t) => t.kind === 'ERROR' && /denied/.test((t as { message: string }).message))).toBe(true);
    await settle();
    expect(await metric()).toBe(0);
    a.socket.destroy();
  });
});

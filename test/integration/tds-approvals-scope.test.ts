// Held SQL Server (TDS) requests and what approvers see: a client that sends a held request and
// leaves at once leaves no pending request behind; parameters too long to show whole are marked
// and a grant compares their whole value. Raw TDS and tedious through the stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PACKET_SIZE, PACKET_TYPE, packetize } from '../../protocols/tds/packet.js';
import { approvalsApi } from '../helpers/approvals.js';
import { batch, closeTedious, connectTedious, query, rawConnect, rawLogin, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';
import { APPROVER_ROLE } from '../helpers/warden.js';
import { eventually } from '../unit/approvals-support.js';

let h: TdsHarness;
let approverToken: string;
const api = approvalsApi(() => h.tw.warden.adminUrl, () => approverToken);

beforeAll(async () => {
  h = await startTdsHarness({
    plaintextTokens: 'loopback',
    yaml: `
rules:
  - name: orders-reviewed
    match: { relations: [orders] }
    action: hold
approvals:
  timeout: 20s
  approvers:
    - name: dbas
      match: { issuer: dev, roles: [${APPROVER_ROLE}] }
`,
  });
  approverToken = await h.tw.token({ subject: 'dba-tds', roles: [APPROVER_ROLE] });
});

afterAll(async () => {
  await h?.stop();
});

interface Listed {
  statement: string;
  status: string;
}

async function requestFor(marker: string): Promise<Listed | undefined> {
  const all = (await api('GET', '/approvals?limit=50')).json.requests as Listed[];
  return all.find((r) => r.statement.includes(marker));
}

describe('a client that leaves at once', () => {
  it('sends a held request and disconnects before it is stored: the request is withdrawn, not left pending', async () => {
    for (let i = 0; i < 3; i++) {
      const raw = await rawConnect(h.port);
      await rawLogin(raw, await h.tw.token());
      const marker = `${9000 + i}`;
      raw.send(PACKET_TYPE.SQL_BATCH, batch(`DELETE FROM orders WHERE id = ${marker}`));
      raw.socket.destroy();
      await eventually(() => requestFor(marker), 5000, 'the request');
      const status = await eventually(async () => {
        const r = await requestFor(marker);
        return r && r.status !== 'pending' ? r.status : undefined;
      }, 3000, 'the request to be withdrawn');
      expect(status).toBe('withdrawn');
    }
  });
});

describe('an ATTENTION right behind the held request', () => {
  it('arriving in the same read as the request, it still withdraws the request at once and is acknowledged', async () => {
    const raw = await rawConnect(h.port);
    await rawLogin(raw, await h.tw.token());
    const marker = '9200';
    raw.socket.write(Buffer.concat([
      packetize(PACKET_TYPE.SQL_BATCH, batch(`DELETE FROM orders WHERE id = ${marker}`), DEFAULT_PACKET_SIZE),
      packetize(PACKET_TYPE.ATTENTION, Buffer.alloc(0), DEFAULT_PACKET_SIZE),
    ]));
    const status = await eventually(async () => {
      const r = await requestFor(marker);
      return r && r.status !== 'pending' ? r.status : undefined;
    }, 3000, 'the request to be withdrawn');
    expect(status).toBe('withdrawn');
    // The response to the request (its INFO), then the DONE that acknowledges the attention.
    const attnAcked = (m: { payload: Buffer }): boolean => {
      const done = m.payload.subarray(m.payload.length - 13);
      return done[0] === 0xfd && (done.readUInt16LE(1) & 0x20) !== 0; // DONE with DONE_ATTN
    };
    const first = await raw.next(3000);
    expect(first.payload.indexOf(Buffer.from('statement held for approval', 'utf16le'))).toBeGreaterThan(0);
    expect(attnAcked(first) || attnAcked(await raw.next(3000))).toBe(true);
    raw.socket.destroy();
  });
});

describe('parameters too long to show whole', () => {
  it('are shown to approvers cut and marked with their whole size and SHA-256', async () => {
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token() } }));
    try {
      const before = new Set(((await api('GET', '/approvals?status=pending')).json.requests as { id: string }[]).map((r) => r.id));
      const note = `${'x'.repeat(5000)}tail`;
      const pending = query(c, 'SELECT COUNT(*) AS n FROM orders WHERE status <> @note', [['note', TYPES.NVarChar, note]]).catch((e: Error) => e);
      const id = await eventually(async () => ((await api('GET', '/approvals?status=pending')).json.requests as { id: string }[]).map((r) => r.id).find((x) => !before.has(x)), 5000, 'the held request');
      const shown = (await api('GET', `/approvals/${id}`)).json.request.params as string[];
      expect(shown).toHaveLength(1);
      expect(shown[0]).toMatch(/^x{4000,}… \[cut for display: 5004 bytes in all; sha256 [0-9a-f]{64}\]$/);
      expect((await api('POST', `/approvals/${id}/deny`, { reason: 'no' })).status).toBe(200);
      expect(await pending).toBeInstanceOf(Error);
    } finally {
      await closeTedious(c);
    }
  });
});

describe('the agent token expires while a request is held', () => {
  it('withdraws it at once (an approval afterwards finds nothing to run); the next request ends the session with 18456', async () => {
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: true, auth: { password: await h.tw.token({ ttlSeconds: 3 }) } }));
    const infos: string[] = [];
    c.on('infoMessage', (m: { message: string }) => infos.push(m.message));
    try {
      const pending = query(c, 'DELETE FROM orders WHERE id = 9100').catch((e: Error & { number?: number }) => e);
      const id = await eventually(() => infos.map((m) => /request (apr_\w+)/.exec(m)?.[1]).find(Boolean), 5000, 'the held request');
      const err = (await pending) as Error & { number?: number };
      expect(err.number).toBe(229);
      expect(err.message).toBe(`approval request ${id} was withdrawn: token-expired`);
      expect((await api('GET', `/approvals/${id}`)).json.request.status).toBe('withdrawn');
      expect((await api('POST', `/approvals/${id}/approve`, {})).status).toBe(409);
      const next = (await query(c, 'SELECT 1 AS one').catch((e: Error & { number?: number }) => e)) as Error & { number?: number };
      expect(next.number).toBe(18456);
    } finally {
      await closeTedious(c).catch(() => undefined);
    }
  });
});

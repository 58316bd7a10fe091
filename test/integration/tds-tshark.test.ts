// Wireshark's TDS dissector reads warden's side of a session as well-formed TDS: a plaintext
// session (plaintext tokens allowed from loopback, so the bytes can be decoded) with the login,
// all customers columns, several result sets, an RPC with parameters, an error and a refusal by
// warden itself, statements held for approval (warden's INFO packet starts the response, the
// target's packets continue it with packet numbers following on; a cancelled one ends with the
// ATTENTION acknowledgement), captured on loopback with tshark and dissected with no malformed
// packet and no warning on anything warden sent.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';
import { APPROVER_ROLE } from '../helpers/warden.js';

const skip = missingClient('tshark');

describe.skipIf(skip)('tshark dissects warden\'s TDS', () => {
  let h: TdsHarness;
  let dir: string;

  beforeAll(async () => {
    h = await startTdsHarness({
      plaintextTokens: 'loopback',
      yaml: [
        'rules:',
        '  - { name: no-drop, match: { kinds: [drop] }, action: deny }',
        '  - { name: review-orders, match: { relations: [orders] }, action: hold }',
        'approvals:',
        '  approvers:',
        `    - { name: dbas, match: { issuer: dev, roles: [${APPROVER_ROLE}] } }`,
        '',
      ].join('\n'),
    });
    dir = mkdtempSync(join(tmpdir(), 'warden-tshark-'));
  });

  afterAll(async () => {
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function capture(file: string, port: number): Promise<ChildProcess> {
    const child = spawn(findClient('tshark') as string, ['-i', 'lo', '-f', `tcp port ${port}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new Promise((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), 20_000);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        if (err.includes('Capturing on')) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      child.on('exit', () => reject(new Error(`tshark exited: ${err}`)));
    });
  }

  it('finds every packet well-formed, requests and responses alike', async () => {
    const file = join(dir, 'warden.pcapng');
    const tshark = await capture(file, h.port);
    await new Promise((r) => setTimeout(r, 1000)); // dumpcap reports before its filter is in place
    const c = await connectTedious(tediousConfig({ port: h.port, encrypt: false, auth: { password: await h.tw.token() } }));
    try {
      await query(c, 'SELECT * FROM customers ORDER BY id');
      await query(c, 'SELECT id, full_name FROM customers WHERE id <= 3 ORDER BY id; SELECT COUNT(*) AS n FROM customers');
      await query(c, 'SELECT email FROM customers WHERE id = @id', [['id', TYPES.Int, 3]]);
      await query(c, 'SELECT * FROM no_such_table').catch(() => undefined);
      await expect(query(c, 'DROP TABLE customers')).rejects.toThrow(/no-drop/);
      // Held, then approved: a response of several packets continues warden's INFO packet.
      const infos: string[] = [];
      c.on('infoMessage', (m: { message: string }) => infos.push(m.message));
      const held = query(c, 'SELECT * FROM orders ORDER BY id');
      const id = await heldRequest(infos, 0);
      await decide(id, 'approve');
      expect((await held).sets[0]!.rows).toHaveLength(200);
      // Held, then cancelled: the response ends, the ATTENTION acknowledgement follows.
      const cancelled = query(c, 'SELECT COUNT(*) FROM orders').catch((e: Error & { code?: string }) => e.code);
      await heldRequest(infos, 1);
      c.cancel();
      expect(await cancelled).toBe('ECANCEL');
      // Held, then denied.
      const denied = query(c, 'DELETE FROM orders WHERE id = 1').catch((e: Error & { number?: number }) => e.number);
      await decide(await heldRequest(infos, 2), 'deny');
      expect(await denied).toBe(229);
    } finally {
      await closeTedious(c);
    }
    // A FEDAUTH login: warden's login response carries its own FEATUREEXTACK.
    const f = await connectTedious(tediousConfig({ port: h.port, encrypt: false, auth: { fedauthToken: await h.tw.token() } }));
    await query(f, 'SELECT 1');
    await closeTedious(f);
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise((r) => tshark.once('exit', r));
    tshark.kill('SIGINT');
    await exited;

    const decode = ['-r', file, '-d', `tcp.port==${h.port},tds`];
    const types = await run(findClient('tshark') as string, [...decode, '-Y', 'tds', '-T', 'fields', '-e', 'tds.type'], { timeoutMs: 60_000 });
    expect(types.code, types.stderr).toBe(0);
    const seen = new Set(types.stdout.split(/\s+/).flatMap((l) => l.split(',')).filter(Boolean).map((t) => Number(t)));
    // PRELOGIN, LOGIN7, SQL batch, RPC and tabular results were all dissected as TDS.
    // LOGIN7, SQL batch, RPC and tabular results were all dissected as TDS …
    for (const t of [0x10, 0x01, 0x03, 0x04]) expect(seen, `packet type 0x${t.toString(16)}`).toContain(t);
    // … and PRELOGIN too (the dissector names it rather than giving a type field).
    const summary = await run(findClient('tshark') as string, decode, { timeoutMs: 60_000 });
    expect(summary.stdout).toMatch(/TDS7 pre-login message/);
    expect(summary.stdout).toMatch(/TDS7 login/);
    // Nothing anywhere is malformed; nothing warden sent draws a warning. (The dissector reads the
    // FeatureExt of tedious's own LOGIN7 as GSS-API and warns about it: that packet is the client's.)
    const malformed = await run(findClient('tshark') as string, [...decode, '-Y', `_ws.malformed || (_ws.expert.severity >= "warning" && tcp.srcport == ${h.port})`], { timeoutMs: 60_000 });
    expect(malformed.code, malformed.stderr).toBe(0);
    expect(malformed.stdout.trim()).toBe('');
    // Warden's responses number their packets 1, 2, 3 … within each message, held ones included.
    const numbers = await run(findClient('tshark') as string, [...decode, '-Y', `tds && tcp.srcport == ${h.port}`, '-T', 'fields', '-e', 'tds.packet_number', '-e', 'tds.status.eom'], { timeoutMs: 60_000 });
    let expected = 1;
    let longest = 0;
    for (const line of numbers.stdout.split('\n').filter(Boolean)) {
      // One TCP segment may carry several packets: the fields list them all, in order.
      const [ids, eoms] = line.split('\t').map((f) => f.split(',').map(Number));
      ids!.forEach((n, i) => {
        expect(n, numbers.stdout).toBe(expected);
        longest = Math.max(longest, n);
        expected = eoms![i] ? 1 : expected + 1;
      });
    }
    expect(longest).toBeGreaterThanOrEqual(3);
  }, 120_000);

  async function heldRequest(infos: string[], index: number): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const m = infos.filter((n) => n.includes('held for approval'))[index]?.match(/request (\S+),/)?.[1];
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('statement was not held');
  }

  async function decide(id: string, action: 'approve' | 'deny'): Promise<void> {
    const token = await h.tw.token({ subject: 'dba-alice', roles: [APPROVER_ROLE] });
    const res = await fetch(`${h.tw.warden.adminUrl}/approvals/${id}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'tshark test' }),
    });
    expect(res.status).toBe(200);
  }
});

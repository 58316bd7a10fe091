// Wireshark's TDS dissector reads warden's side of a session as well-formed TDS: a plaintext
// session (plaintext tokens allowed from loopback, so the bytes can be decoded) with the login,
// all customers columns, several result sets, an RPC with parameters, an error and a refusal by
// warden itself, captured on loopback with tshark and dissected with no malformed packet and
// no warning on anything warden sent.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { closeTedious, connectTedious, query, startTdsHarness, tediousConfig, TYPES, type TdsHarness } from '../helpers/tds.js';

const skip = missingClient('tshark');

describe.skipIf(skip)('tshark dissects warden\'s TDS', () => {
  let h: TdsHarness;
  let dir: string;

  beforeAll(async () => {
    h = await startTdsHarness({ plaintextTokens: 'loopback', yaml: 'rules:\n  - { name: no-drop, match: { kinds: [drop] }, action: deny }\n' });
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
  }, 120_000);
});

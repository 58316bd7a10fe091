// FreeTDS `tsql` (TDS 7.4, GnuTLS) against warden. FreeTDS cuts every LOGIN7 string — the
// password too — to 128 characters, so no OIDC access token survives as its password: tsql users
// exchange their token for a session ticket (POST /tickets) and log in with that, getting the
// same rows as from the stand-in directly. A token itself is refused, naming the cut. With `encryption = require` (TLS in PRELOGIN for the
// whole session) and the default `request` (login-only TLS: the handshake in PRELOGIN packets,
// LOGIN7 in TLS, then plaintext) warden completes the handshake, reads the LOGIN7 through TLS and
// answers with a login error tsql prints, naming the cut; with `encryption = off` warden refuses
// the plaintext token. The same tsql against the stand-in directly logs in and queries, as a
// check that the client itself works here.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { STANDIN_LOGIN, startTdsHarness, type TdsHarness } from '../helpers/tds.js';

const skip = missingClient('tsql');

describe.skipIf(skip)('FreeTDS tsql against warden', () => {
  let h: TdsHarness;
  let dir: string;

  beforeAll(async () => {
    h = await startTdsHarness();
    dir = mkdtempSync(join(tmpdir(), 'warden-freetds-'));
    for (const enc of ['require', 'request', 'off']) writeFileSync(join(dir, `${enc}.conf`), `[global]\n\ttds version = 7.4\n\tencryption = ${enc}\n`);
  });

  afterAll(async () => {
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tsql = (port: number, user: string, password: string, encryption: string): ReturnType<typeof run> =>
    run(findClient('tsql') as string, ['-H', '127.0.0.1', '-p', String(port), '-U', user, '-P', password, '-D', 'shop'], {
      input: 'SELECT id, full_name, salary FROM customers WHERE id <= 3 ORDER BY id\ngo\nexit\n',
      env: { FREETDSCONF: join(dir, `${encryption}.conf`), TDSVER: '7.4' },
      timeoutMs: 30_000,
    });

  it('works against the stand-in directly (the client itself is fine)', async () => {
    const r = await tsql(h.standin.port, STANDIN_LOGIN.user, STANDIN_LOGIN.password, 'require');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1\tAlice Testperson\t42657\.09/);
  });

  it.each(['require', 'request'])('encryption = %s: TLS completes, the login is refused naming the 128-character cut', async (enc) => {
    const failures = h.tw.warden.metrics.authFailuresTotal.get({ protocol: 'tds', reason: 'malformed token' });
    const r = await tsql(h.port, 'agent', await h.tw.token(), enc);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Msg 18456 \(severity 14, state 1\) from warden/);
    expect(r.stderr).toMatch(/Login failed for user 'agent'\. Reason: token rejected: malformed token \(the password arrived cut to 128 characters/);
    expect(h.tw.warden.metrics.authFailuresTotal.get({ protocol: 'tds', reason: 'malformed token' })).toBe(failures + 1);
  });

  it('encryption = off: the token is refused in plaintext', async () => {
    const r = await tsql(h.port, 'agent', await h.tw.token(), 'off');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Login failed for user 'agent'\. Reason: warden accepts access tokens only over TLS/);
  });

  async function ticket(token: string): Promise<string> {
    const res = await fetch(`${h.tw.warden.adminUrl}/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ticket: string; expires_at: string };
    expect(body.ticket).toMatch(/^wdt_[A-Za-z0-9_-]{32}$/);
    return body.ticket;
  }

  it.each(['require', 'request'])('encryption = %s with a session ticket: the same rows as the stand-in directly', async (enc) => {
    const direct = await tsql(h.standin.port, STANDIN_LOGIN.user, STANDIN_LOGIN.password, 'require');
    const r = await tsql(h.port, 'agent', await ticket(await h.tw.token()), enc);
    expect(r.code, r.stderr).toBe(0);
    const rows = (out: string): string[] => out.split('\n').filter((l) => /^\d+\t/.test(l));
    expect(rows(r.stdout)).toEqual(rows(direct.stdout));
    expect(rows(r.stdout)).toHaveLength(3);
  });

  it('a ticket is refused in plaintext like a token, and an unknown ticket is refused', async () => {
    const t = await ticket(await h.tw.token());
    const plain = await tsql(h.port, 'agent', t, 'off');
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/only over TLS/);
    const forged = await tsql(h.port, 'agent', `wdt_${'A'.repeat(32)}`, 'require');
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toMatch(/ticket is unknown or expired/);
  });

  it('tickets are exchanged only for valid tokens', async () => {
    const bad = await fetch(`${h.tw.warden.adminUrl}/tickets`, { method: 'POST', headers: { authorization: 'Bearer nonsense' } });
    expect(bad.status).toBe(401);
    const t = await ticket(await h.tw.token());
    const chained = await fetch(`${h.tw.warden.adminUrl}/tickets`, { method: 'POST', headers: { authorization: `Bearer ${t}` } });
    expect(chained.status).toBe(401);
  });
});

// jTDS 1.3.1 (TDS 7.1, a Java client) through warden vs straight to the stand-in, step for step:
// the shared scenario in test/clients/tds/JtdsClient.java (all customers columns, several result
// sets, errors, PRINT, a rolled-back transaction, sp_executesql with output parameters, prepared
// statements, a procedure call, cancel) with ssl=require, the token as the password.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClient, missingClient } from '../helpers/clients.js';
import { run } from '../helpers/run.js';
import { STANDIN_LOGIN, startTdsHarness, type TdsHarness } from '../helpers/tds.js';

const skip = missingClient('java') || missingClient('javac') || missingClient('jtds');

describe.skipIf(skip)('jTDS through warden', () => {
  let h: TdsHarness;
  let classes: string;
  let jar: string;

  beforeAll(async () => {
    jar = findClient('jtds') as string;
    classes = mkdtempSync(join(tmpdir(), 'warden-jtds-'));
    const compiled = await run(findClient('javac') as string, ['-cp', jar, '-d', classes, 'test/clients/tds/JtdsClient.java'], { cwd: process.cwd(), timeoutMs: 120_000 });
    expect(compiled.stderr).toBe('');
    h = await startTdsHarness();
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
    if (classes) rmSync(classes, { recursive: true, force: true });
  });

  const scenario = (port: number, user: string, password: string, ssl: string, database = 'shop'): Promise<{ lines: Record<string, unknown>[]; stderr: string; code: number | null }> =>
    run(findClient('java') as string, ['-cp', `${jar}:${classes}`, 'JtdsClient', '127.0.0.1', String(port), user, password, ssl, database], { timeoutMs: 90_000 }).then((r) => ({
      lines: r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
      stderr: r.stderr,
      code: r.code,
    }));

  it('runs the whole scenario with results identical to a direct connection (ssl=require, token as password)', async () => {
    const token = await h.tw.token();
    const viaWarden = await scenario(h.port, 'agent', token, 'require');
    const direct = await scenario(h.standin.port, STANDIN_LOGIN.user, STANDIN_LOGIN.password, 'require');
    expect(viaWarden.code, viaWarden.stderr).toBe(0);
    expect(direct.code, direct.stderr).toBe(0);
    expect(viaWarden.lines.length).toBeGreaterThan(5);
    expect(viaWarden.lines.map((l) => l.step)).toEqual(direct.lines.map((l) => l.step));
    // The cancel step's `ms` is a timing: both must be quick, not equal.
    const timing = (l: Record<string, unknown>): number | undefined => (l.step === 'cancel' ? (l.ms as number) : undefined);
    const untimed = (l: Record<string, unknown>): Record<string, unknown> => (l.step === 'cancel' ? { ...l, ms: undefined } : l);
    for (let i = 0; i < direct.lines.length; i++) expect(untimed(viaWarden.lines[i]!), String(direct.lines[i]!.step)).toEqual(untimed(direct.lines[i]!));
    const cancel = viaWarden.lines.find((l) => l.step === 'cancel');
    expect(cancel).toMatchObject({ cancelled: true, after: 1 });
    expect(timing(cancel!)).toBeLessThan(10_000);
  }, 200_000);

  it('is refused in plaintext (ssl=off) with the login error jTDS reports', async () => {
    const token = await h.tw.token();
    const r = await scenario(h.port, 'agent', token, 'off');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Login failed for user 'agent'\. Reason: warden accepts access tokens only over TLS/);
  }, 120_000);

  it('is told why it cannot use a target that logs in with an access token (FEDAUTH needs TDS 7.4)', async () => {
    const r = await scenario(h.port, 'agent', await h.tw.token(), 'require', 'shop_token');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'Login failed for user \'agent\'. Reason: could not log in to the target "shop_token": it logs in with an access token (FEDAUTH), which needs TDS 7.4, and this client asked for TDS 7.1; use a target with a SQL login',
    );
  }, 120_000);
});

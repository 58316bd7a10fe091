// `warden approvals` against a running admin server with real tokens: every command in-process
// (output and exit codes), `watch` following the event stream, and the real entry point in a
// child process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HoldRequest } from '../../src/approvals/types.js';
import { parseGrant, run } from '../../src/cli/commands/approvals.js';
import { projectRoot } from '../../src/embedded/seed.js';
import { closedPort } from '../unit/identity-support.js';
import { APPROVER_ROLE, eventually, holdRequest, startApprovalsServer, type ApprovalsServer } from '../unit/approvals-support.js';

const exec = promisify(execFile);

let server: ApprovalsServer;
let token: string;
let agentRequest: HoldRequest;

beforeAll(async () => {
  server = await startApprovalsServer();
  token = await server.token('carol', { roles: [APPROVER_ROLE] });
  agentRequest = holdRequest({ principal: await server.agent('agent-app') });
});

afterAll(async () => {
  await server?.stop();
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, signal?: AbortSignal): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { WARDEN_ADMIN_URL: server.url, WARDEN_TOKEN: token, ...env },
    ...(signal ? { signal } : {}),
  });
  return { code, stdout, stderr };
}

describe('warden approvals (in-process)', () => {
  it('list shows pending requests as a table; --json gives the API answer', async () => {
    const hold = await server.approvals.service.hold(agentRequest);
    const out = await cli(['list']);
    expect(out.code).toBe(0);
    const [header, ...rows] = out.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+STATUS\s+EXPIRES\s+PRINCIPAL\s+TARGET\s+RULE\s+STATEMENT$/);
    expect(rows.find((r) => r.startsWith(hold.id))).toMatch(new RegExp(`^${hold.id}\\s+pending\\s+in \\d+s?\\S*\\s+support-agent\\s+shop\\s+order-deletes\\s+DELETE FROM orders WHERE id = 42$`));
    const json = await cli(['list', '--json']);
    expect(JSON.parse(json.stdout).requests.map((r: { id: string }) => r.id)).toContain(hold.id);
    hold.withdraw('cancelled');
  });

  it('show prints the request, its statement and parameters', async () => {
    const hold = await server.approvals.service.hold({ ...agentRequest, params: ['42', null] });
    const out = await cli(['show', hold.id]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`request    ${hold.id} (pending)`);
    expect(out.stdout).toContain('principal  support-agent (dev:agent-app)');
    expect(out.stdout).toContain('rule       order-deletes: ');
    expect(out.stdout).toContain(`review     ${server.url}/approvals/ui?request=${hold.id}`);
    expect(out.stdout).toContain('\nDELETE FROM orders WHERE id = 42\n');
    expect(out.stdout).toContain('parameters:\n  $1 = 42\n  $2 = NULL');
    hold.withdraw('cancelled');
  });

  it('show and list print characters that hide or rewrite text on a terminal as <U+XXXX>', async () => {
    // A lone CR makes the terminal write the rest over the line; ESC [2K erases it; U+202E reverses what follows.
    const sql = 'DROP TABLE customers;\r\u001b[2KSELECT 1 AS harmless_check; -- \u202E\r\nSELECT 2';
    const hold = await server.approvals.service.hold({ ...agentRequest, sql, params: ['\u001b]0;x\u0007'] });
    const out = await cli(['show', hold.id]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('\nDROP TABLE customers;<U+000D><U+001B>[2KSELECT 1 AS harmless_check; -- <U+202E>\r\nSELECT 2\n');
    expect(out.stdout).toContain('  $1 = <U+001B>]0;x<U+0007>');
    const listed = await cli(['list']);
    expect(listed.stdout.split('\n').find((l) => l.startsWith(hold.id))).toContain('DROP TABLE customers;<U+000D><U+001B>[2KSELECT 1');
    for (const o of [out, listed]) expect(o.stdout).not.toMatch(/[\u001b\u0007\u202e]|\r(?!\n)/);
    hold.withdraw('cancelled');
  });

  it('approve releases the held statement; approving again fails with the HTTP error and exit 1', async () => {
    const hold = await server.approvals.service.hold(agentRequest);
    const out = await cli(['approve', hold.id, '--reason', 'ticket 123']);
    expect(out).toEqual({ code: 0, stdout: `approved ${hold.id}\n`, stderr: '' });
    expect(await hold.outcome).toMatchObject({ decision: 'approved', approver: 'dev:carol', reason: 'ticket 123', scope: 'once' });
    const again = await cli(['approve', hold.id]);
    expect(again).toEqual({ code: 1, stdout: '', stderr: `warden approvals approve: HTTP 409: request ${hold.id} is already approved\n` });
  });

  it('approve --grant, grants, revoke', async () => {
    const hold = await server.approvals.service.hold(agentRequest);
    const out = await cli(['approve', hold.id, '--grant', '30m']);
    expect(out.code).toBe(0);
    const grantId = /grant (grt_[0-9a-z]+) until /.exec(out.stdout)?.[1];
    expect(grantId).toBeDefined();
    expect(await hold.outcome).toMatchObject({ scope: 'grant', grantId });
    const grants = await cli(['grants']);
    expect(grants.stdout).toMatch(new RegExp(`^${grantId}\\s+live\\s+in (?:29m\\d+s|30m0s)\\s+support-agent\\s+shop\\s+dev:carol\\s+DELETE FROM orders WHERE id = \\$1$`, 'm'));
    expect(await cli(['revoke', grantId!, '--reason', 'done'])).toEqual({ code: 0, stdout: `revoked ${grantId}\n`, stderr: '' });
    expect((await cli(['grants'])).stdout).not.toContain(grantId);
    expect((await cli(['grants', '--all'])).stdout).toMatch(new RegExp(`^${grantId}\\s+revoked`, 'm'));
    const next = await server.approvals.service.hold(agentRequest);
    expect(await cli(['approve', next.id, '--grant', '90m'])).toEqual({
      code: 1, stdout: '', stderr: 'warden approvals approve: HTTP 400: grant_minutes must be a whole number from 1 to 60 (approvals.grant_max)\n',
    });
    next.withdraw('cancelled');
  });

  it('deny needs a reason; the agent gets it', async () => {
    const hold = await server.approvals.service.hold(agentRequest);
    expect(await cli(['deny', hold.id])).toMatchObject({ code: 2, stderr: expect.stringContaining('deny needs --reason') });
    expect(await cli(['deny', hold.id, '--reason', 'wrong customer'])).toEqual({ code: 0, stdout: `denied ${hold.id}\n`, stderr: '' });
    expect(await hold.outcome).toEqual({ decision: 'denied', approver: 'dev:carol', reason: 'wrong customer' });
  });

  it('reports errors clearly and exits non-zero', async () => {
    expect(await cli(['show', 'apr_000000000000'])).toEqual({ code: 1, stdout: '', stderr: 'warden approvals show: HTTP 404: no approval request apr_000000000000\n' });
    const agentToken = await server.token('agent-app', { roles: ['Warden.Agent'] });
    expect((await cli(['list'], { WARDEN_TOKEN: agentToken })).stderr).toMatch(/^warden approvals list: HTTP 403: not an approver/);
    expect(await cli(['list'], { WARDEN_TOKEN: 'garbage' })).toEqual({ code: 1, stdout: '', stderr: 'warden approvals list: HTTP 401: malformed token\n' });
    expect(await cli(['list'], { WARDEN_TOKEN: '' })).toMatchObject({ code: 2, stderr: expect.stringContaining('no access token: set WARDEN_TOKEN or pass --token') });
    const port = await closedPort();
    expect(await cli(['list', '--url', `http://127.0.0.1:${port}`])).toEqual({ code: 1, stdout: '', stderr: `warden approvals list: cannot reach warden at http://127.0.0.1:${port}: ECONNREFUSED\n` });
    expect(await cli(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    expect(await cli(['show'])).toMatchObject({ code: 2, stderr: expect.stringContaining('show needs an id') });
    expect(await cli(['list', '--bogus'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--bogus'") });
    expect(await cli(['--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('usage: warden approvals <command>') });
  });

  it('watch prints new and decided requests as they happen', async () => {
    const stop = new AbortController();
    let stdout = '';
    const watching = run(['watch'], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => true },
      env: { WARDEN_ADMIN_URL: server.url, WARDEN_TOKEN: token },
      signal: stop.signal,
    });
    await new Promise((r) => setTimeout(r, 200));
    const hold = await server.approvals.service.hold(agentRequest);
    await eventually(() => stdout.includes(`request.created ${hold.id} pending`), 5000, 'the created line');
    await cli(['deny', hold.id, '--reason', 'no']);
    await eventually(() => stdout.includes(`request.decided ${hold.id} denied by dev:carol`), 5000, 'the decided line');
    stop.abort();
    expect(await watching).toBe(0);
  });

  it('parses grant durations as whole minutes', () => {
    expect(parseGrant('30m')).toBe(30);
    expect(parseGrant('2h')).toBe(120);
    expect(parseGrant('1d')).toBe(1440);
    expect(parseGrant('45')).toBe(45);
    expect(() => parseGrant('1.5h')).toThrow(/not a duration/);
    expect(() => parseGrant('0m')).toThrow(/at least 1 minute/);
  });
});

describe('warden approvals (child process)', () => {
  it('runs through the real entry point and exits with the right code', async () => {
    const hold = await server.approvals.service.hold(agentRequest);
    const env = { ...process.env, WARDEN_ADMIN_URL: server.url, WARDEN_TOKEN: token };
    const ok = await exec('npx', ['tsx', 'src/cli/main.ts', 'approvals', 'approve', hold.id], { cwd: projectRoot(), env, timeout: 60_000 });
    expect(ok.stdout).toBe(`approved ${hold.id}\n`);
    expect((await hold.outcome).decision).toBe('approved');
    const failed = await exec('npx', ['tsx', 'src/cli/main.ts', 'approvals', 'deny', hold.id, '--reason', 'late'], { cwd: projectRoot(), env, timeout: 60_000 }).catch((e: unknown) => e as { code: number; stderr: string });
    expect(failed).toMatchObject({ code: 1, stderr: `warden approvals deny: HTTP 409: request ${hold.id} is already approved\n` });
  });
});

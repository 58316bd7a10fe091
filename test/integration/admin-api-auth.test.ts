// The admin API's bearer tokens, as an HTTP client sees them: which routes need a token, what an
// agent's own token may do there (nothing), and that every refused token is logged (reason and
// detail, never the token) and counted in warden_auth_failures_total{protocol="http"}.
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { APPROVER_ROLE, startTestWarden, type TestWarden } from '../helpers/warden.js';

let w: TestWarden;
const logLines: string[] = [];

beforeAll(async () => {
  const out = new PassThrough();
  out.on('data', (c: Buffer) => logLines.push(...c.toString().split('\n').filter(Boolean)));
  w = await startTestWarden({
    logger: createLogger({ level: 'info', destination: out }),
    yaml: `
transcripts:
  auditors:
    - { name: auditors, match: { issuer: dev, roles: [Warden.Auditor] } }
approvals:
  approvers:
    - { name: ops, match: { issuer: dev, roles: [${APPROVER_ROLE}] } }
`,
  });
});
afterAll(async () => {
  await w?.stop();
});

async function call(path: string, token?: string, method = 'GET'): Promise<number> {
  const res = await fetch(`${w.warden.adminUrl}${path}`, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

const PROTECTED: [string, string][] = [
  ['/sessions', 'GET'],
  ['/review?principal=agent', 'GET'],
  ['/transcripts/verify', 'GET'],
  ['/transcripts/health', 'GET'],
  ['/approvals', 'GET'],
  ['/grants', 'GET'],
  ['/approvals/apr_1/approve', 'POST'],
];

describe('admin API authentication', () => {
  it('refuses every protected route without a token (401) and an agent token (403); health, metrics and keys are open', async () => {
    const agent = await w.token();
    for (const [path, method] of PROTECTED) {
      expect([path, await call(path, undefined, method)]).toEqual([path, 401]);
      expect([path, await call(path, agent, method)]).toEqual([path, 403]);
    }
    expect(await call('/tickets', undefined, 'POST')).toBe(401);
    for (const open of ['/healthz', '/metrics', '/dev-issuer/jwks.json', '/approvals/ui']) expect(await call(open)).toBe(200);
  });

  it('logs and counts each refused bearer token, without the token', async () => {
    const before = w.warden.metrics.authFailuresTotal.get({ protocol: 'http', reason: 'malformed token' }) ?? 0;
    const now = Math.floor(Date.now() / 1000);
    const expired = await w.token({ extraClaims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } });
    expect(await call('/sessions', 'not-a-token')).toBe(401);
    expect(await call('/approvals', 'not-a-token')).toBe(401);
    expect(await call('/tickets', 'not-a-token', 'POST')).toBe(401);
    expect(await call('/sessions', expired)).toBe(401);
    expect(w.warden.metrics.authFailuresTotal.get({ protocol: 'http', reason: 'malformed token' })).toBe(before + 3);
    expect(w.warden.metrics.authFailuresTotal.get({ protocol: 'http', reason: 'token expired' })).toBe(1);
    const refused = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'bearer token refused');
    expect(refused.map((l) => [l.path, l.reason])).toEqual([
      ['/sessions', 'malformed token'],
      ['/approvals', 'malformed token'],
      ['/tickets', 'malformed token'],
      ['/sessions', 'token expired'],
    ]);
    expect(String(refused[3]?.detail)).toContain('is past');
    expect(logLines.join('\n')).not.toContain(expired.split('.')[2] as string);
  });

  it('answers an oversized POST /tickets body with 413, without an error log line', async () => {
    const logged = logLines.length;
    for (const token of ['abc.def.ghi', await w.token()]) {
      const res = await fetch(`${w.warden.adminUrl}/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x'.repeat(10_000) });
      expect(res.status).toBe(413);
      expect(await res.json()).toEqual({ error: 'the body is larger than 4096 bytes' });
    }
    const errors = logLines.slice(logged).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errors).toEqual([]);
  });
});

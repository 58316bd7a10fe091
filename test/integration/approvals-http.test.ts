// The approvals API on a real admin server, with real tokens from the dev issuer (verified through
// its JWKS URL, like Azure AD's): approver vs non-approver vs the requester, every error status,
// grants, the event stream read by a real client, and the review page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hold, HoldRequest } from '../../src/approvals/types.js';
import { api, APPROVER_ROLE, holdRequest, sse, startApprovalsServer, type ApprovalsServer } from '../unit/approvals-support.js';

let server: ApprovalsServer;
let approver: string;
let otherApprover: string;
let nobody: string;
let requesterToken: string;
let agentRequest: HoldRequest;

beforeAll(async () => {
  server = await startApprovalsServer();
  approver = await server.token('alice', { roles: [APPROVER_ROLE], name: 'Alice Admin', extraClaims: { preferred_username: 'alice@example.com' } });
  otherApprover = await server.token('bob', { roles: [APPROVER_ROLE] });
  nobody = await server.token('mallory', { roles: ['Warden.Agent'] });
  // The agent's own identity, with the approver role too: still may not decide its own request.
  requesterToken = await server.token('agent-app', { roles: [APPROVER_ROLE] });
  agentRequest = holdRequest({ principal: await server.agent('agent-app') });
});

afterAll(async () => {
  await server?.stop();
});

async function held(extra: Partial<HoldRequest> = {}): Promise<Hold> {
  return server.approvals.service.hold(holdRequest({ principal: agentRequest.principal, ...extra }));
}

describe('authentication and authorization', () => {
  it('401 without a token or with a refused one, with the short reason', async () => {
    const none = await api(server.url, 'GET', '/approvals', undefined);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'missing bearer token (send Authorization: Bearer <access token>)', code: 'unauthorized' });
    expect(none.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect((await api(server.url, 'GET', '/approvals', 'not-a-jwt')).body).toMatchObject({ error: 'malformed token' });
    const expired = await server.token('alice', { roles: [APPROVER_ROLE], extraClaims: { exp: Math.floor(Date.now() / 1000) - 3600, nbf: Math.floor(Date.now() / 1000) - 7200, iat: Math.floor(Date.now() / 1000) - 7200 } });
    expect(await api(server.url, 'GET', '/approvals', expired)).toMatchObject({ status: 401, body: { error: 'token expired' } });
    const wrongAudience = await server.token('alice', { roles: [APPROVER_ROLE], audience: 'api://elsewhere' });
    expect(await api(server.url, 'GET', '/approvals', wrongAudience)).toMatchObject({ status: 401, body: { error: 'token audience is not accepted' } });
  });

  it('403 for a valid token no approver rule covers', async () => {
    const hold = await held();
    for (const [method, path] of [['GET', '/approvals'], ['GET', `/approvals/${hold.id}`], ['POST', `/approvals/${hold.id}/approve`], ['GET', '/grants']] as const) {
      const res = await api(server.url, method, path, nobody, method === 'POST' ? {} : undefined);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toMatch(/^not an approver/);
    }
    const events = await sse(server.url, nobody);
    expect(events.status).toBe(403);
    hold.withdraw('cancelled');
  });

  it('403 for the requester themself; nothing changes', async () => {
    const hold = await held();
    const res = await api(server.url, 'POST', `/approvals/${hold.id}/approve`, requesterToken, { reason: 'trust me' });
    expect(res).toMatchObject({ status: 403, body: { error: 'you cannot decide your own request', code: 'forbidden' } });
    expect((await api(server.url, 'GET', `/approvals/${hold.id}`, approver)).body.request.status).toBe('pending');
    hold.withdraw('cancelled');
  });
});

describe('deciding', () => {
  it('approves once: the hold is released with the approver recorded', async () => {
    const hold = await held({ params: ['42'] });
    const shown = await api(server.url, 'GET', `/approvals/${hold.id}`, approver);
    expect(shown.status).toBe(200);
    expect(shown.body.request).toMatchObject({
      id: hold.id, status: 'pending', target: 'shop', statement: 'DELETE FROM orders WHERE id = 42', params: ['42'],
      principal: { name: 'support-agent', issuer: 'dev', subject: 'agent-app' }, rule: 'order-deletes',
      url: `${server.url}/approvals/ui?request=${hold.id}`,
    });
    const res = await api(server.url, 'POST', `/approvals/${hold.id}/approve`, approver, { reason: 'checked the order' });
    expect(res.status).toBe(200);
    expect(res.body.request).toMatchObject({ status: 'approved', decision: { reason: 'checked the order', scope: 'once', by: { label: 'dev:alice@example.com', name: 'alice@example.com', subject: 'alice', rule: 'approvers' } } });
    expect(res.body.grant).toBeUndefined();
    expect(await hold.outcome).toEqual({ decision: 'approved', approver: 'dev:alice@example.com', reason: 'checked the order', scope: 'once' });
  });

  it('409 on a second decision, 404 on an unknown id, 400 on bad input; nothing changes', async () => {
    const hold = await held();
    await api(server.url, 'POST', `/approvals/${hold.id}/deny`, otherApprover, { reason: 'not today' });
    expect(await hold.outcome).toEqual({ decision: 'denied', approver: 'dev:bob', reason: 'not today' });
    const twice = await api(server.url, 'POST', `/approvals/${hold.id}/approve`, approver, {});
    expect(twice).toMatchObject({ status: 409, body: { error: `request ${hold.id} is already denied`, code: 'conflict', status: 'denied' } });
    expect((await api(server.url, 'POST', '/approvals/apr_000000000000/approve', approver, {})).status).toBe(404);
    expect((await api(server.url, 'GET', '/approvals/apr_000000000000', approver)).body).toEqual({ error: 'no approval request apr_000000000000', code: 'not_found' });
    expect((await api(server.url, 'GET', '/approvals/not-an-id', approver)).status).toBe(404);

    const pending = await held();
    const bad: Array<[unknown, RegExp]> = [
      ['{not json', /not valid JSON/],
      [[1, 2], /must be a JSON object/],
      [{ reason: 5 }, /reason must be a string/],
      [{ grant_minutes: '30m' }, /grant_minutes must be a number/],
      [{ grant_minutes: 0 }, /grant_minutes must be a whole number from 1 to 60/],
      [{ grant_minutes: 61 }, /from 1 to 60/],
      [{ approve: true }, /unknown field "approve"/],
      [{ reason: 'x'.repeat(20_000) }, /larger than 16384 bytes/],
    ];
    for (const [body, message] of bad) {
      const res = await api(server.url, 'POST', `/approvals/${pending.id}/approve`, approver, body);
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(res.body.error).toMatch(message);
    }
    expect((await api(server.url, 'POST', `/approvals/${pending.id}/deny`, approver, {})).body.error).toBe('a denial needs a reason');
    expect((await api(server.url, 'GET', `/approvals/${pending.id}`, approver)).body.request.status).toBe('pending');
    const wrongMethod = await api(server.url, 'GET', `/approvals/${pending.id}/approve`, approver);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    pending.withdraw('cancelled');
  });

  it('lists with filters', async () => {
    const a = await held({ target: 'crm' });
    const b = await held();
    const pending = await api(server.url, 'GET', '/approvals?status=pending', approver);
    const ids = pending.body.requests.map((r: { id: string }) => r.id);
    expect(ids.slice(0, 2)).toEqual([b.id, a.id]);
    expect((await api(server.url, 'GET', '/approvals?status=pending&target=crm', approver)).body.requests.map((r: { id: string }) => r.id)).toEqual([a.id]);
    expect((await api(server.url, 'GET', '/approvals?principal=agent-app&limit=1', approver)).body.requests.map((r: { id: string }) => r.id)).toEqual([b.id]);
    expect(await api(server.url, 'GET', '/approvals?status=waiting', approver)).toMatchObject({ status: 400, body: { error: 'status must be one of pending, approved, denied, expired, withdrawn' } });
    a.withdraw('cancelled');
    b.withdraw('cancelled');
  });
});

describe('grants', () => {
  it('approve with a grant; the grant covers the next statement; list and revoke it', async () => {
    const hold = await held();
    const res = await api(server.url, 'POST', `/approvals/${hold.id}/approve`, approver, { reason: 'batch', grant_minutes: 15 });
    expect(res.status).toBe(200);
    const grant = res.body.grant;
    expect(grant).toMatchObject({ status: 'live', target: 'shop', principal: { name: 'support-agent' }, request_id: hold.id, approver: { label: 'dev:alice@example.com' } });
    expect(Date.parse(grant.expires_at) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(await hold.outcome).toMatchObject({ decision: 'approved', scope: 'grant', grantId: grant.id });
    expect(await server.approvals.service.findGrant(holdRequest({ principal: agentRequest.principal, sql: 'DELETE FROM orders WHERE id = 1000' }))).toMatchObject({ id: grant.id });

    const live = await api(server.url, 'GET', '/grants', approver);
    expect(live.body.grants.map((g: { id: string }) => g.id)).toContain(grant.id);
    expect((await api(server.url, 'DELETE', `/grants/${grant.id}`, nobody)).status).toBe(403);
    const revoked = await api(server.url, 'DELETE', `/grants/${grant.id}`, otherApprover, { reason: 'batch done' });
    expect(revoked).toMatchObject({ status: 200, body: { grant: { id: grant.id, status: 'revoked', revoke_reason: 'batch done', revoked_by: { label: 'dev:bob' } } } });
    expect(await server.approvals.service.findGrant(holdRequest({ principal: agentRequest.principal, sql: 'DELETE FROM orders WHERE id = 1000' }))).toBeUndefined();
    expect((await api(server.url, 'DELETE', `/grants/${grant.id}`, otherApprover)).status).toBe(409);
    expect((await api(server.url, 'DELETE', '/grants/grt_000000000000', otherApprover)).status).toBe(404);
    expect((await api(server.url, 'GET', '/grants', approver)).body.grants.map((g: { id: string }) => g.id)).not.toContain(grant.id);
    expect((await api(server.url, 'GET', '/grants?all=true', approver)).body.grants.map((g: { id: string }) => g.id)).toContain(grant.id);
  });
});

describe('the event stream', () => {
  it('delivers created, decided, withdrawn and grant events to a real client, and replays after Last-Event-ID', async () => {
    const stream = await sse(server.url, approver);
    expect(stream.status).toBe(200);
    try {
      const first = await held();
      const created = await stream.next('request.created', (e) => e.data.request?.id === first.id);
      expect(created.data.request).toMatchObject({ status: 'pending', statement: agentRequest.sql });
      expect(created.data.request).not.toHaveProperty('params');
      await api(server.url, 'POST', `/approvals/${first.id}/approve`, approver, { grant_minutes: 5 });
      const decided = await stream.next('request.decided', (e) => e.data.request?.id === first.id);
      expect(decided.data.request.decision).toMatchObject({ scope: 'grant', by: { label: 'dev:alice@example.com' } });
      const grantCreated = await stream.next('grant.created');
      await api(server.url, 'DELETE', `/grants/${grantCreated.data.grant.id}`, approver);
      await stream.next('grant.revoked', (e) => e.data.grant?.id === grantCreated.data.grant.id);
      const second = await held();
      second.withdraw('disconnected');
      const withdrawn = await stream.next('request.withdrawn', (e) => e.data.request?.id === second.id);
      expect(withdrawn.data.request.decision.reason).toBe('disconnected');

      // A client that reconnects with the id of the first event gets what came after it.
      const replay = await sse(server.url, approver, created.id);
      try {
        await replay.next('request.withdrawn', (e) => e.data.request?.id === second.id);
        expect(replay.events[0]?.event).toBe('request.decided');
      } finally {
        replay.close();
      }
    } finally {
      stream.close();
    }
  });

  it('delivers request.expired', async () => {
    const quick = await startApprovalsServer({ approvals: { timeout: 1000 } });
    try {
      const token = await quick.token('alice', { roles: [APPROVER_ROLE] });
      const stream = await sse(quick.url, token);
      const hold = await quick.approvals.service.hold(holdRequest({ principal: await quick.agent('agent-app') }));
      const expired = await stream.next('request.expired', (e) => e.data.request?.id === hold.id, 5000);
      expect(expired.data.request.status).toBe('expired');
      expect(await hold.outcome).toEqual({ decision: 'expired' });
      stream.close();
    } finally {
      await quick.stop();
    }
  });
});

describe('the review page', () => {
  it('is one self-contained page with a nonce CSP and no data in it', async () => {
    await held();
    const res = await fetch(`${server.url}/approvals/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    expect(html).not.toContain('innerHTML');
    expect(html).not.toContain('DELETE FROM orders');
    // Each load gets a fresh nonce.
    const again = (await fetch(`${server.url}/approvals/ui`)).headers.get('content-security-policy');
    expect(again).not.toBe(csp);
  });
});

// Two warden instances sharing the PostgreSQL approvals store, each with its own admin API: a
// decision given through instance B releases the statement held on instance A within a second
// (LISTEN/NOTIFY), or through the poll when notifications are lost; B's approvers see A's
// requests live; a race between approvers on both instances has one winner; a crashed instance's
// requests are withdrawn when it comes back; an unreachable store answers 503.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApproverPolicy } from '../../src/approvals/approvers.js';
import { ApprovalServiceImpl } from '../../src/approvals/service.js';
import { PostgresApprovalStore } from '../../src/approvals/store-postgres.js';
import type { HoldRequest } from '../../src/approvals/types.js';
import {
  api,
  APPROVER_ROLE,
  dropSchema,
  forwarder,
  holdRequest,
  pgStoreConfig,
  sse,
  startApprovalsServer,
  storeUrl,
  TEST_APPROVERS,
  uniqueSchema,
  type ApprovalsServer,
} from '../unit/approvals-support.js';

let schema: string;
const running: ApprovalsServer[] = [];
const cleanups: Array<() => Promise<void>> = [];

/** An instance on the shared store; the poll is slow so that only a notification can be fast. */
async function instance(id: string, trust?: ApprovalsServer, pollInterval = 10_000): Promise<ApprovalsServer> {
  const server = await startApprovalsServer({
    instanceId: id,
    approvals: { store: pgStoreConfig(schema, { pollInterval }) },
    ...(trust ? { trust: trust.dev } : {}),
  });
  running.push(server);
  return server;
}

beforeEach(() => {
  schema = uniqueSchema();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await Promise.all(running.splice(0).map((s) => s.stop().catch(() => undefined)));
  await dropSchema(schema);
});

async function agentRequest(server: ApprovalsServer, instanceId: string): Promise<HoldRequest> {
  return holdRequest({ instanceId, principal: await server.agent('agent-app') });
}

describe('two instances, one PostgreSQL store', () => {
  it('an approval through B releases the statement held on A within a second', async () => {
    const a = await instance('warden-a');
    const b = await instance('warden-b', a);
    const token = await a.token('alice', { roles: [APPROVER_ROLE] });
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const hold = await a.approvals.service.hold(await agentRequest(a, 'warden-a'));
      const settled = hold.outcome.then((o) => ({ o, at: performance.now() }));
      const start = performance.now();
      const res = await api(b.url, 'POST', `/approvals/${hold.id}/approve`, token, { reason: `round ${i}` });
      expect(res.status).toBe(200);
      const { o, at } = await settled;
      expect(o).toEqual({ decision: 'approved', approver: 'dev:alice', reason: `round ${i}`, scope: 'once' });
      latencies.push(at - start);
    }
    const worst = Math.max(...latencies);
    console.log(`approval via B → hold on A released: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms (worst ${worst.toFixed(1)} ms, poll interval 10 s)`);
    expect(worst).toBeLessThan(2000);
  });

  it('falls back to polling when notifications are lost', async () => {
    const b = await instance('warden-b');
    // Instance A without LISTEN: only its poll (every 200 ms) can see B's decision.
    const store = await PostgresApprovalStore.open({ config: pgStoreConfig(schema, { pollInterval: 200 }), notifications: false });
    const a = new ApprovalServiceImpl({
      store, approvers: new ApproverPolicy(TEST_APPROVERS), instanceId: 'warden-a', timeoutMs: 60_000, grantMaxMs: 3_600_000,
      storeGraceMs: 1000, baseUrl: () => 'http://warden-a',
    });
    await a.start();
    cleanups.push(async () => {
      await a.close();
      await store.close();
    });
    const hold = await a.hold(await agentRequest(b, 'warden-a'));
    const start = performance.now();
    const res = await api(b.url, 'POST', `/approvals/${hold.id}/deny`, await b.token('bob', { roles: [APPROVER_ROLE] }), { reason: 'no' });
    expect(res.status).toBe(200);
    expect(await hold.outcome).toEqual({ decision: 'denied', approver: 'dev:bob', reason: 'no' });
    const took = performance.now() - start;
    console.log(`denial via B → hold on A (polling only) released in ${took.toFixed(0)} ms`);
    expect(took).toBeLessThan(2000);
  });

  it('B\'s approvers see A\'s requests and decisions live', async () => {
    const a = await instance('warden-a');
    const b = await instance('warden-b', a);
    const token = await a.token('alice', { roles: [APPROVER_ROLE] });
    const stream = await sse(b.url, token);
    try {
      const hold = await a.approvals.service.hold(await agentRequest(a, 'warden-a'));
      const created = await stream.next('request.created', (e) => e.data.request?.id === hold.id, 10_000);
      expect(created.data.request).toMatchObject({ instance_id: 'warden-a', status: 'pending', url: `${b.url}/approvals/ui?request=${hold.id}` });
      await api(a.url, 'POST', `/approvals/${hold.id}/approve`, token, { grant_minutes: 10 });
      await stream.next('request.decided', (e) => e.data.request?.id === hold.id, 10_000);
      await stream.next('grant.created', (e) => e.data.grant?.request_id === hold.id, 10_000);
      // Each change arrives once, even though both instances heard it.
      await new Promise((r) => setTimeout(r, 200));
      expect(stream.events.filter((e) => e.event === 'request.created' && e.data.request?.id === hold.id)).toHaveLength(1);
      // The grant given on A covers the next statement on B.
      expect(await b.approvals.service.findGrant(holdRequest({ instanceId: 'warden-b', principal: await b.agent('agent-app'), sql: 'DELETE FROM orders WHERE id = 5' }))).toBeDefined();
    } finally {
      stream.close();
    }
  });

  it('approvers racing on both instances: one decision wins, the other gets 409', async () => {
    const a = await instance('warden-a');
    const b = await instance('warden-b', a);
    const alice = await a.token('alice', { roles: [APPROVER_ROLE] });
    const bob = await a.token('bob', { roles: [APPROVER_ROLE] });
    for (let i = 0; i < 5; i++) {
      const hold = await a.approvals.service.hold(await agentRequest(a, 'warden-a'));
      const [onA, onB] = await Promise.all([
        api(a.url, 'POST', `/approvals/${hold.id}/approve`, alice, {}),
        api(b.url, 'POST', `/approvals/${hold.id}/deny`, bob, { reason: 'no' }),
      ]);
      expect([onA.status, onB.status].sort()).toEqual([200, 409]);
      const outcome = await hold.outcome;
      expect(outcome.decision).toBe(onA.status === 200 ? 'approved' : 'denied');
    }
  });

  it('withdraws a crashed instance\'s requests when it restarts; its grants persist', async () => {
    const a = await instance('warden-a');
    const b = await instance('warden-b', a);
    const token = await a.token('alice', { roles: [APPROVER_ROLE] });
    const granted = await a.approvals.service.hold(await agentRequest(a, 'warden-a'));
    await api(b.url, 'POST', `/approvals/${granted.id}/approve`, token, { grant_minutes: 30 });
    const orphan = await a.approvals.service.hold(await agentRequest(a, 'warden-a'));
    await a.crash();
    expect((await api(b.url, 'GET', `/approvals/${orphan.id}`, token)).body.request.status).toBe('pending');

    const again = await instance('warden-a', b);
    const after = await api(b.url, 'GET', `/approvals/${orphan.id}`, token);
    expect(after.body.request).toMatchObject({ status: 'withdrawn', decision: { reason: 'warden restarted; the connection that held it is gone' } });
    expect(await again.approvals.service.findGrant(await agentRequest(b, 'warden-a'))).toBeDefined();
    expect((await api(b.url, 'POST', `/approvals/${orphan.id}/approve`, token, {})).status).toBe(409);
  });

  it('answers 503 while the store is unreachable, and holds are refused', async () => {
    const fwd = await forwarder();
    cleanups.push(() => fwd.close());
    const a = await startApprovalsServer({ instanceId: 'warden-a', approvals: { store: pgStoreConfig(schema, { url: storeUrl(fwd.port), timeout: 500 }) } });
    running.push(a);
    const token = await a.token('alice', { roles: [APPROVER_ROLE] });
    expect((await api(a.url, 'GET', '/approvals', token)).status).toBe(200);
    fwd.cut();
    const res = await api(a.url, 'GET', '/approvals', token);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'store_unavailable', error: expect.stringMatching(/^approval store unavailable: /) });
    await expect(a.approvals.service.hold(await agentRequest(a, 'warden-a'))).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});

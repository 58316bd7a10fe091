// The approval service over real stores: holds settled by decisions, timeouts and withdrawals;
// who may decide what; grants (reuse by fingerprint, exact text for literal-sensitive statements,
// expiry, revocation); restart recovery; a store that becomes unreachable while holding.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApproverPolicy } from '../../src/approvals/approvers.js';
import type { ApproverRule } from '../../src/approvals/config.js';
import { ApprovalError } from '../../src/approvals/model.js';
import { ApprovalServiceImpl, RESTART_REASON, type ServiceOptions } from '../../src/approvals/service.js';
import type { ApprovalStore } from '../../src/approvals/store.js';
import { EmbeddedApprovalStore } from '../../src/approvals/store-embedded.js';
import { PostgresApprovalStore } from '../../src/approvals/store-postgres.js';
import type { HoldOutcome } from '../../src/approvals/types.js';
import type { VerifiedIdentity } from '../../src/identity/types.js';
import { classify, initSqlParser } from '../../src/sql/index.js';
import { approvalFingerprint } from '../../src/approvals/fingerprint.js';
import { dropSchema, forwarder, holdRequest, pgStoreConfig, principal, sleep, storeUrl, tempDir, uniqueSchema } from './approvals-support.js';

const ISS = 'http://127.0.0.1:9/dev-issuer';

function identity(subject: string, extra: Partial<VerifiedIdentity> = {}): VerifiedIdentity {
  return {
    issuerName: 'dev', issuer: ISS, subject, subjectClaim: 'azp', objectId: `oid-${subject}`,
    roles: ['Warden.Approver'], groups: [], groupsOverage: false, audience: 'api://warden', ...extra,
  };
}

const alice = { identity: identity('alice'), displayName: 'alice@example.com' };
const bob = { identity: identity('bob') };
const lead = { identity: identity('lead', { roles: [] }) };
const stranger = { identity: identity('stranger', { roles: ['Something.Else'] }) };

const RULES: ApproverRule[] = [
  { name: 'dbas', match: { issuer: 'dev', roles: ['Warden.Approver'] }, targets: ['*'], rules: ['*'], principals: ['*'], mayGrant: true },
  { name: 'shop-leads', match: { subject: 'lead' }, targets: ['shop'], rules: ['order-deletes'], principals: ['*'], mayGrant: false },
];

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(async () => {
  await initSqlParser();
});

async function embeddedStore(dir = tempDir()): Promise<EmbeddedApprovalStore> {
  const store = await EmbeddedApprovalStore.open({ dir, retentionMs: 86_400_000 });
  cleanups.push(() => store.close());
  return store;
}

async function service(store: ApprovalStore, extra: Partial<ServiceOptions> = {}): Promise<ApprovalServiceImpl> {
  const s = new ApprovalServiceImpl({
    store,
    approvers: new ApproverPolicy(RULES),
    instanceId: 'instance-a',
    timeoutMs: 60_000,
    grantMaxMs: 3_600_000,
    storeGraceMs: 300,
    baseUrl: () => 'http://warden.test:9187',
    ...extra,
  });
  await s.start();
  cleanups.push(() => s.close());
  return s;
}

/** Resolves to the outcome, or to 'pending' if it has not settled within `ms`. */
function within(p: Promise<HoldOutcome>, ms: number): Promise<HoldOutcome | 'pending'> {
  return Promise.race([p, sleep(ms).then(() => 'pending' as const)]);
}

describe('holding a statement', () => {
  it('persists a pending request and gives the agent an id, a URL and an expiry', async () => {
    const store = await embeddedStore();
    const s = await service(store);
    const before = Date.now();
    const hold = await s.hold(holdRequest({ params: ['42'] }));
    expect(hold.id).toMatch(/^apr_[0-9a-z]{12}$/);
    expect(hold.url).toBe(`http://warden.test:9187/approvals/ui?request=${hold.id}`);
    expect(hold.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    expect(await store.getRequest(hold.id)).toMatchObject({
      status: 'pending', target: 'shop', instanceId: 'instance-a', sessionId: 'sess-1', params: ['42'],
      principal: { name: 'support-agent', subject: 'support-agent-app' }, rule: 'order-deletes', sql: 'DELETE FROM orders WHERE id = 42',
    });
    expect(await within(hold.outcome, 50)).toBe('pending');
    expect(s.holding).toBe(1);
  });

  it('settles with the approval, its approver and scope', async () => {
    const s = await service(await embeddedStore());
    const hold = await s.hold(holdRequest());
    await s.decide(alice, hold.id, { action: 'approve', reason: 'ok for id 42' });
    expect(await hold.outcome).toEqual({ decision: 'approved', approver: 'dev:alice@example.com', reason: 'ok for id 42', scope: 'once' });
    expect(s.holding).toBe(0);
  });

  it('settles with a denial and its reason', async () => {
    const s = await service(await embeddedStore());
    const hold = await s.hold(holdRequest());
    await s.decide(bob, hold.id, { action: 'deny', reason: 'not during business hours' });
    expect(await hold.outcome).toEqual({ decision: 'denied', approver: 'dev:bob', reason: 'not during business hours' });
  });

  it('expires when nobody decides in time; a late decision is refused', async () => {
    const store = await embeddedStore();
    const s = await service(store, { timeoutMs: 150 });
    const t = Date.now();
    const hold = await s.hold(holdRequest());
    expect(await hold.outcome).toEqual({ decision: 'expired' });
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    expect((await store.getRequest(hold.id))?.status).toBe('expired');
    await expect(s.decide(alice, hold.id, { action: 'approve' })).rejects.toMatchObject({ code: 'conflict', message: `request ${hold.id} is already expired` });
  });

  it('is withdrawn when the agent cancels or leaves; later decisions are refused', async () => {
    const store = await embeddedStore();
    const s = await service(store);
    const hold = await s.hold(holdRequest());
    hold.withdraw('cancelled');
    expect(await hold.outcome).toEqual({ decision: 'withdrawn', reason: 'cancelled' });
    hold.withdraw('disconnected'); // no-op once settled
    await sleep(50);
    expect(await store.getRequest(hold.id)).toMatchObject({ status: 'withdrawn', decision: { reason: 'cancelled' } });
    await expect(s.decide(alice, hold.id, { action: 'approve' })).rejects.toMatchObject({ code: 'conflict' });
  });

  it('withdraws its holds when closed', async () => {
    const store = await embeddedStore();
    const s = await service(store);
    const hold = await s.hold(holdRequest());
    await s.close();
    expect(await hold.outcome).toEqual({ decision: 'withdrawn', reason: 'warden is shutting down' });
    expect((await store.getRequest(hold.id))?.status).toBe('withdrawn');
    await expect(s.hold(holdRequest())).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});

describe('who decides', () => {
  it('refuses non-approvers, the requester, approvers outside their scope, and bad input; nothing changes', async () => {
    const store = await embeddedStore();
    const s = await service(store);
    const hold = await s.hold(holdRequest());
    const requester = { identity: identity('support-agent-app') }; // same issuer and subject as the agent, and an approver role
    const sameObject = { identity: identity('other-app', { objectId: 'oid-support-agent' }) };
    const attempts: Array<[string, Promise<unknown>, string, RegExp]> = [
      ['stranger', s.decide(stranger, hold.id, { action: 'approve' }), 'forbidden', /^not an approver/],
      ['requester', s.decide(requester, hold.id, { action: 'approve' }), 'forbidden', /your own request/],
      ['same object id', s.decide(sameObject, hold.id, { action: 'approve' }), 'forbidden', /your own request/],
      ['deny without reason', s.decide(alice, hold.id, { action: 'deny' }), 'bad_request', /needs a reason/],
      ['grant too long', s.decide(alice, hold.id, { action: 'approve', grantMinutes: 61 }), 'bad_request', /from 1 to 60/],
      ['grant not whole', s.decide(alice, hold.id, { action: 'approve', grantMinutes: 1.5 }), 'bad_request', /whole number/],
      ['lead may not grant', s.decide(lead, hold.id, { action: 'approve', grantMinutes: 5 }), 'forbidden', /may approve once but not give grants/],
      ['unknown id', s.decide(alice, 'apr_000000000000', { action: 'approve' }), 'not_found', /no approval request/],
    ];
    for (const [what, p, code, message] of attempts) {
      const err = await p.catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(ApprovalError);
      expect((err as ApprovalError).code, what).toBe(code);
      expect((err as ApprovalError).message, what).toMatch(message);
    }
    expect((await store.getRequest(hold.id))?.status).toBe('pending');
    expect(await within(hold.outcome, 20)).toBe('pending');
    // In scope: the lead approves order deletes on shop, once.
    await s.decide(lead, hold.id, { action: 'approve' });
    expect(await hold.outcome).toMatchObject({ decision: 'approved', approver: 'dev:lead', scope: 'once' });
    await expect(s.decide(alice, hold.id, { action: 'deny', reason: 'late' })).rejects.toMatchObject({ code: 'conflict', details: { status: 'approved' } });
  });

  it('limits approver rules to their targets and statement rules', async () => {
    const s = await service(await embeddedStore());
    const other = await s.hold(holdRequest({ target: 'crm' }));
    await expect(s.decide(lead, other.id, { action: 'approve' })).rejects.toMatchObject({ code: 'forbidden', message: expect.stringMatching(/do not cover this request \(target "crm"/) });
    const ddl = await s.hold(holdRequest({ rule: 'ddl', sql: 'DROP TABLE orders', normalized: 'DROP TABLE orders' }));
    await expect(s.decide(lead, ddl.id, { action: 'approve' })).rejects.toMatchObject({ code: 'forbidden' });
    await s.decide(alice, ddl.id, { action: 'approve' });
    expect((await ddl.outcome).decision).toBe('approved');
  });

  it('lets only approvers list and read requests', async () => {
    const s = await service(await embeddedStore());
    const hold = await s.hold(holdRequest());
    await expect(s.list(stranger, {})).rejects.toMatchObject({ code: 'forbidden' });
    await expect(s.get(stranger, hold.id)).rejects.toMatchObject({ code: 'forbidden' });
    expect((await s.list(alice, { status: 'pending' })).map((r) => r.id)).toEqual([hold.id]);
    expect((await s.get(lead, hold.id)).id).toBe(hold.id);
  });
});

describe('grants', () => {
  it('let later statements with the same fingerprint run without waiting, for that principal and target only', async () => {
    const s = await service(await embeddedStore());
    const hold = await s.hold(holdRequest());
    const { grant } = await s.decide(alice, hold.id, { action: 'approve', grantMinutes: 30, reason: 'cleanup' });
    expect(grant).toBeDefined();
    const outcome = await hold.outcome;
    expect(outcome).toEqual({ decision: 'approved', approver: 'dev:alice@example.com', reason: 'cleanup', scope: 'grant', grantId: grant!.id });
    // Another literal, same shape: covered.
    const later = await s.findGrant(holdRequest({ sql: 'DELETE FROM orders WHERE id = 7' }));
    expect(later).toMatchObject({ id: grant!.id, target: 'shop', approver: 'dev:alice@example.com' });
    expect(later!.expiresAt.getTime() - Date.now()).toBeGreaterThan(29 * 60_000);
    // Another statement, principal or target: not covered.
    expect(await s.findGrant(holdRequest({ sql: 'DELETE FROM customers WHERE id = 7' }))).toBeUndefined();
    expect(await s.findGrant(holdRequest({ principal: principal('reporting-agent') }))).toBeUndefined();
    expect(await s.findGrant(holdRequest({ target: 'crm' }))).toBeUndefined();
  });

  it('cover only the exact text and parameters of statements whose literals decide what they do', async () => {
    const s = await service(await embeddedStore());
    const cases: Array<[string, string, (string | null)[] | undefined, (string | null)[] | undefined]> = [
      ['DO $$BEGIN PERFORM 1; END$$', 'DO $$BEGIN DROP TABLE orders; END$$', undefined, undefined],
      ["SELECT pg_read_file('/var/log/app.log')", "SELECT pg_read_file('/etc/shadow')", undefined, undefined],
      ['SELECT pg_read_file($1)', 'SELECT pg_read_file($1)', ['/var/log/app.log'], ['/etc/shadow']],
      ['SET ROLE reporting', 'SET ROLE postgres', undefined, undefined],
    ];
    for (const [granted, other, grantedParams, otherParams] of cases) {
      const hold = await s.hold(holdRequest({ sql: granted, ...(grantedParams ? { params: grantedParams } : {}) }));
      await s.decide(alice, hold.id, { action: 'approve', grantMinutes: 10 });
      await hold.outcome;
      expect(await s.findGrant(holdRequest({ sql: granted, ...(grantedParams ? { params: grantedParams } : {}) })), granted).toBeDefined();
      expect(await s.findGrant(holdRequest({ sql: other, ...(otherParams ? { params: otherParams } : {}) })), other).toBeUndefined();
    }
  });

  it('cover only the exact text when the relay passes no classification, or one that says unparseable', async () => {
    const s = await service(await embeddedStore());
    const { classification: _dropped, ...unclassified } = holdRequest();
    const hold = await s.hold(unclassified);
    await s.decide(alice, hold.id, { action: 'approve', grantMinutes: 10 });
    await hold.outcome;
    const { classification: _also, ...sameText } = holdRequest();
    expect(await s.findGrant(sameText)).toBeDefined();
    expect(await s.findGrant(holdRequest({ sql: 'DELETE FROM orders WHERE id = 7' }))).toBeUndefined();

    // The relay could not trust its parser for this session (e.g. standard_conforming_strings off):
    // the text parses here, but only that exact text may be granted.
    const opaque = { ok: false as const, error: 'standard_conforming_strings is off' };
    const held = await s.hold(holdRequest({ sql: "SELECT 'a'", classification: opaque, principal: principal('other') }));
    await s.decide(alice, held.id, { action: 'approve', grantMinutes: 10 });
    await held.outcome;
    expect(await s.findGrant(holdRequest({ sql: "SELECT 'a'", classification: opaque, principal: principal('other') }))).toBeDefined();
    expect(await s.findGrant(holdRequest({ sql: "SELECT 'a\\'; DROP TABLE orders; --'", classification: opaque, principal: principal('other') }))).toBeUndefined();
  });

  it('expire, and can be revoked by an approver who covers them', async () => {
    let clock = Date.now();
    const s = await service(await embeddedStore(), { now: () => new Date(clock) });
    const hold = await s.hold(holdRequest());
    const { grant } = await s.decide(alice, hold.id, { action: 'approve', grantMinutes: 5 });
    expect(await s.findGrant(holdRequest())).toBeDefined();
    clock += 5 * 60_000 + 1;
    expect(await s.findGrant(holdRequest())).toBeUndefined();
    await expect(s.revoke(alice, grant!.id, 'done')).rejects.toMatchObject({ code: 'conflict', message: `grant ${grant!.id} is already expired` });

    // Still in the future clock: the first grant stays expired.
    const again = await s.hold(holdRequest());
    const second = (await s.decide(alice, again.id, { action: 'approve', grantMinutes: 5 })).grant!;
    await expect(s.revoke(stranger, second.id, 'x')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(s.revoke(alice, 'grt_000000000000', 'x')).rejects.toMatchObject({ code: 'not_found' });
    const revoked = await s.revoke(bob, second.id, 'no longer needed');
    expect(revoked).toMatchObject({ id: second.id, revokeReason: 'no longer needed', revokedBy: { label: 'dev:bob' } });
    expect(await s.findGrant(holdRequest())).toBeUndefined();
    await expect(s.revoke(alice, second.id, undefined)).rejects.toMatchObject({ code: 'conflict', message: `grant ${second.id} is already revoked` });
  });
});

describe('approvalFingerprint', () => {
  it('uses the given text, never a shared classification\'s, for literal-sensitive statements', () => {
    // The relay's hot path may hand out one classification for texts that differ in numbers.
    const shared = classify('SELECT pg_terminate_backend(123)');
    expect(approvalFingerprint(shared, 'SELECT pg_terminate_backend(456)')).not.toBe(approvalFingerprint(shared, 'SELECT pg_terminate_backend(123)'));
    expect(approvalFingerprint(shared, 'SELECT pg_terminate_backend(123)')).toMatch(/^text:/);
  });

  it('is libpg_query\'s fingerprint for ordinary statements, a digest of them for several', () => {
    const one = classify('DELETE FROM orders WHERE id = 1');
    expect(approvalFingerprint(one, 'DELETE FROM orders WHERE id = 1')).toBe(one.ok ? one.statements[0]!.fingerprint : '');
    const two = approvalFingerprint(classify('SELECT 1; DELETE FROM orders WHERE id = 1'), 'SELECT 1; DELETE FROM orders WHERE id = 1');
    expect(two).toMatch(/^multi:/);
    expect(approvalFingerprint(classify('SELECT 2; DELETE FROM orders WHERE id = 9'), 'SELECT 2; DELETE FROM orders WHERE id = 9')).toBe(two);
    expect(approvalFingerprint(classify('DELETE FROM orders WHERE id = 9; SELECT 2'), 'DELETE FROM orders WHERE id = 9; SELECT 2')).not.toBe(two);
  });

  it('includes parameters in exact fingerprints, and tells NULL from the text "null"', () => {
    const c = classify('SELECT pg_read_file($1)');
    const fp = (params: (string | null)[]) => approvalFingerprint(c, 'SELECT pg_read_file($1)', params);
    expect(fp(['/a'])).not.toBe(fp(['/b']));
    expect(fp([null])).not.toBe(fp(['null']));
    expect(fp(['/a'])).toBe(fp(['/a']));
  });
});

describe('restart', () => {
  it('withdraws the requests a crashed run left pending; grants persist', async () => {
    const dir = tempDir();
    const first = await EmbeddedApprovalStore.open({ dir, retentionMs: 86_400_000 });
    const s1 = new ApprovalServiceImpl({
      store: first, approvers: new ApproverPolicy(RULES), instanceId: 'instance-a', timeoutMs: 60_000, grantMaxMs: 3_600_000,
      storeGraceMs: 300, baseUrl: () => 'http://x',
    });
    await s1.start();
    const granted = await s1.hold(holdRequest({ sql: 'DELETE FROM orders WHERE id = 1' }));
    await s1.decide(alice, granted.id, { action: 'approve', grantMinutes: 30 });
    const orphan = await s1.hold(holdRequest());
    // A crash: the process is gone without withdrawing anything (only the lock is released).
    await first.close();

    const store = await embeddedStore(dir);
    expect((await store.getRequest(orphan.id))?.status).toBe('pending');
    const s2 = await service(store);
    expect(await store.getRequest(orphan.id)).toMatchObject({ status: 'withdrawn', decision: { reason: RESTART_REASON } });
    expect(await s2.findGrant(holdRequest({ sql: 'DELETE FROM orders WHERE id = 99' }))).toBeDefined();
    await s1.close();
  });
});

describe('an unreachable store (PostgreSQL behind a TCP forwarder)', () => {
  it('refuses to hold, refuses grant lookups, and settles open holds with error after the grace', async () => {
    const schema = uniqueSchema();
    const fwd = await forwarder();
    cleanups.push(async () => {
      await fwd.close();
      await dropSchema(schema);
    });
    const store = await PostgresApprovalStore.open({ config: pgStoreConfig(schema, { url: storeUrl(fwd.port), timeout: 500, pollInterval: 100 }) });
    cleanups.push(() => store.close());
    const s = await service(store, { storeGraceMs: 300 });
    const hold = await s.hold(holdRequest());
    fwd.cut();
    const t = Date.now();
    const outcome = await hold.outcome;
    const waited = Date.now() - t;
    expect(outcome.decision).toBe('error');
    expect(outcome.decision === 'error' && outcome.message).toMatch(/^approval store unavailable: /);
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(3000);
    await expect(s.hold(holdRequest())).rejects.toMatchObject({ code: 'store_unavailable', message: expect.stringMatching(/^approval store unavailable/) });
    await expect(s.findGrant(holdRequest())).rejects.toMatchObject({ code: 'store_unavailable' });
    // Back again: the refused request is withdrawn, so nobody can approve a statement that will never run.
    fwd.restore();
    await expect.poll(async () => (await store.getRequest(hold.id).catch(() => undefined))?.status, { timeout: 5000 }).toBe('withdrawn');
    expect((await store.getRequest(hold.id))?.decision?.reason).toMatch(/unreachable/);
  });
});

// The approvals store contract, run on both backends: the embedded journal (real files) and the
// PostgreSQL store (the harness server, a fresh schema per test). Then what only one backend has:
// the journal's crash and damage handling and its lock; the shared store's cross-instance
// exactly-once decisions, notifications and an unreachable server.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApprovalError, newId, type StoreChange } from '../../src/approvals/model.js';
import type { ApprovalStore } from '../../src/approvals/store.js';
import { EmbeddedApprovalStore, JOURNAL_FILE, LOCK_FILE } from '../../src/approvals/store-embedded.js';
import { PostgresApprovalStore } from '../../src/approvals/store-postgres.js';
import { actor, dropSchema, eventually, forwarder, pgStoreConfig, request, storeUrl, tempDir, uniqueSchema } from './approvals-support.js';

const DAY = 86_400_000;

interface Backend {
  name: string;
  open(): Promise<ApprovalStore>;
  /** Closes and opens the same store again (a restart). */
  reopen(store: ApprovalStore): Promise<ApprovalStore>;
  cleanup(): Promise<void>;
}

function embedded(): Backend {
  const dir = tempDir();
  return {
    name: 'embedded',
    open: () => EmbeddedApprovalStore.open({ dir, retentionMs: 30 * DAY }),
    async reopen(store) {
      await store.close();
      return EmbeddedApprovalStore.open({ dir, retentionMs: 30 * DAY });
    },
    cleanup: async () => undefined,
  };
}

function postgres(): Backend {
  const schema = uniqueSchema();
  return {
    name: 'postgres',
    open: () => PostgresApprovalStore.open({ config: pgStoreConfig(schema) }),
    async reopen(store) {
      await store.close();
      return PostgresApprovalStore.open({ config: pgStoreConfig(schema) });
    },
    cleanup: () => dropSchema(schema),
  };
}

describe.each([['embedded', embedded], ['postgres', postgres]] as const)('store contract: %s', (_name, make) => {
  let backend: Backend;
  let store: ApprovalStore;

  beforeEach(async () => {
    backend = make();
    store = await backend.open();
  });

  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('keeps a request exactly as written', async () => {
    const r = request();
    await store.createRequest(r);
    expect(await store.getRequest(r.id)).toEqual(r);
    expect(await store.getRequest('apr_unknown')).toBeUndefined();
  });

  it('refuses a second request with the same id', async () => {
    const r = request();
    await store.createRequest(r);
    await expect(store.createRequest(r)).rejects.toBeInstanceOf(ApprovalError);
  });

  it('lists newest first, filtered by status, principal (name or subject) and target, with a limit', async () => {
    const t = Date.now();
    const a = request({ createdAt: new Date(t - 3000) });
    const b = request({ createdAt: new Date(t - 2000), target: 'crm' });
    const c = request({ createdAt: new Date(t - 1000), principal: { ...request().principal, name: 'reporting-agent', subject: 'rep-app' } });
    for (const r of [a, b, c]) await store.createRequest(r);
    await store.decide(a.id, { status: 'denied', by: actor(), reason: 'no' }, new Date());
    const ids = async (f: Parameters<ApprovalStore['listRequests']>[0]) => (await store.listRequests(f)).map((r) => r.id);
    expect(await ids({})).toEqual([c.id, b.id, a.id]);
    expect(await ids({ status: 'pending' })).toEqual([c.id, b.id]);
    expect(await ids({ status: 'denied' })).toEqual([a.id]);
    expect(await ids({ target: 'crm' })).toEqual([b.id]);
    expect(await ids({ principal: 'reporting-agent' })).toEqual([c.id]);
    expect(await ids({ principal: 'rep-app' })).toEqual([c.id]);
    expect(await ids({ principal: 'support-agent', status: 'pending' })).toEqual([b.id]);
    expect(await ids({ limit: 2 })).toEqual([c.id, b.id]);
  });

  it('approves once, exactly once', async () => {
    const r = request();
    await store.createRequest(r);
    const now = new Date();
    const result = await store.decide(r.id, { status: 'approved', by: actor(), reason: 'looks fine' }, now);
    expect(result).toMatchObject({ ok: true, request: { id: r.id, status: 'approved', decision: { at: now, by: actor(), reason: 'looks fine', scope: 'once' } } });
    expect(result.ok && result.grant).toBeUndefined();
    expect(await store.getRequest(r.id)).toEqual(result.ok ? result.request : undefined);
    const again = await store.decide(r.id, { status: 'denied', by: actor('bob'), reason: 'too late' }, new Date());
    expect(again).toMatchObject({ ok: false, reason: 'not_pending', request: { status: 'approved' } });
    expect((await store.getRequest(r.id))?.decision?.by?.subject).toBe('alice');
  });

  it('lets only one of many concurrent decisions through', async () => {
    const r = request();
    await store.createRequest(r);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.decide(r.id, i % 2 ? { status: 'approved', by: actor(`a${i}`) } : { status: 'denied', by: actor(`a${i}`), reason: 'no' }, new Date())),
    );
    const winners = results.filter((x) => x.ok);
    expect(winners).toHaveLength(1);
    const final = await store.getRequest(r.id);
    expect(final?.status).toBe(winners[0]!.ok ? winners[0]!.request.status : 'never');
    expect(results.filter((x) => !x.ok).every((x) => !x.ok && x.reason === 'not_pending')).toBe(true);
  });

  it('denies with a reason', async () => {
    const r = request();
    await store.createRequest(r);
    const result = await store.decide(r.id, { status: 'denied', by: actor(), reason: 'not on a Friday' }, new Date());
    expect(result).toMatchObject({ ok: true, request: { status: 'denied', decision: { reason: 'not on a Friday' } } });
    expect(result.ok && result.request.decision?.scope).toBeUndefined();
  });

  it('refuses decisions on unknown and expired requests', async () => {
    expect(await store.decide('apr_nothere', { status: 'approved', by: actor() }, new Date())).toEqual({ ok: false, reason: 'not_found' });
    const r = request({ expiresAt: new Date(Date.now() - 1) });
    await store.createRequest(r);
    expect(await store.decide(r.id, { status: 'approved', by: actor() }, new Date())).toMatchObject({ ok: false, reason: 'expired', request: { status: 'pending' } });
  });

  it('creates a grant with the approval, found only for the same principal, target and fingerprint while live', async () => {
    const r = request();
    await store.createRequest(r);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + 30 * 60_000);
    const grantId = newId('grt');
    const result = await store.decide(r.id, { status: 'approved', by: actor(), reason: 'batch cleanup', grant: { id: grantId, expiresAt } }, now);
    expect(result).toMatchObject({ ok: true, request: { decision: { scope: 'grant', grantId } } });
    const expected = {
      id: grantId, principalKey: r.principalKey, principalName: 'support-agent', target: 'shop', fingerprint: 'fp-1', normalized: r.normalized,
      rule: r.rule, requestId: r.id, createdAt: now, expiresAt, approver: actor(), reason: 'batch cleanup',
    };
    expect(result.ok && result.grant).toEqual(expected);
    expect(await store.getGrant(grantId)).toEqual(expected);
    expect(await store.findGrant(r.principalKey, 'shop', 'fp-1', new Date())).toEqual(expected);
    expect(await store.findGrant('someone@else', 'shop', 'fp-1', new Date())).toBeUndefined();
    expect(await store.findGrant(r.principalKey, 'crm', 'fp-1', new Date())).toBeUndefined();
    expect(await store.findGrant(r.principalKey, 'shop', 'fp-2', new Date())).toBeUndefined();
    expect(await store.findGrant(r.principalKey, 'shop', 'fp-1', new Date(expiresAt.getTime() + 1))).toBeUndefined();
  });

  it('revokes a grant once; revoked and expired grants stop matching', async () => {
    const r = request();
    await store.createRequest(r);
    const grantId = newId('grt');
    const now = new Date();
    await store.decide(r.id, { status: 'approved', by: actor(), grant: { id: grantId, expiresAt: new Date(now.getTime() + 60_000) } }, now);
    const revoked = await store.revokeGrant(grantId, actor('carol'), 'done', new Date());
    expect(revoked).toMatchObject({ ok: true, grant: { id: grantId, revokedBy: actor('carol'), revokeReason: 'done' } });
    expect(revoked.ok && revoked.grant.revokedAt).toBeInstanceOf(Date);
    expect(await store.findGrant(r.principalKey, 'shop', 'fp-1', new Date())).toBeUndefined();
    expect(await store.revokeGrant(grantId, actor('carol'), undefined, new Date())).toMatchObject({ ok: false, reason: 'not_live' });
    expect(await store.revokeGrant('grt_nothere', actor('carol'), undefined, new Date())).toEqual({ ok: false, reason: 'not_found' });
    // An expired grant cannot be revoked either.
    const r2 = request();
    await store.createRequest(r2);
    const g2 = newId('grt');
    await store.decide(r2.id, { status: 'approved', by: actor(), grant: { id: g2, expiresAt: new Date(Date.now() + 50) } }, new Date());
    expect(await store.revokeGrant(g2, actor(), undefined, new Date(Date.now() + 1000))).toMatchObject({ ok: false, reason: 'not_live' });
  });

  it('lists grants: live ones by default, by principal and target', async () => {
    const now = new Date();
    const make = async (target: string, ms: number) => {
      const r = request({ target });
      await store.createRequest(r);
      const id = newId('grt');
      await store.decide(r.id, { status: 'approved', by: actor(), grant: { id, expiresAt: new Date(now.getTime() + ms) } }, now);
      return id;
    };
    const live = await make('shop', 60_000);
    const short = await make('crm', 1);
    const ids = async (f: Parameters<ApprovalStore['listGrants']>[0]) => (await store.listGrants(f)).map((g) => g.id).sort();
    expect(await ids({})).toEqual([live, short].sort());
    expect(await ids({ liveAt: new Date(now.getTime() + 1000) })).toEqual([live]);
    expect(await ids({ target: 'crm' })).toEqual([short]);
    expect(await ids({ principal: 'support-agent' })).toEqual([live, short].sort());
    expect(await ids({ principal: 'support-agent-app' })).toEqual([live, short].sort());
    expect(await ids({ principal: 'support' })).toEqual([]);
  });

  it('expires and withdraws only pending requests', async () => {
    const r = request();
    await store.createRequest(r);
    const first = await store.finish(r.id, 'expired', undefined, new Date());
    expect(first).toMatchObject({ changed: true, request: { status: 'expired' } });
    expect(await store.finish(r.id, 'withdrawn', 'cancelled', new Date())).toMatchObject({ changed: false, request: { status: 'expired' } });
    const d = request();
    await store.createRequest(d);
    await store.decide(d.id, { status: 'approved', by: actor() }, new Date());
    expect(await store.finish(d.id, 'withdrawn', 'disconnected', new Date())).toMatchObject({ changed: false, request: { status: 'approved' } });
    const w = request();
    await store.createRequest(w);
    expect(await store.finish(w.id, 'withdrawn', 'disconnected', new Date())).toMatchObject({ changed: true, request: { status: 'withdrawn', decision: { reason: 'disconnected' } } });
    expect(await store.finish('apr_nothere', 'expired', undefined, new Date())).toEqual({ changed: false, request: undefined });
  });

  it('says which of a set of requests are settled', async () => {
    const a = request();
    const b = request();
    await store.createRequest(a);
    await store.createRequest(b);
    await store.decide(b.id, { status: 'denied', by: actor(), reason: 'x' }, new Date());
    expect((await store.settledAmong([a.id, b.id, 'apr_nothere'])).map((r) => r.id)).toEqual([b.id]);
    expect(await store.settledAmong([])).toEqual([]);
  });

  it('on restart, withdraws the pending requests of that instance only; grants persist', async () => {
    const mine = request({ instanceId: 'instance-a' });
    const other = request({ instanceId: 'instance-b' });
    const decided = request({ instanceId: 'instance-a' });
    for (const r of [mine, other, decided]) await store.createRequest(r);
    const grantId = newId('grt');
    await store.decide(decided.id, { status: 'approved', by: actor(), grant: { id: grantId, expiresAt: new Date(Date.now() + 60_000) } }, new Date());
    store = await backend.reopen(store);
    const withdrawn = await store.recover('instance-a', 'warden restarted', new Date());
    expect(withdrawn.map((r) => r.id)).toEqual([mine.id]);
    expect(await store.getRequest(mine.id)).toMatchObject({ status: 'withdrawn', decision: { reason: 'warden restarted' } });
    expect(await store.getRequest(other.id)).toMatchObject({ status: 'pending' });
    expect(await store.getRequest(decided.id)).toMatchObject({ status: 'approved' });
    expect(await store.findGrant(decided.principalKey, 'shop', 'fp-1', new Date())).toMatchObject({ id: grantId });
  });

  it('expires requests left pending long past their expiry (their instance is gone)', async () => {
    const now = Date.now();
    const old = request({ instanceId: 'gone', expiresAt: new Date(now - 120_000) });
    const fresh = request({ instanceId: 'gone', expiresAt: new Date(now + 60_000) });
    await store.createRequest(old);
    await store.createRequest(fresh);
    const expired = await store.expireOverdue(new Date(now - 60_000), new Date(now));
    expect(expired.map((r) => r.id)).toEqual([old.id]);
    expect((await store.getRequest(fresh.id))?.status).toBe('pending');
  });

  it('tells subscribers about every change', async () => {
    const seen: StoreChange[] = [];
    const off = store.subscribe((c) => seen.push(c));
    const r = request();
    const w = request();
    await store.createRequest(r);
    await store.createRequest(w);
    const grantId = newId('grt');
    await store.decide(r.id, { status: 'approved', by: actor(), grant: { id: grantId, expiresAt: new Date(Date.now() + 60_000) } }, new Date());
    await store.finish(w.id, 'withdrawn', 'cancelled', new Date());
    await store.revokeGrant(grantId, actor(), undefined, new Date());
    const expected: StoreChange[] = [
      { event: 'request.created', id: r.id },
      { event: 'request.created', id: w.id },
      { event: 'request.decided', id: r.id },
      { event: 'grant.created', id: grantId },
      { event: 'request.withdrawn', id: w.id },
      { event: 'grant.revoked', id: grantId },
    ];
    await eventually(() => seen.length >= expected.length, 3000, 'all change notifications');
    expect(seen).toEqual(expected);
    off();
    await store.createRequest(request());
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toHaveLength(expected.length);
  });

  it('rejects every call once closed, as store_unavailable', async () => {
    await store.close();
    const err = await store.getRequest('apr_x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApprovalError);
    expect(err).toMatchObject({ code: 'store_unavailable' });
    store = await backend.open();
  });
});

describe('embedded store: the journal', () => {
  it('survives a torn last line (a crash mid-write) and compacts on open', async () => {
    const dir = tempDir();
    let store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    const r = request();
    await store.createRequest(r);
    await store.decide(r.id, { status: 'approved', by: actor() }, new Date());
    await store.close();
    const path = join(dir, JOURNAL_FILE);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(2); // created, then decided
    appendFileSync(path, '{"k":"r","v":{"id":"apr_torn","sta');
    store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    expect(await store.getRequest(r.id)).toMatchObject({ status: 'approved' });
    expect(await store.getRequest('apr_torn')).toBeUndefined();
    await store.close();
    // Compacted: one line per record, no torn tail.
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
  });

  it('drops finished requests and dead grants older than the retention, keeps pending ones', async () => {
    const dir = tempDir();
    const long = Date.now() - 10 * DAY;
    let store = await EmbeddedApprovalStore.open({ dir, retentionMs: 30 * DAY });
    const oldDone = request({ createdAt: new Date(long), expiresAt: new Date(long + 60_000) });
    const oldPending = request({ createdAt: new Date(long), expiresAt: new Date(long + 60_000) });
    await store.createRequest(oldDone);
    await store.createRequest(oldPending);
    await store.decide(oldDone.id, { status: 'approved', by: actor(), grant: { id: newId('grt'), expiresAt: new Date(long + 120_000) } }, new Date(long + 1000));
    await store.close();
    store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    expect(await store.getRequest(oldDone.id)).toBeUndefined();
    expect(await store.getRequest(oldPending.id)).toMatchObject({ status: 'pending' });
    expect(await store.listGrants()).toEqual([]);
    await store.close();
  });

  it('refuses to start on a damaged line in the middle, naming it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, JOURNAL_FILE), `${JSON.stringify({ k: 'r', v: request() })}\n{"k":"r","v":{"id":5}}\n${JSON.stringify({ k: 'r', v: request() })}\n`);
    await expect(EmbeddedApprovalStore.open({ dir, retentionMs: DAY })).rejects.toThrow(/line 2 is damaged \(request\.id is not a string\)/);
    // The failed open released its lock.
    writeFileSync(join(dir, JOURNAL_FILE), '');
    const store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    await store.close();
  });

  it('is single-process: a second open is refused while the first holds the lock; a dead holder\'s lock is taken over', async () => {
    const dir = tempDir();
    const store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    await expect(EmbeddedApprovalStore.open({ dir, retentionMs: DAY })).rejects.toThrow(/already open in this process/);
    await store.close();
    // A live process (this test's parent) holds it.
    writeFileSync(join(dir, LOCK_FILE), `${process.ppid}\n`);
    await expect(EmbeddedApprovalStore.open({ dir, retentionMs: DAY })).rejects.toThrow(new RegExp(`in use by process ${process.ppid}.*type: postgres`));
    // A process that is gone: its lock is stale.
    writeFileSync(join(dir, LOCK_FILE), '2147483646\n');
    const again = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    await again.close();
  });

  it('makes every change durable before it counts: what a reopened store reads is what was answered', async () => {
    const dir = tempDir();
    const store = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    const rs = Array.from({ length: 50 }, () => request());
    await Promise.all(rs.map((r) => store.createRequest(r)));
    await Promise.all(rs.map((r, i) => (i % 2 ? store.decide(r.id, { status: 'approved', by: actor() }, new Date()) : store.finish(r.id, 'expired', undefined, new Date()))));
    await store.close();
    const lines = readFileSync(join(dir, JOURNAL_FILE), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(100);
    const reopened = await EmbeddedApprovalStore.open({ dir, retentionMs: DAY });
    expect((await reopened.listRequests({ status: 'approved' })).length).toBe(25);
    expect((await reopened.listRequests({ status: 'expired' })).length).toBe(25);
    await reopened.close();
  });
});

describe('postgres store: shared by instances', () => {
  let schema: string;
  const stores: PostgresApprovalStore[] = [];
  const open = async (extra = {}): Promise<PostgresApprovalStore> => {
    const s = await PostgresApprovalStore.open({ config: pgStoreConfig(schema, extra) });
    stores.push(s);
    return s;
  };

  beforeEach(() => {
    schema = uniqueSchema();
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await dropSchema(schema);
  });

  it('creates its tables once when instances start together', async () => {
    const [a, b, c] = await Promise.all([open(), open(), open()]);
    const r = request();
    await a!.createRequest(r);
    expect(await b!.getRequest(r.id)).toEqual(r);
    expect(await c!.getRequest(r.id)).toEqual(r);
  });

  it('decides exactly once across instances', async () => {
    const a = await open();
    const b = await open();
    for (let round = 0; round < 5; round++) {
      const r = request();
      await a.createRequest(r);
      const results = await Promise.all([
        a.decide(r.id, { status: 'approved', by: actor('on-a'), grant: { id: newId('grt'), expiresAt: new Date(Date.now() + 60_000) } }, new Date()),
        b.decide(r.id, { status: 'denied', by: actor('on-b'), reason: 'no' }, new Date()),
        b.decide(r.id, { status: 'approved', by: actor('on-b2') }, new Date()),
      ]);
      expect(results.filter((x) => x.ok)).toHaveLength(1);
      const grants = await a.listGrants({});
      const final = await b.getRequest(r.id);
      // A grant exists only if the approval with a grant was the one that won.
      expect(grants.filter((g) => g.requestId === r.id)).toHaveLength(final?.decision?.scope === 'grant' ? 1 : 0);
    }
  });

  it('tells every instance about a change made on one of them', async () => {
    const a = await open();
    const b = await open();
    const seenOnA: StoreChange[] = [];
    a.subscribe((c) => seenOnA.push(c));
    const r = request();
    await a.createRequest(r);
    await b.decide(r.id, { status: 'approved', by: actor() }, new Date());
    await eventually(() => seenOnA.some((c) => c.event === 'request.decided' && c.id === r.id), 2000, 'the decision made on b, seen on a');
    expect(seenOnA).toEqual([{ event: 'request.created', id: r.id }, { event: 'request.decided', id: r.id }]);
  });

  it('rejects with store_unavailable while the server is unreachable, and works again when it is back', async () => {
    const fwd = await forwarder();
    try {
      const url = storeUrl(fwd.port);
      const s = await open({ url, timeout: 1000 });
      const r = request();
      await s.createRequest(r);
      fwd.cut();
      const err = await s.getRequest(r.id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApprovalError);
      expect(err).toMatchObject({ code: 'store_unavailable' });
      expect((err as Error).message).toMatch(/^approval store unavailable: /);
      await expect(s.createRequest(request())).rejects.toMatchObject({ code: 'store_unavailable' });
      fwd.restore();
      expect(await eventually(() => s.getRequest(r.id).catch(() => undefined), 5000, 'the store back')).toEqual(r);
    } finally {
      await fwd.close();
    }
  });

  it('opens lazily when the server is down at start, and answers once it is up', async () => {
    const fwd = await forwarder();
    try {
      fwd.cut();
      const s = PostgresApprovalStore.openLazily({ config: pgStoreConfig(schema, { url: storeUrl(fwd.port), timeout: 500 }) });
      stores.push(s);
      await expect(s.listRequests()).rejects.toMatchObject({ code: 'store_unavailable' });
      fwd.restore();
      await eventually(() => s.listRequests().then(() => true, () => false), 5000, 'tables created once the server answers');
    } finally {
      await fwd.close();
    }
  });
});

// The approval service: the relays' side (findGrant, hold) and the approvers' side (list, decide,
// revoke), over one store.
//
// A hold is settled exactly once, by whichever comes first:
//   - a decision: on this instance directly; from another instance through the store's change
//     feed (LISTEN/NOTIFY) or, if a notification is lost, the poll of this instance's requests;
//   - its expiry timer (the store's conditional update decides a race with a decision);
//   - withdraw() (the agent cancelled or left);
//   - the store staying unreachable for `storeGraceMs` while holding: outcome 'error', which
//     the relay turns into a denial (fail closed).
// Announcements (the SSE feed) come from the store's change feed only, so every instance's
// approvers see every change exactly once, whichever instance made it.
import { hostname } from 'node:os';
import { silentLogger, type Logger } from '../log.js';
import { actorOf, grantScope, isRequester, requestScope, type Approver, type ApproverPolicy } from './approvers.js';
import type { ApproverRule } from './config.js';
import { ApprovalEvents } from './events.js';
import { approvalFingerprint, exactFingerprint } from './fingerprint.js';
import {
  ApprovalError,
  newId,
  principalKeyOf,
  requesterInfo,
  storeUnavailable,
  type ApprovalRequest,
  type GrantFilter,
  type GrantRecord,
  type RequestFilter,
  type StoreChange,
} from './model.js';
import type { ApprovalStore } from './store.js';
import type { ApprovalService, Grant, Hold, HoldOutcome, HoldRequest } from './types.js';
import { grantView, requestView } from './views.js';
import type { WebhookNotifier } from './webhook.js';

export const RESTART_REASON = 'warden restarted; the connection that held it is gone';
export const SHUTDOWN_REASON = 'warden is shutting down';
const MAX_REASON = 1000;
const MAX_SQL_STORED = 256 * 1024;
/** Pending requests this long past their expiry belong to an instance that is gone. */
const OVERDUE_GRACE_MS = 60_000;
const SWEEP_INTERVAL_MS = 30_000;
const LOCAL_POLL_MS = 5_000;

export interface ServiceOptions {
  store: ApprovalStore;
  approvers: ApproverPolicy;
  /** Names this instance in requests (restart recovery). */
  instanceId?: string;
  timeoutMs: number;
  grantMaxMs: number;
  /** The store unreachable this long while holding settles holds with 'error'. */
  storeGraceMs: number;
  /** Base of URLs in notices (read at each hold: the admin server may start later). */
  baseUrl: () => string;
  notifier?: WebhookNotifier;
  logger?: Logger;
  now?: () => Date;
  sweepIntervalMs?: number;
}

export interface DecideInput {
  action: 'approve' | 'deny';
  reason?: string;
  /** Approve with a grant this long (minutes). */
  grantMinutes?: number;
}

interface LocalHold {
  id: string;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(outcome: HoldOutcome): void;
}

export class ApprovalServiceImpl implements ApprovalService {
  readonly events = new ApprovalEvents();
  readonly instanceId: string;
  private readonly store: ApprovalStore;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly holds = new Map<string, LocalHold>();
  /** Withdrawals the store has not recorded yet (retried by the poll). */
  private readonly unrecorded = new Map<string, string>();
  private unsubscribe: (() => void) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private failingSince: number | undefined;
  private recovered = false;
  private closing = false;

  constructor(private readonly opts: ServiceOptions) {
    this.store = opts.store;
    this.instanceId = opts.instanceId ?? hostname();
    this.log = (opts.logger ?? silentLogger).child({ component: 'approvals' });
    this.now = opts.now ?? (() => new Date());
  }

  /** Subscribes to the store, withdraws this instance's requests left from before a restart, starts the sweeper. */
  async start(): Promise<void> {
    this.unsubscribe = this.store.subscribe((c) => this.onChange(c));
    await this.recover();
    const every = this.opts.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    this.sweepTimer = setInterval(() => void this.sweep(), every);
    this.sweepTimer.unref();
    // A shared store's notifications can be lost; a local one only needs retries of failed writes.
    this.pollTimer = setInterval(() => void this.poll(), this.store.pollInterval ?? LOCAL_POLL_MS);
    this.pollTimer.unref();
  }

  // ---- the relays' side ---------------------------------------------------------------------

  async findGrant(request: HoldRequest): Promise<Grant | undefined> {
    const fingerprint = this.fingerprintOf(request);
    const g = await this.store.findGrant(principalKeyOf(request.principal), request.target, fingerprint, this.now());
    if (!g) return undefined;
    this.log.info({ grant: g.id, principal: request.principal.name, target: request.target, session: request.sessionId }, 'statement runs under a grant');
    return { id: g.id, principal: g.principalKey, target: g.target, fingerprint: g.fingerprint, expiresAt: g.expiresAt, approver: g.approver.label };
  }

  async hold(request: HoldRequest): Promise<Hold> {
    if (this.closing) throw new ApprovalError('store_unavailable', `approvals unavailable: ${SHUTDOWN_REASON}`);
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.opts.timeoutMs);
    const record: ApprovalRequest = {
      id: newId('apr'),
      status: 'pending',
      createdAt: now,
      expiresAt,
      // This service's id, whatever the relay passed: restart recovery looks requests up by it.
      instanceId: this.instanceId,
      sessionId: request.sessionId,
      protocol: request.protocol,
      target: request.target,
      principal: requesterInfo(request.principal),
      principalKey: principalKeyOf(request.principal),
      clientAddress: request.clientAddress,
      sql: request.sql.length > MAX_SQL_STORED ? `${request.sql.slice(0, MAX_SQL_STORED)}…` : request.sql,
      fingerprint: this.fingerprintOf(request),
      normalized: request.normalized.length > MAX_SQL_STORED ? `${request.normalized.slice(0, MAX_SQL_STORED)}…` : request.normalized,
      ...(request.params !== undefined ? { params: [...request.params] } : {}),
      rule: request.rule,
      reason: request.reason,
    };
    let resolve!: (o: HoldOutcome) => void;
    const outcome = new Promise<HoldOutcome>((r) => {
      resolve = r;
    });
    // Registered before the write, so a decision that arrives at once still finds it.
    const local: LocalHold = { id: record.id, settled: false, timer: undefined, resolve };
    this.holds.set(record.id, local);
    try {
      await this.store.createRequest(record);
    } catch (err) {
      this.holds.delete(record.id);
      const error = storeUnavailable(err);
      this.log.error({ err: error.message, principal: request.principal.name, target: request.target, session: request.sessionId }, 'cannot hold the statement: the approval store is unavailable; it is refused');
      throw error;
    }
    local.timer = setTimeout(() => void this.expire(record.id), Math.max(0, expiresAt.getTime() - this.now().getTime()));
    local.timer.unref();
    const baseUrl = this.opts.baseUrl();
    this.log.info({ request: record.id, principal: request.principal.name, target: request.target, rule: request.rule, session: request.sessionId }, 'statement held for approval');
    this.opts.notifier?.requestCreated(record, baseUrl);
    return {
      id: record.id,
      url: `${baseUrl}/approvals/ui?request=${record.id}`,
      expiresAt,
      outcome,
      withdraw: (reason) => this.withdraw(record.id, reason),
    };
  }

  /** Pending holds on this instance. */
  get holding(): number {
    return this.holds.size;
  }

  // ---- the approvers' side ------------------------------------------------------------------

  get approvers(): ApproverPolicy {
    return this.opts.approvers;
  }

  /** Fails unless the caller falls under at least one approver rule. */
  /** The caller's approver rules; fails unless there is at least one. */
  requireApprover(approver: Approver): ApproverRule[] {
    const rules = this.opts.approvers.rulesFor(approver.identity);
    if (rules.length === 0) throw new ApprovalError('forbidden', 'not an approver: no approvals.approvers rule matches this token');
    return rules;
  }

  /**
   * An approver reads only what their rules cover (target, statement rule, principal): requests
   * carry statements and parameters of targets they may have no business seeing.
   */
  async list(approver: Approver, filter: RequestFilter): Promise<ApprovalRequest[]> {
    const rules = this.requireApprover(approver);
    return (await this.store.listRequests(filter)).filter((r) => this.opts.approvers.covering(rules, requestScope(r)));
  }

  async get(approver: Approver, id: string): Promise<ApprovalRequest> {
    const rules = this.requireApprover(approver);
    const r = await this.store.getRequest(id);
    if (!r) throw new ApprovalError('not_found', `no approval request ${id}`);
    if (!this.opts.approvers.covering(rules, requestScope(r))) throw notCovered(r);
    return r;
  }

  async grants(approver: Approver, filter: GrantFilter): Promise<GrantRecord[]> {
    const rules = this.requireApprover(approver);
    return (await this.store.listGrants(filter)).filter((g) => this.opts.approvers.covering(rules, grantScope(g)));
  }

  async decide(approver: Approver, id: string, input: DecideInput): Promise<{ request: ApprovalRequest; grant?: GrantRecord }> {
    const rules = this.opts.approvers.rulesFor(approver.identity);
    if (rules.length === 0) throw new ApprovalError('forbidden', 'not an approver: no approvals.approvers rule matches this token');
    const reason = input.reason?.trim();
    if (reason !== undefined && reason.length > MAX_REASON) throw new ApprovalError('bad_request', `reason is longer than ${MAX_REASON} characters`);
    if (input.action === 'deny' && (reason === undefined || reason === '')) throw new ApprovalError('bad_request', 'a denial needs a reason');
    const request = await this.store.getRequest(id);
    if (!request) throw new ApprovalError('not_found', `no approval request ${id}`);
    const rule = this.opts.approvers.covering(rules, requestScope(request));
    if (!rule) throw notCovered(request);
    if (isRequester(approver.identity, request)) throw new ApprovalError('forbidden', 'you cannot decide your own request');
    if (request.status !== 'pending') throw new ApprovalError('conflict', `request ${id} is already ${request.status}`, { status: request.status });
    const by = actorOf(approver, rule);
    const now = this.now();
    let grant: { id: string; expiresAt: Date } | undefined;
    if (input.action === 'approve' && input.grantMinutes !== undefined) {
      const minutes = input.grantMinutes;
      const maxMinutes = Math.floor(this.opts.grantMaxMs / 60_000);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > maxMinutes) {
        throw new ApprovalError('bad_request', `grant_minutes must be a whole number from 1 to ${maxMinutes} (approvals.grant_max)`);
      }
      if (!rule.mayGrant) throw new ApprovalError('forbidden', `approver rule "${rule.name}" may approve once but not give grants`);
      grant = { id: newId('grt'), expiresAt: new Date(now.getTime() + minutes * 60_000) };
    }
    const result = await this.store.decide(
      id,
      input.action === 'approve'
        ? { status: 'approved', by, ...(reason ? { reason } : {}), ...(grant ? { grant } : {}) }
        : { status: 'denied', by, reason: reason ?? '' },
      now,
    );
    if (!result.ok) {
      if (result.reason === 'not_found') throw new ApprovalError('not_found', `no approval request ${id}`);
      if (result.reason === 'expired') throw new ApprovalError('conflict', `request ${id} has expired`, { status: 'expired' });
      throw new ApprovalError('conflict', `request ${id} is already ${result.request.status}`, { status: result.request.status });
    }
    this.log.info({ request: id, decision: result.request.status, approver: by.label, scope: result.request.decision?.scope, grant: result.grant?.id }, 'approval request decided');
    this.settleFrom(result.request);
    return result.grant ? { request: result.request, grant: result.grant } : { request: result.request };
  }

  async revoke(approver: Approver, grantId: string, reason: string | undefined): Promise<GrantRecord> {
    const rules = this.opts.approvers.rulesFor(approver.identity);
    if (rules.length === 0) throw new ApprovalError('forbidden', 'not an approver: no approvals.approvers rule matches this token');
    const why = reason?.trim();
    if (why !== undefined && why.length > MAX_REASON) throw new ApprovalError('bad_request', `reason is longer than ${MAX_REASON} characters`);
    const grant = await this.store.getGrant(grantId);
    if (!grant) throw new ApprovalError('not_found', `no grant ${grantId}`);
    const rule = this.opts.approvers.covering(rules, grantScope(grant));
    if (!rule) throw new ApprovalError('forbidden', `your approver rules do not cover this grant (target "${grant.target}", rule "${grant.rule}")`);
    const result = await this.store.revokeGrant(grantId, actorOf(approver, rule), why || undefined, this.now());
    if (!result.ok) {
      if (result.reason === 'not_found') throw new ApprovalError('not_found', `no grant ${grantId}`);
      const state = result.grant.revokedAt !== undefined ? 'revoked' : 'expired';
      throw new ApprovalError('conflict', `grant ${grantId} is already ${state}`, { status: state });
    }
    this.log.info({ grant: grantId, by: result.grant.revokedBy?.label }, 'grant revoked');
    return result.grant;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Withdraws the holds of this instance (their statements are refused) and stops the timers. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.pollTimer);
    clearInterval(this.sweepTimer);
    const open = [...this.holds.keys()];
    for (const id of open) this.settle(id, { decision: 'withdrawn', reason: SHUTDOWN_REASON });
    await Promise.all(open.map((id) => this.store.finish(id, 'withdrawn', SHUTDOWN_REASON, this.now()).catch(() => undefined)));
    this.unsubscribe?.();
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * The grant unit. For PostgreSQL it comes from the relay's own classification when the relay
   * passes it (a statement whose literals decide what it does is granted by its exact text and
   * parameters); without one, only the exact text and parameters (the relay's fingerprint cannot
   * be checked). TDS relays' fingerprints are taken as given.
   */
  private fingerprintOf(request: HoldRequest): string {
    if (request.protocol !== 'postgres') return request.fingerprint;
    if (request.runs?.length) return exactFingerprint([request.sql, ...request.runs].join('\u0000'), request.params);
    if (request.classification) return approvalFingerprint(request.classification, request.sql, request.params);
    return exactFingerprint(request.sql, request.params);
  }

  private withdraw(id: string, reason: 'cancelled' | 'disconnected' | 'session-ended' | 'token-expired'): void {
    const local = this.holds.get(id);
    if (!local || local.settled) return;
    this.settle(id, { decision: 'withdrawn', reason });
    void this.recordWithdrawal(id, reason);
  }

  private async recordWithdrawal(id: string, reason: string): Promise<void> {
    try {
      const result = await this.store.finish(id, 'withdrawn', reason, this.now());
      this.unrecorded.delete(id);
      if (!result.changed && result.request && result.request.status !== 'withdrawn') {
        this.log.info({ request: id, status: result.request.status }, 'request was settled before the withdrawal reached the store; the statement did not run');
      }
    } catch (err) {
      this.unrecorded.set(id, reason);
      this.log.warn({ request: id, err: (err as Error).message }, 'cannot record the withdrawal yet; will retry');
    }
  }

  private async expire(id: string): Promise<void> {
    const local = this.holds.get(id);
    if (!local || local.settled) return;
    try {
      const result = await this.store.finish(id, 'expired', undefined, this.now());
      if (result.changed) {
        this.log.info({ request: id }, 'approval request expired');
        this.settle(id, { decision: 'expired' });
      } else if (result.request) {
        this.settleFrom(result.request);
      } else {
        this.fail([id], 'the request vanished from the approval store');
      }
    } catch (err) {
      this.fail([id], storeUnavailable(err).message);
    }
  }

  private onChange(change: StoreChange): void {
    if (change.event.startsWith('request.')) {
      const local = this.holds.get(change.id);
      this.store.getRequest(change.id).then(
        (r) => {
          if (!r) return;
          if (local) this.settleFrom(r);
          this.events.emit(change.event, { request: requestView(r, { params: true, baseUrl: this.opts.baseUrl() }) });
        },
        (err: unknown) => this.log.warn({ err: (err as Error).message, change }, 'cannot read a changed approval request (the poll will catch up)'),
      );
    } else {
      this.store.getGrant(change.id).then(
        (g) => {
          if (g) this.events.emit(change.event, { grant: grantView(g, this.now()) });
        },
        (err: unknown) => this.log.warn({ err: (err as Error).message, change }, 'cannot read a changed grant'),
      );
    }
  }

  /** Checks this instance's pending requests (decisions whose notification was lost) and the store's health. */
  private async poll(): Promise<void> {
    const ids = [...this.holds.keys()];
    if (ids.length === 0 && this.unrecorded.size === 0) {
      this.failingSince = undefined;
      return;
    }
    try {
      const settled = await this.store.settledAmong(ids);
      for (const r of settled) this.settleFrom(r);
      this.failingSince = undefined;
      for (const [id, reason] of [...this.unrecorded]) await this.recordWithdrawal(id, reason);
    } catch (err) {
      const now = this.now().getTime();
      this.failingSince ??= now;
      const message = storeUnavailable(err).message;
      if (now - this.failingSince >= this.opts.storeGraceMs && ids.length > 0) {
        this.fail(ids, message);
      } else {
        this.log.warn({ err: message, holding: ids.length }, 'approval store unreachable while holding statements');
      }
    }
  }

  /** Settles holds with 'error' (the relay refuses them); their requests are withdrawn once the store is back. */
  private fail(ids: readonly string[], message: string): void {
    const open = ids.filter((id) => this.holds.get(id)?.settled === false);
    if (open.length === 0) return;
    this.log.error({ err: message, requests: open }, 'approval store unavailable: held statements are refused');
    for (const id of open) {
      this.settle(id, { decision: 'error', message });
      this.unrecorded.set(id, 'the approval store was unreachable; the statement was refused');
    }
  }

  private settleFrom(r: ApprovalRequest): void {
    const outcome = outcomeOf(r);
    if (outcome) this.settle(r.id, outcome);
  }

  private settle(id: string, outcome: HoldOutcome): void {
    const local = this.holds.get(id);
    if (!local || local.settled) return;
    local.settled = true;
    clearTimeout(local.timer);
    this.holds.delete(id);
    local.resolve(outcome);
  }

  private async recover(): Promise<void> {
    try {
      const withdrawn = await this.store.recover(this.instanceId, RESTART_REASON, this.now());
      this.recovered = true;
      if (withdrawn.length > 0) this.log.info({ requests: withdrawn.map((r) => r.id) }, 'withdrew requests left pending by the previous run');
    } catch (err) {
      this.log.error({ err: storeUnavailable(err).message }, 'cannot recover pending requests yet; will retry');
    }
  }

  /** Retries recovery if it failed, and expires requests whose instance never came back. */
  private async sweep(): Promise<void> {
    if (!this.recovered) await this.recover();
    try {
      const now = this.now();
      const expired = await this.store.expireOverdue(new Date(now.getTime() - OVERDUE_GRACE_MS), now);
      if (expired.length > 0) this.log.info({ requests: expired.map((r) => r.id) }, 'expired requests whose instance is gone');
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'sweep skipped: approval store unavailable');
    }
  }
}

function notCovered(r: ApprovalRequest): ApprovalError {
  return new ApprovalError('forbidden', `your approver rules do not cover this request (target "${r.target}", rule "${r.rule}", principal "${r.principal.name}")`);
}

export function outcomeOf(r: ApprovalRequest): HoldOutcome | undefined {
  const d = r.decision;
  switch (r.status) {
    case 'pending':
      return undefined;
    case 'approved':
      return {
        decision: 'approved',
        approver: d?.by?.label ?? 'unknown',
        scope: d?.scope ?? 'once',
        ...(d?.reason !== undefined ? { reason: d.reason } : {}),
        ...(d?.grantId !== undefined ? { grantId: d.grantId } : {}),
      };
    case 'denied':
      return { decision: 'denied', approver: d?.by?.label ?? 'unknown', reason: d?.reason ?? '' };
    case 'expired':
      return { decision: 'expired' };
    case 'withdrawn':
      return { decision: 'withdrawn', reason: d?.reason ?? 'withdrawn' };
  }
}

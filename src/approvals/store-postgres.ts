// The PostgreSQL approvals store, shared by several warden instances. Tables are created if absent
// (under an advisory lock, so instances starting together do not collide). A decision is one
// transaction whose UPDATE is conditional on the request still being pending (and not past its
// expiry): under READ COMMITTED a second concurrent UPDATE waits for the first and then finds the
// row no longer pending, so a request is decided exactly once across all instances.
//
// Every change sends a NOTIFY in its own transaction (delivered at commit); each instance LISTENs
// on a dedicated connection and hears every change, its own included, within milliseconds.
// Notifications can be lost while that connection is down, so holding instances also poll their
// pending requests (pollInterval). When the server cannot be reached every call rejects with
// store_unavailable; the first use after it comes back creates the tables if needed.
import pg from 'pg';
import { silentLogger, type Logger } from '../log.js';
import type { PostgresStoreConfig } from './config.js';
import { grantFromJson, requestFromJson } from './codec.js';
import {
  ApprovalError,
  EVENT_FOR_STATUS,
  storeUnavailable,
  type ActorInfo,
  type ApprovalRequest,
  type Decision,
  type GrantFilter,
  type GrantRecord,
  type RequestFilter,
  type StoreChange,
  type StoreEvent,
} from './model.js';
import { grantFromDecision, listLimit, type ApprovalStore, type DecideResult, type FinishResult, type RevokeResult } from './store.js';

const POOL_SIZE = 4;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
const STORE_EVENTS: ReadonlySet<string> = new Set<StoreEvent>(['request.created', 'request.decided', 'request.expired', 'request.withdrawn', 'grant.created', 'grant.revoked']);

export interface PostgresStoreOptions {
  config: PostgresStoreConfig;
  logger?: Logger;
  /** LISTEN for changes (default true); off only to exercise the polling fallback. */
  notifications?: boolean;
}

type Row = Record<string, unknown>;

/** Connection settings for node-postgres from the store configuration. */
export function clientConfig(c: PostgresStoreConfig): pg.ClientConfig {
  const base: pg.ClientConfig = {
    application_name: 'warden-approvals',
    connectionTimeoutMillis: c.timeout,
    query_timeout: c.timeout,
    keepAlive: true,
  };
  if (c.url !== undefined) return { ...base, connectionString: c.url };
  const tls = c.tls ?? { mode: 'disable' };
  const ssl =
    tls.mode === 'disable' ? false
    : tls.mode === 'require' ? { rejectUnauthorized: false }
    : tls.mode === 'verify-ca' ? { ca: tls.ca, checkServerIdentity: () => undefined }
    : { ca: tls.ca };
  return { ...base, host: c.host, port: c.port ?? 5432, database: c.database, user: c.user, password: c.password, ssl };
}

export class PostgresApprovalStore implements ApprovalStore {
  readonly kind = 'postgres' as const;
  readonly pollInterval: number;
  private readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly schema: string;
  private readonly channel: string;
  private readonly t: { requests: string; grants: string };
  private readonly listeners = new Set<(c: StoreChange) => void>();
  private setup: Promise<void> | undefined;
  private listener: pg.Client | undefined;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: PostgresStoreOptions) {
    const c = opts.config;
    this.log = (opts.logger ?? silentLogger).child({ component: 'approvals-store' });
    this.pollInterval = c.pollInterval;
    this.schema = c.schema;
    this.channel = `${c.schema}_approvals`;
    this.t = { requests: `"${c.schema}".approval_requests`, grants: `"${c.schema}".approval_grants` };
    this.pool = new pg.Pool({ ...clientConfig(c), max: POOL_SIZE, idleTimeoutMillis: 30_000 });
    // An idle connection that breaks must not crash the process; the next query reconnects.
    this.pool.on('error', (err) => this.log.warn({ err: err.message }, 'approvals store connection lost'));
  }

  /** Creates the tables and starts listening; rejects (and keeps retrying the listener) when the server is down. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresApprovalStore> {
    const store = new PostgresApprovalStore(opts);
    const listening = store.listen();
    await store.ready();
    // Changes made from now on reach this instance (unless the listener failed: then it retries, and polls cover).
    await listening;
    return store;
  }

  /**
   * Opens without requiring the server: calls reject (store_unavailable) until it answers.
   * `started` settles once the first attempt to create the tables and listen is over.
   */
  static openLazily(opts: PostgresStoreOptions): PostgresApprovalStore {
    const store = new PostgresApprovalStore(opts);
    const listening = store.listen();
    const tables = store.ready().catch((err: unknown) => {
      store.log.error({ err: (err as Error).message }, 'approvals store unreachable; held statements will be denied until it answers');
    });
    store.started = Promise.all([listening, tables]).then(() => undefined);
    return store;
  }

  /** Settles when the first connection attempts (tables, listener) are over, whatever their result. */
  started: Promise<void> = Promise.resolve();

  // ---- requests -----------------------------------------------------------------------------

  async createRequest(r: ApprovalRequest): Promise<void> {
    const { status, decision, ...immutable } = r;
    await this.query(
      `INSERT INTO ${this.t.requests} (id, status, created_at, expires_at, instance_id, target, principal_key, principal_name, subject, request, decision)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       RETURNING pg_notify($12, $13)::text AS n`,
      [r.id, status, r.createdAt, r.expiresAt, r.instanceId, r.target, r.principalKey, r.principal.name, r.principal.subject,
        JSON.stringify(immutable), decision ? JSON.stringify(decision) : null, this.channel, this.payload('request.created', r.id)],
    );
  }

  async getRequest(id: string): Promise<ApprovalRequest | undefined> {
    const rows = await this.query(`SELECT status, request, decision FROM ${this.t.requests} WHERE id = $1`, [id]);
    return rows[0] ? requestOf(rows[0]) : undefined;
  }

  async settledAmong(ids: readonly string[]): Promise<ApprovalRequest[]> {
    if (ids.length === 0) return [];
    const rows = await this.query(`SELECT status, request, decision FROM ${this.t.requests} WHERE id = ANY($1::text[]) AND status <> 'pending'`, [ids]);
    return rows.map(requestOf);
  }

  async listRequests(f: RequestFilter = {}): Promise<ApprovalRequest[]> {
    const rows = await this.query(
      `SELECT status, request, decision FROM ${this.t.requests}
       WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR target = $2)
         AND ($3::text IS NULL OR principal_name = $3 OR subject = $3)
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [f.status ?? null, f.target ?? null, f.principal ?? null, listLimit(f.limit)],
    );
    return rows.map(requestOf);
  }

  async decide(id: string, decision: Decision, now: Date): Promise<DecideResult> {
    return this.transaction(async (client) => {
      const found = await client.query(`SELECT status, request, decision FROM ${this.t.requests} WHERE id = $1 FOR UPDATE`, [id]);
      const row = found.rows[0] as Row | undefined;
      if (!row) return { ok: false, reason: 'not_found' } as const;
      const current = requestOf(row);
      if (current.status !== 'pending') return { ok: false, reason: 'not_pending', request: current } as const;
      if (current.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired', request: current } as const;
      const grant = decision.status === 'approved' ? grantFromDecision(current, decision, now) : undefined;
      const stored = {
        at: now,
        by: decision.by,
        ...(decision.reason !== undefined ? { reason: decision.reason } : {}),
        ...(decision.status === 'approved' ? { scope: grant ? 'grant' : 'once' } : {}),
        ...(grant ? { grantId: grant.id } : {}),
      };
      // Conditional as well as locked: a decision can only ever leave `pending`.
      const updated = await client.query(
        `UPDATE ${this.t.requests} SET status = $2, decision = $3 WHERE id = $1 AND status = 'pending' RETURNING status, request, decision`,
        [id, decision.status, JSON.stringify(stored)],
      );
      const next = updated.rows[0] as Row | undefined;
      if (!next) return { ok: false, reason: 'not_pending', request: current } as const;
      await client.query('SELECT pg_notify($1, $2)', [this.channel, this.payload('request.decided', id)]);
      if (grant) {
        await this.insertGrant(client, grant);
        await client.query('SELECT pg_notify($1, $2)', [this.channel, this.payload('grant.created', grant.id)]);
      }
      const request = requestOf(next);
      return grant ? { ok: true, request, grant } as const : { ok: true, request } as const;
    });
  }

  async finish(id: string, status: 'expired' | 'withdrawn', reason: string | undefined, now: Date): Promise<FinishResult> {
    const decision = JSON.stringify({ at: now, ...(reason !== undefined ? { reason } : {}) });
    const rows = await this.query(
      `UPDATE ${this.t.requests} SET status = $2, decision = $3 WHERE id = $1 AND status = 'pending'
       RETURNING status, request, decision, pg_notify($4, $5)::text AS n`,
      [id, status, decision, this.channel, this.payload(EVENT_FOR_STATUS[status], id)],
    );
    if (rows[0]) return { changed: true, request: requestOf(rows[0]) };
    return { changed: false, request: await this.getRequest(id) };
  }

  async recover(instanceId: string, reason: string, now: Date): Promise<ApprovalRequest[]> {
    return this.finishWhere('instance_id = $1', [instanceId], 'withdrawn', reason, now);
  }

  async expireOverdue(before: Date, now: Date): Promise<ApprovalRequest[]> {
    return this.finishWhere('expires_at < $1', [before], 'expired', undefined, now);
  }

  private async finishWhere(where: string, args: unknown[], status: 'expired' | 'withdrawn', reason: string | undefined, now: Date): Promise<ApprovalRequest[]> {
    const n = args.length;
    const decision = JSON.stringify({ at: now, ...(reason !== undefined ? { reason } : {}) });
    const rows = await this.query(
      `UPDATE ${this.t.requests} SET status = $${n + 1}, decision = $${n + 2}
       WHERE status = 'pending' AND ${where}
       RETURNING id, status, request, decision, pg_notify($${n + 3}, json_build_object('e', $${n + 4}::text, 'id', id)::text)::text AS n`,
      [...args, status, decision, this.channel, EVENT_FOR_STATUS[status]],
    );
    return rows.map(requestOf);
  }

  // ---- grants -------------------------------------------------------------------------------

  private async insertGrant(client: pg.PoolClient, g: GrantRecord): Promise<void> {
    const { revokedAt, revokedBy, revokeReason, ...data } = g;
    void revokedAt;
    void revokedBy;
    void revokeReason;
    await client.query(
      `INSERT INTO ${this.t.grants} (id, principal_key, principal_name, target, fingerprint, created_at, expires_at, grant_data)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [g.id, g.principalKey, g.principalName, g.target, g.fingerprint, g.createdAt, g.expiresAt, JSON.stringify(data)],
    );
  }

  async findGrant(principalKey: string, target: string, fingerprint: string, at: Date): Promise<GrantRecord | undefined> {
    const rows = await this.query(
      `SELECT grant_data, revoked_at, revocation FROM ${this.t.grants}
       WHERE principal_key = $1 AND target = $2 AND fingerprint = $3 AND revoked_at IS NULL AND expires_at > $4
       ORDER BY expires_at DESC LIMIT 1`,
      [principalKey, target, fingerprint, at],
    );
    return rows[0] ? grantOf(rows[0]) : undefined;
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    const rows = await this.query(`SELECT grant_data, revoked_at, revocation FROM ${this.t.grants} WHERE id = $1`, [id]);
    return rows[0] ? grantOf(rows[0]) : undefined;
  }

  async listGrants(f: GrantFilter = {}): Promise<GrantRecord[]> {
    const rows = await this.query(
      `SELECT grant_data, revoked_at, revocation FROM ${this.t.grants}
       WHERE ($1::timestamptz IS NULL OR (revoked_at IS NULL AND expires_at > $1)) AND ($2::text IS NULL OR target = $2)
         AND ($3::text IS NULL OR principal_name = $3 OR left(principal_key, length($3) + 1) = $3 || '@')
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [f.liveAt ?? null, f.target ?? null, f.principal ?? null, listLimit(f.limit)],
    );
    return rows.map(grantOf);
  }

  async revokeGrant(id: string, by: ActorInfo, reason: string | undefined, now: Date): Promise<RevokeResult> {
    const revocation = JSON.stringify({ revokedBy: by, ...(reason !== undefined ? { revokeReason: reason } : {}) });
    const rows = await this.query(
      `UPDATE ${this.t.grants} SET revoked_at = $2, revocation = $3 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2
       RETURNING grant_data, revoked_at, revocation, pg_notify($4, $5)::text AS n`,
      [id, now, revocation, this.channel, this.payload('grant.revoked', id)],
    );
    if (rows[0]) return { ok: true, grant: grantOf(rows[0]) };
    const grant = await this.getGrant(id);
    return grant ? { ok: false, reason: 'not_live', grant } : { ok: false, reason: 'not_found' };
  }

  // ---- changes ------------------------------------------------------------------------------

  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
    this.listeners.clear();
  }

  private payload(event: StoreEvent, id: string): string {
    return JSON.stringify({ e: event, id });
  }

  /**
   * A dedicated connection LISTENing for changes; reconnects with backoff when it drops. Resolves
   * when this attempt is listening or has failed.
   */
  private listen(): Promise<void> {
    if (this.closed || this.opts.notifications === false) return Promise.resolve();
    const client = new pg.Client(clientConfig(this.opts.config));
    this.listener = client;
    let lost = false;
    const onLost = (err?: Error): void => {
      if (lost || this.closed) return;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      this.log.warn({ err: err?.message, retryMs: this.reconnectDelay }, 'approvals notifications lost; reconnecting (polling meanwhile)');
      this.reconnectTimer = setTimeout(() => void this.listen(), this.reconnectDelay);
      this.reconnectTimer.unref();
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel || msg.payload === undefined) return;
      let change: StoreChange;
      try {
        const p = JSON.parse(msg.payload) as { e?: unknown; id?: unknown };
        if (typeof p.e !== 'string' || !STORE_EVENTS.has(p.e) || typeof p.id !== 'string') return;
        change = { event: p.e as StoreEvent, id: p.id };
      } catch {
        return;
      }
      for (const l of this.listeners) {
        try {
          l(change);
        } catch (err) {
          this.log.error({ err }, 'approvals store listener failed');
        }
      }
    });
    return client
      .connect()
      .then(() => client.query(`LISTEN "${this.channel}"`))
      .then(() => {
        this.reconnectDelay = RECONNECT_MIN_MS;
        this.log.debug({ channel: this.channel }, 'listening for approval changes');
      })
      .catch((err: unknown) => onLost(err as Error));
  }

  private ready(): Promise<void> {
    this.setup ??= this.createTables().catch((err: unknown) => {
      this.setup = undefined;
      throw err;
    });
    return this.setup;
  }

  private async createTables(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Instances starting together would otherwise race on CREATE … IF NOT EXISTS.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`warden approvals schema ${this.schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.requests} (
        id text PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        instance_id text NOT NULL,
        target text NOT NULL,
        principal_key text NOT NULL,
        principal_name text NOT NULL,
        subject text NOT NULL,
        request jsonb NOT NULL,
        decision jsonb
      )`);
      await client.query(`CREATE INDEX IF NOT EXISTS approval_requests_pending ON ${this.t.requests} (instance_id, expires_at) WHERE status = 'pending'`);
      await client.query(`CREATE INDEX IF NOT EXISTS approval_requests_created ON ${this.t.requests} (created_at DESC, id DESC)`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.grants} (
        id text PRIMARY KEY,
        principal_key text NOT NULL,
        principal_name text NOT NULL,
        target text NOT NULL,
        fingerprint text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        grant_data jsonb NOT NULL,
        revocation jsonb
      )`);
      await client.query(`CREATE INDEX IF NOT EXISTS approval_grants_live ON ${this.t.grants} (principal_key, target, fingerprint) WHERE revoked_at IS NULL`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async query(text: string, values: unknown[]): Promise<Row[]> {
    this.usable();
    try {
      await this.ready();
      const result = await this.pool.query(text, values);
      return result.rows as Row[];
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.usable();
    let client: pg.PoolClient;
    try {
      await this.ready();
      client = await this.pool.connect();
    } catch (err) {
      throw storeUnavailable(err);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw storeUnavailable(err);
    } finally {
      client.release(broken);
    }
  }

  private usable(): void {
    if (this.closed) throw new ApprovalError('store_unavailable', 'approval store unavailable: the store is closed');
  }
}

function requestOf(row: Row): ApprovalRequest {
  return requestFromJson({ ...(row.request as Row), status: row.status, decision: row.decision ?? undefined });
}

function grantOf(row: Row): GrantRecord {
  const revocation = (row.revocation ?? {}) as Row;
  return grantFromJson({ ...(row.grant_data as Row), revokedAt: row.revoked_at ?? undefined, ...revocation });
}

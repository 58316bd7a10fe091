// The embedded approvals store: no server, one process. State lives in memory and in an
// append-only JSON-lines journal (`approvals.jsonl`): every change appends the record's new
// version and is fsynced before it counts (changes arriving together share one fdatasync). On
// open the journal is read (a torn last line from a crash is dropped; damage anywhere else stops
// the start), old finished records are dropped, and the journal is rewritten compacted.
//
// A lock file keeps a second process (or a second store in this one) off the same directory:
// several warden instances need the PostgreSQL store.
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive, releaseLock, takeLockFile } from '../audit/instance-lock.js';
import { silentLogger, type Logger } from '../log.js';
import { grantFromJson, requestFromJson } from './codec.js';
import {
  ApprovalError,
  EVENT_FOR_STATUS,
  isLive,
  storeUnavailable,
  type ActorInfo,
  type ApprovalRequest,
  type Decision,
  type GrantFilter,
  type GrantRecord,
  type RequestFilter,
  type StoreChange,
} from './model.js';
import {
  grantFromDecision,
  listLimit,
  matchesGrant,
  matchesRequest,
  type ApprovalStore,
  type DecideResult,
  type FinishResult,
  type RevokeResult,
} from './store.js';

export const JOURNAL_FILE = 'approvals.jsonl';
export const LOCK_FILE = 'approvals.lock';

/** Directories held by stores open in this process. */
const OPEN_DIRS = new Set<string>();

type Line = { k: 'r'; v: ApprovalRequest } | { k: 'g'; v: GrantRecord };

export interface EmbeddedStoreOptions {
  dir: string;
  /** Finished requests and dead grants older than this are dropped at open. */
  retentionMs: number;
  logger?: Logger;
  now?: () => Date;
}

interface Pending {
  text: string;
  resolve(): void;
  reject(err: Error): void;
}

export class EmbeddedApprovalStore implements ApprovalStore {
  readonly kind = 'embedded' as const;
  readonly pollInterval = undefined;
  private readonly requests = new Map<string, ApprovalRequest>();
  private readonly grants = new Map<string, GrantRecord>();
  private readonly listeners = new Set<(c: StoreChange) => void>();
  private queue: Pending[] = [];
  private flushing = false;
  /** Bytes known to be whole lines; a failed write is cut back to this. */
  private size = 0;
  private broken: Error | undefined;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly file: FileHandle,
    private readonly log: Logger,
  ) {}

  static async open(opts: EmbeddedStoreOptions): Promise<EmbeddedApprovalStore> {
    const log = (opts.logger ?? silentLogger).child({ component: 'approvals-store' });
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    lock(opts.dir);
    try {
      const path = join(opts.dir, JOURNAL_FILE);
      const { requests, grants } = await readJournal(path, log);
      const cutoff = (opts.now?.() ?? new Date()).getTime() - opts.retentionMs;
      let dropped = 0;
      for (const [id, r] of requests) {
        if (r.status !== 'pending' && (r.decision?.at ?? r.expiresAt).getTime() < cutoff) {
          requests.delete(id);
          dropped++;
        }
      }
      for (const [id, g] of grants) {
        if ((g.revokedAt ?? g.expiresAt).getTime() < cutoff) {
          grants.delete(id);
          dropped++;
        }
      }
      const text = [...requests.values()].map((v) => lineOf({ k: 'r', v })).join('') + [...grants.values()].map((v) => lineOf({ k: 'g', v })).join('');
      await writeAtomically(opts.dir, path, text);
      const file = await open(path, 'a', 0o600);
      const store = new EmbeddedApprovalStore(opts.dir, file, log);
      store.size = Buffer.byteLength(text);
      for (const [id, r] of requests) store.requests.set(id, r);
      for (const [id, g] of grants) store.grants.set(id, g);
      log.info({ dir: opts.dir, requests: requests.size, grants: grants.size, dropped }, 'embedded approvals store open');
      return store;
    } catch (err) {
      unlock(opts.dir);
      throw err;
    }
  }

  // ---- requests -----------------------------------------------------------------------------

  async createRequest(request: ApprovalRequest): Promise<void> {
    this.usable();
    if (this.requests.has(request.id)) throw new ApprovalError('conflict', `request ${request.id} already exists`);
    await this.change([{ k: 'r', v: request }], [{ event: 'request.created', id: request.id }], () => this.requests.delete(request.id));
  }

  async getRequest(id: string): Promise<ApprovalRequest | undefined> {
    this.usable();
    return this.requests.get(id);
  }

  async settledAmong(ids: readonly string[]): Promise<ApprovalRequest[]> {
    this.usable();
    return ids.map((id) => this.requests.get(id)).filter((r): r is ApprovalRequest => r !== undefined && r.status !== 'pending');
  }

  async listRequests(filter: RequestFilter = {}): Promise<ApprovalRequest[]> {
    this.usable();
    return [...this.requests.values()]
      .filter((r) => matchesRequest(r, filter))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, listLimit(filter.limit));
  }

  async decide(id: string, decision: Decision, now: Date): Promise<DecideResult> {
    this.usable();
    const current = this.requests.get(id);
    if (!current) return { ok: false, reason: 'not_found' };
    if (current.status !== 'pending') return { ok: false, reason: 'not_pending', request: current };
    if (current.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired', request: current };
    const grant = decision.status === 'approved' && decision.grant ? grantFromDecision(current, decision, now) : undefined;
    const next: ApprovalRequest = {
      ...current,
      status: decision.status,
      decision: {
        at: now,
        by: decision.by,
        ...(decision.reason !== undefined ? { reason: decision.reason } : {}),
        ...(decision.status === 'approved' ? { scope: grant ? 'grant' as const : 'once' as const } : {}),
        ...(grant ? { grantId: grant.id } : {}),
      },
    };
    const lines: Line[] = [{ k: 'r', v: next }];
    const changes: StoreChange[] = [{ event: 'request.decided', id }];
    if (grant) {
      lines.push({ k: 'g', v: grant });
      changes.push({ event: 'grant.created', id: grant.id });
    }
    await this.change(lines, changes, () => {
      this.requests.set(id, current);
      if (grant) this.grants.delete(grant.id);
    });
    return grant ? { ok: true, request: next, grant } : { ok: true, request: next };
  }

  async finish(id: string, status: 'expired' | 'withdrawn', reason: string | undefined, now: Date): Promise<FinishResult> {
    this.usable();
    const current = this.requests.get(id);
    if (!current || current.status !== 'pending') return { changed: false, request: current };
    const next: ApprovalRequest = { ...current, status, decision: { at: now, ...(reason !== undefined ? { reason } : {}) } };
    await this.change([{ k: 'r', v: next }], [{ event: EVENT_FOR_STATUS[status], id }], () => this.requests.set(id, current));
    return { changed: true, request: next };
  }

  async recover(instanceId: string, reason: string, now: Date): Promise<ApprovalRequest[]> {
    return this.finishWhere((r) => r.instanceId === instanceId, 'withdrawn', reason, now);
  }

  async expireOverdue(before: Date, now: Date): Promise<ApprovalRequest[]> {
    return this.finishWhere((r) => r.expiresAt.getTime() < before.getTime(), 'expired', undefined, now);
  }

  private async finishWhere(pick: (r: ApprovalRequest) => boolean, status: 'expired' | 'withdrawn', reason: string | undefined, now: Date): Promise<ApprovalRequest[]> {
    this.usable();
    const picked = [...this.requests.values()].filter((r) => r.status === 'pending' && pick(r));
    const done: ApprovalRequest[] = [];
    for (const r of picked) {
      const result = await this.finish(r.id, status, reason, now);
      if (result.changed) done.push(result.request);
    }
    return done;
  }

  // ---- grants -------------------------------------------------------------------------------

  async findGrant(principalKey: string, target: string, fingerprint: string, at: Date): Promise<GrantRecord | undefined> {
    this.usable();
    let best: GrantRecord | undefined;
    for (const g of this.grants.values()) {
      if (g.principalKey !== principalKey || g.target !== target || g.fingerprint !== fingerprint || !isLive(g, at)) continue;
      if (!best || g.expiresAt.getTime() > best.expiresAt.getTime()) best = g;
    }
    return best;
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    this.usable();
    return this.grants.get(id);
  }

  async listGrants(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    this.usable();
    return [...this.grants.values()]
      .filter((g) => matchesGrant(g, filter))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, listLimit(filter.limit));
  }

  async revokeGrant(id: string, by: ActorInfo, reason: string | undefined, now: Date): Promise<RevokeResult> {
    this.usable();
    const current = this.grants.get(id);
    if (!current) return { ok: false, reason: 'not_found' };
    if (!isLive(current, now)) return { ok: false, reason: 'not_live', grant: current };
    const next: GrantRecord = { ...current, revokedAt: now, revokedBy: by, ...(reason !== undefined ? { revokeReason: reason } : {}) };
    await this.change([{ k: 'g', v: next }], [{ event: 'grant.revoked', id }], () => this.grants.set(id, current));
    return { ok: true, grant: next };
  }

  // ---- changes ------------------------------------------------------------------------------

  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await new Promise((r) => setTimeout(r, 5));
    await this.file.close().catch(() => undefined);
    unlock(this.dir);
    this.listeners.clear();
  }

  private usable(): void {
    if (this.closed) throw new ApprovalError('store_unavailable', 'approval store unavailable: the store is closed');
    if (this.broken) throw storeUnavailable(this.broken);
  }

  /**
   * Applies lines to memory, makes them durable, then tells listeners. If the write fails the
   * memory change is undone and the call rejects (store_unavailable).
   */
  private async change(lines: Line[], changes: StoreChange[], undo: () => void): Promise<void> {
    for (const line of lines) {
      if (line.k === 'r') this.requests.set(line.v.id, line.v);
      else this.grants.set(line.v.id, line.v);
    }
    try {
      await this.append(lines.map(lineOf).join(''));
    } catch (err) {
      undo();
      throw storeUnavailable(err);
    }
    for (const c of changes) {
      for (const l of this.listeners) {
        try {
          l(c);
        } catch (err) {
          this.log.error({ err }, 'approvals store listener failed');
        }
      }
    }
  }

  private append(text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Group commit: whatever queued while the last batch was written goes out in one write + fdatasync. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const text = batch.map((p) => p.text).join('');
      try {
        if (this.broken) throw this.broken;
        if (this.closed) throw new Error('the store is closed');
        await this.file.write(text);
        await this.file.datasync();
        this.size += Buffer.byteLength(text);
        for (const p of batch) p.resolve();
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        // Cut a partial line off so the journal stays whole lines; if even that fails, stop writing.
        await this.file.truncate(this.size).catch((cutErr: unknown) => {
          this.broken = new Error(`journal write failed and could not be repaired: ${(cutErr as Error).message}`);
        });
        this.log.error({ err: error.message, dir: this.dir }, 'approvals journal write failed');
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }
}

function lineOf(line: Line): string {
  return `${JSON.stringify(line)}\n`;
}

async function readJournal(path: string, log: Logger): Promise<{ requests: Map<string, ApprovalRequest>; grants: Map<string, GrantRecord> }> {
  const requests = new Map<string, ApprovalRequest>();
  const grants = new Map<string, GrantRecord>();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { requests, grants };
    throw err;
  }
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  if (last !== '') log.warn({ path, bytes: Buffer.byteLength(last) }, 'approvals journal ends in a partial line (an interrupted write); dropping it');
  lines.forEach((line, index) => {
    if (line === '') return;
    try {
      const parsed = JSON.parse(line) as { k?: unknown; v?: unknown };
      if (parsed.k === 'r') {
        const r = requestFromJson(parsed.v);
        requests.set(r.id, r);
      } else if (parsed.k === 'g') {
        const g = grantFromJson(parsed.v);
        grants.set(g.id, g);
      } else throw new Error('unknown record kind');
    } catch (err) {
      throw new Error(`approvals journal ${path}: line ${index + 1} is damaged (${(err as Error).message}); move the file aside to start with an empty store`);
    }
  });
  return { requests, grants };
}

async function writeAtomically(dir: string, path: string, text: string): Promise<void> {
  const aside = `${path}.compact`;
  const fh = await open(aside, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(aside, path);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Takes the directory's lock file, or says who holds it. */
function lock(dir: string): void {
  if (OPEN_DIRS.has(dir)) throw new Error(`the embedded approvals store in ${dir} is already open in this process`);
  takeLockFile<number>(join(dir, LOCK_FILE), {
    content: `${process.pid}\n`,
    mode: 0o600,
    read: (text) => {
      const pid = Number.parseInt(text.trim(), 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    },
    // Our own pid here is a file left by an earlier process (this one holds no lock on `dir`).
    stale: (pid, ours) => pid === undefined || (pid === process.pid ? !ours : !processAlive(pid)),
    busy: (pid) => new Error(`the embedded approvals store in ${dir} is in use by process ${pid}; several warden instances need approvals.store.type: postgres`),
    ioError: (err) => err as Error,
    contended: () => new Error(`cannot lock the embedded approvals store in ${dir}`),
  });
  OPEN_DIRS.add(dir);
}

function unlock(dir: string): void {
  if (!OPEN_DIRS.delete(dir)) return;
  releaseLock(join(dir, LOCK_FILE));
}

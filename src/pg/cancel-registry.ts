// Maps the BackendKeyData warden gave each client to the upstream connection's own key, so a
// CancelRequest from the client (sent on a new connection) cancels the right upstream query.
// A key that does not match exactly (forged or stale) cancels nothing.
import { randomInt, timingSafeEqual } from 'node:crypto';

export interface UpstreamCancelTarget {
  host: string;
  port: number;
  processId: number;
  secretKey: number;
  /** The session that owns it, for logs. */
  sessionId: string;
  /** Sends the cancel upstream (protocol-specific; the session supplies it). */
  cancel(): Promise<void>;
}

interface Entry {
  secret: Buffer;
  target: UpstreamCancelTarget;
}

export class CancelRegistry {
  private readonly entries = new Map<number, Entry[]>();

  /** Issues a client-facing key for `target`. The process id is the upstream's, the secret is warden's own. */
  register(target: UpstreamCancelTarget): { processId: number; secretKey: number } {
    const secretKey = randomInt(-0x80000000, 0x7fffffff);
    const secret = Buffer.alloc(4);
    secret.writeInt32BE(secretKey);
    const list = this.entries.get(target.processId) ?? [];
    list.push({ secret, target });
    this.entries.set(target.processId, list);
    return { processId: target.processId, secretKey };
  }

  unregister(target: UpstreamCancelTarget): void {
    const list = this.entries.get(target.processId);
    if (!list) return;
    const rest = list.filter((e) => e.target !== target);
    if (rest.length) this.entries.set(target.processId, rest);
    else this.entries.delete(target.processId);
  }

  /** The upstream target for a client's key, or undefined when the key is unknown. */
  lookup(processId: number, secretKey: number): UpstreamCancelTarget | undefined {
    const list = this.entries.get(processId);
    if (!list) return undefined;
    const given = Buffer.alloc(4);
    given.writeInt32BE(secretKey);
    for (const e of list) if (timingSafeEqual(e.secret, given)) return e.target;
    return undefined;
  }

  get size(): number {
    let n = 0;
    for (const l of this.entries.values()) n += l.length;
    return n;
  }
}

// The PostgreSQL listener: accepts agent connections and runs a PgClientSession for each.
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../log.js';
import type { ListenConfig, WardenConfig } from '../config/types.js';
import type { TokenVerifier } from '../identity/types.js';
import type { Metrics } from '../admin/metrics.js';
import type { SessionServices } from '../services.js';
import { CancelRegistry } from './cancel-registry.js';
import { PgClientSession } from './client-session.js';

export interface PgListenerDeps {
  config: WardenConfig;
  verifier: TokenVerifier;
  secureContext: tls.SecureContext | undefined;
  logger: Logger;
  metrics: Metrics;
  services: SessionServices;
}

export class PgListener {
  private readonly server: net.Server;
  readonly sessions = new Set<PgClientSession>();
  readonly cancels = new CancelRegistry();
  private readonly pending = new Set<PgClientSession>();

  constructor(private readonly deps: PgListenerDeps) {
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    this.deps.metrics.connectionsTotal.inc({ protocol: 'postgres' });
    const session = new PgClientSession(socket, {
      ...this.deps,
      cancels: this.cancels,
      onOpen: (s) => {
        this.pending.delete(s);
        this.sessions.add(s);
      },
      onClose: (s) => {
        this.pending.delete(s);
        this.sessions.delete(s);
      },
    });
    this.pending.add(session);
    void session.run();
  }

  listen(cfg: ListenConfig): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(cfg.port, cfg.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  get address(): net.AddressInfo | undefined {
    return (this.server.address() as net.AddressInfo | null) ?? undefined;
  }

  /** Number of sessions still open (established or logging in). */
  get openSessions(): number {
    return this.sessions.size + this.pending.size;
  }

  /** Stops accepting connections. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Asks every session to end at its next idle point (or at once when `now`). */
  endSessions(now: boolean): void {
    for (const s of [...this.sessions, ...this.pending]) s.shutdown(now);
  }
}

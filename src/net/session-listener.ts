// A TCP listener that runs one protocol session per accepted connection and keeps track of them,
// for graceful shutdown. The PostgreSQL and TDS listeners are this plus their session factory.
import net from 'node:net';
import type { Metrics } from '../admin/metrics.js';
import type { ListenConfig } from '../config/types.js';

export interface ListenedSession {
  run(): Promise<void>;
  /** Ends the session at its next idle point, or at once when `now`. */
  shutdown(now: boolean): void;
}

/** What a session calls when it is established and when it has ended. */
export interface SessionHooks<S> {
  onOpen(session: S): void;
  onClose(session: S): void;
}

export class SessionListener<S extends ListenedSession> {
  private readonly server: net.Server;
  /** Established sessions. */
  readonly sessions = new Set<S>();
  /** Sessions still logging in. */
  private readonly pending = new Set<S>();

  constructor(
    private readonly protocol: 'postgres' | 'tds',
    private readonly metrics: Metrics,
    private readonly create: (socket: net.Socket, hooks: SessionHooks<S>) => S,
  ) {
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    this.metrics.connectionsTotal.inc({ protocol: this.protocol });
    const session = this.create(socket, {
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

  /** Sessions still open (established or logging in). */
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

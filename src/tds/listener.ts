// The TDS listener: accepts agent connections (SQL Server drivers) and runs a TdsClientSession for each.
import net from 'node:net';
import type { Metrics } from '../admin/metrics.js';
import type { ListenConfig, WardenConfig } from '../config/types.js';
import type { TokenVerifier } from '../identity/types.js';
import type { Logger } from '../log.js';
import type { SessionServices } from '../services.js';
import { TdsClientSession } from './client-session.js';
import { tdsServerTls } from './tls.js';

export interface TdsListenerDeps {
  config: WardenConfig;
  verifier: TokenVerifier;
  /** warden's certificate and key (PEM), when it has one: TDS builds its own TLS contexts from them. */
  certificate: { cert: string; key: string } | undefined;
  logger: Logger;
  metrics: Metrics;
  services: SessionServices;
}

export class TdsListener {
  private readonly server: net.Server;
  readonly sessions = new Set<TdsClientSession>();
  private readonly pending = new Set<TdsClientSession>();
  private readonly tls;

  constructor(private readonly deps: TdsListenerDeps) {
    this.tls = deps.certificate ? tdsServerTls(deps.certificate) : undefined;
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    this.deps.metrics.connectionsTotal.inc({ protocol: 'tds' });
    const session = new TdsClientSession(socket, {
      config: this.deps.config,
      verifier: this.deps.verifier,
      tls: this.tls,
      logger: this.deps.logger,
      metrics: this.deps.metrics,
      services: this.deps.services,
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

  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Asks every session to end at its next idle point (or at once when `now`). */
  endSessions(now: boolean): void {
    for (const s of [...this.sessions, ...this.pending]) s.shutdown(now);
  }
}

// The PostgreSQL listener: accepts agent connections and runs a PgClientSession for each.
import type tls from 'node:tls';
import type { Logger } from '../log.js';
import type { WardenConfig } from '../config/types.js';
import type { TokenVerifier } from '../identity/types.js';
import type { Metrics } from '../admin/metrics.js';
import type { SessionServices } from '../services.js';
import { SessionListener } from '../net/session-listener.js';
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

export class PgListener extends SessionListener<PgClientSession> {
  /** Maps the cancel keys warden gave clients to the upstream's. */
  readonly cancels: CancelRegistry;

  constructor(deps: PgListenerDeps) {
    const cancels = new CancelRegistry();
    super('postgres', deps.metrics, (socket, hooks) => new PgClientSession(socket, { ...deps, cancels, ...hooks }));
    this.cancels = cancels;
  }
}

// The TDS listener: accepts agent connections (SQL Server drivers) and runs a TdsClientSession for each.
import type { Metrics } from '../admin/metrics.js';
import type { WardenConfig } from '../config/types.js';
import { SessionListener } from '../net/session-listener.js';
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

export class TdsListener extends SessionListener<TdsClientSession> {
  constructor(deps: TdsListenerDeps) {
    const tls = deps.certificate ? tdsServerTls(deps.certificate) : undefined;
    super('tds', deps.metrics, (socket, hooks) =>
      new TdsClientSession(socket, {
        config: deps.config,
        verifier: deps.verifier,
        tls,
        logger: deps.logger,
        metrics: deps.metrics,
        services: deps.services,
        ...hooks,
      }),
    );
  }
}
